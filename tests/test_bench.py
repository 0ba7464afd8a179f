"""The throughput benchmark's function API (numbers are checked for consistency, never
for speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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
    frames = B.bench_inputs(3, 6, 40, seed=1)
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


def test_bench_network_is_the_reference_workload():
    """Default sizes: weights N(0, 0.10^2) then N(0, 0.11^2) drawn in order from
    default_rng(0); inputs Bernoulli(0.1) from default_rng(1) (benchmarks/bench_engine.py)."""
    net = B.bench_network()
    assert [p.size for p in net.populations] == [500, 500, 10] and net.n_inputs == 784
    rng = np.random.default_rng(0)
    for pr, (shape, std) in zip(
        net.projections, [((500, 784), 0.10), ((500, 500), 0.11), ((10, 500), 0.11)], strict=True
    ):
        np.testing.assert_allclose(pr.weight, rng.normal(0.0, std, shape), rtol=1e-6)
    x = B.bench_inputs(4, 50, 784, rate=0.1)
    ref = (np.random.default_rng(1).random((4, 50, 784)) < 0.1).astype(np.uint8)
    np.testing.assert_array_equal(x, ref)


def test_benchmark_validates_its_arguments():
    with pytest.raises(A.AsyncsimError, match=r"samples, timesteps and repeats >= 1"):
        B.benchmark(samples=0)
    with pytest.raises(A.AsyncsimError, match=r"unknown policy"):
        B.benchmark(sizes=(4, 2), timesteps=1, samples=1, policies=("lifo",), repeats=1)


def test_time_runs_passes_labels_to_every_run():
    """time_runs times ``repeats`` runs with the given labels (the readout benchmark needs
    them: the running decision is only kept when labels are given) and returns the last
    result; without labels the runs have none."""
    net = B.bench_network((12, 6, 3))
    sim = A.Simulator(net, "fifo", 1, threads=1)
    x = B.bench_inputs(4, 5, 12, 0.5)
    labels = np.array([0, 1, 2, 1])
    times, res = B.time_runs(sim, x, 3, labels=labels)
    assert len(times) == 3 and all(t > 0 for t in times)
    np.testing.assert_array_equal(res.labels, labels)
    assert res.accuracy is not None
    _, res = B.time_runs(sim, x, 1)
    assert res.labels is None


def test_ab_script_rejects_reuse_without_exports(tmp_path):
    """benchmarks/ab.py --reuse times exports kept by an earlier --workdir run: without
    --workdir, or with a directory that holds no exports, it says so in one line and
    exits non-zero before exporting or compiling anything."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "ab.py"
    res = subprocess.run(
        [sys.executable, str(script), "HEAD", "WT", "--reuse"], capture_output=True, text=True
    )
    assert res.returncode == 2
    assert "--reuse needs --workdir" in res.stderr
    res = subprocess.run(
        [sys.executable, str(script), "HEAD", "WT", "--workdir", str(tmp_path), "--reuse"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    assert f"no export in {tmp_path / 'A'}" in res.stderr
    assert not (tmp_path / "A").exists()  # nothing was exported


@pytest.mark.parametrize(
    ("config", "message"),
    [("momentum:0", "must be >= 1"), ("lifo:1", "unknown policy 'lifo'"), ("fifo:x", "'x'")],
)
def test_ab_script_rejects_a_bad_config_before_exporting(tmp_path, config, message):
    """A configuration the engine would refuse stops benchmarks/ab.py in one line, naming
    it, before anything is exported or compiled (it used to fail in a child process
    after the first compile)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "ab.py"
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            "HEAD",
            "WT",
            "--workdir",
            str(tmp_path),
            "--configs",
            "fifo:1",
            config,
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert f"--configs {config!r}" in res.stderr and message in res.stderr
    assert not (tmp_path / "A").exists()


@pytest.mark.parametrize("config", ["s3/fifo", "s2/momentum", "dense"])
def test_ab_script_rejects_a_bad_conv_config_before_exporting(tmp_path, config):
    """``--workload conv`` takes LAYER/POLICY configurations; anything else stops it in one
    line naming the configuration and the accepted values, before any export."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "ab.py"
    res = subprocess.run(
        [
            *(sys.executable, str(script), "HEAD", "WT", "--workdir", str(tmp_path)),
            *("--workload", "conv", "--configs", "s2/fifo", config),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert f"--configs {config!r}" in res.stderr and "s1, s2, dense, sparse" in res.stderr
    assert not (tmp_path / "A").exists()
