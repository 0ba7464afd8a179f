"""The throughput benchmark's function API (numbers are checked for consistency, never
for speed)."""

from __future__ import annotations

import pytest

import asyncsim as A
from asyncsim import bench as B


def test_benchmark_rows_are_consistent_with_a_direct_run():
    rows = B.benchmark(
        sizes=(40, 20, 5), timesteps=6, samples=3, group_sizes=(1, "inf"), repeats=2, threads=1
    )
    assert [(r["policy"], r["group_size"]) for r in rows] == [
        ("layered", "-"),
        ("fifo", "1"),
        ("fifo", "inf"),
        ("momentum", "1"),
        ("momentum", "inf"),
        ("random", "1"),
        ("random", "inf"),
    ]
    net = B.bench_network((40, 20, 5))
    frames = B.bench_inputs(3, 6, 40)
    for r in rows:
        f = 1 if r["group_size"] == "-" else r["group_size"]
        res = A.Simulator(net, policy=r["policy"], group_size=f).run(frames)
        assert r["spikes_per_sample"] == res.spikes_per_sample()
        assert r["synops_per_sample"] == (res.synops.sum() + res.input_synops.sum()) / 3
        assert r["samples_per_s"] == pytest.approx(3 / r["median_s"])
        assert r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["synops_per_s"] == pytest.approx(r["synops_per_sample"] * 3 / r["median_s"])
    text = B.format_bench(rows)
    assert "samples/s" in text and "momentum" in text and "compile" in text


def test_bench_network_shape_and_input_rate():
    net = B.bench_network()
    assert [p.size for p in net.populations] == [500, 500, 10] and net.n_inputs == 784
    x = B.bench_inputs(4, 50, 784, rate=0.1)
    assert abs(x.mean() - 0.1) < 0.01


def test_benchmark_validates_its_arguments():
    with pytest.raises(A.AsyncsimError, match=r"samples, timesteps and repeats >= 1"):
        B.benchmark(samples=0)
    with pytest.raises(A.AsyncsimError, match=r"unknown policy"):
        B.benchmark(sizes=(4, 2), timesteps=1, samples=1, policies=("lifo",), repeats=1)
