"""The comparison sweep (asyncsim.compare): specs, rows equal to direct simulations,
aggregation over seeds, ratios to layered, decision curves."""

from __future__ import annotations

import numpy as np
import pytest

import asyncsim as A
from asyncsim import compare as C

from .workflow_helpers import tiny_data, tiny_net


def test_default_group_sizes_double_up_to_the_widest_layer_then_inf():
    assert C.default_group_sizes(1) == ["1", "inf"]
    assert C.default_group_sizes(8) == ["1", "2", "4", "8", "inf"]
    assert C.default_group_sizes(9) == ["1", "2", "4", "8", "16", "inf"]
    with pytest.raises(A.AsyncsimError):
        C.default_group_sizes(0)


def test_sweep_specs_layered_first_random_gets_every_seed():
    specs = C.sweep_specs(3, ["fifo", "random"], [1, "inf"], [5, 6])
    assert [s.label for s in specs] == [
        "layered",
        "fifo F=1",
        "fifo F=inf",
        "random F=1 seed=5",
        "random F=1 seed=6",
        "random F=inf seed=5",
        "random F=inf seed=6",
    ]
    with pytest.raises(A.AsyncsimError, match=r"unknown policy 'lifo'"):
        C.sweep_specs(3, ["lifo"])
    with pytest.raises(A.AsyncsimError, match=r"group size F = 0 must be >= 1"):
        C.sweep_specs(3, ["fifo"], [0])
    with pytest.raises(A.AsyncsimError, match=r"seeds"):
        C.sweep_specs(3, ["random"], [1], [])


@pytest.fixture(scope="module")
def swept():
    net = tiny_net()
    x, y = tiny_data(10, 6)
    runs = C.sweep(net, x, y, group_sizes=[1, 2, "inf"], seeds=[0, 1, 2])
    return net, x, y, runs, C.aggregate(runs)


def test_run_rows_equal_direct_simulations(swept):
    net, x, y, runs, _rows = swept
    for r in runs:
        pol = r["policy"]
        f = "inf" if pol == "layered" else r["group_size"]
        res = A.Simulator(net, policy=pol, group_size=f, seed=r["seed"]).run(x, y)
        for key, val in res.summary().items():
            if key == "group_size" and pol == "layered":
                assert r[key] == "-"  # F does not apply to layered execution
                continue
            assert r[key] == val, (r["run"], key)
        first = res.first_output[:, 1]
        assert r["first_output_spikes"] == pytest.approx(first[first >= 0].mean())


def test_feed_forward_with_f_at_least_widest_equals_layered(swept):
    """SEMANTICS 8.1: with F >= the widest layer a feed-forward net runs as layered."""
    _net, _x, _y, runs, rows = swept
    lay = runs[0]
    assert lay["policy"] == "layered"
    for r in runs:
        if r["group_size"] == "inf":
            assert r["spikes_per_sample"] == lay["spikes_per_sample"]
            assert r["accuracy"] == lay["accuracy"]
            assert r["stable_correct_spikes"] == lay["stable_correct_spikes"]
    for r in rows:
        if r["group_size"] == "inf":
            assert r["spikes_per_sample_rel"] == pytest.approx(1.0)


def test_aggregate_means_and_spreads_over_seeds(swept):
    _net, _x, _y, runs, rows = swept
    seeds = [r for r in runs if r["policy"] == "random" and r["group_size"] == "1"]
    assert len(seeds) == 3
    agg = next(r for r in rows if r["policy"] == "random" and r["group_size"] == "1")
    vals = np.array([r["spikes_per_sample"] for r in seeds])
    assert agg["runs"] == 3 and agg["seeds"] == [0, 1, 2]
    assert agg["spikes_per_sample"] == pytest.approx(vals.mean())
    assert agg["spikes_per_sample_std"] == pytest.approx(vals.std())
    lay = next(r for r in rows if r["policy"] == "layered")
    assert agg["spikes_per_sample_rel"] == pytest.approx(vals.mean() / lay["spikes_per_sample"])
    assert agg["energy_pj_rel"] == pytest.approx(agg["energy_pj"] / lay["energy_pj"])
    fifo = next(r for r in rows if r["policy"] == "fifo" and r["group_size"] == "1")
    assert fifo["runs"] == 1 and fifo["spikes_per_sample_std"] == 0.0


def test_decision_curve_ends_at_the_final_accuracy(swept):
    _net, x, _y, runs, _rows = swept
    for r in runs:
        curve = r["curve"]
        assert len(curve["accuracy"]) == x.shape[1]
        assert curve["accuracy"][-1] == pytest.approx(r["accuracy"])
        assert curve["spikes"][-1] == pytest.approx(r["spikes_per_sample"])
        assert np.all(np.diff(curve["spikes"]) >= 0)


def test_decision_curve_by_hand():
    """Chain 1 -> 1 -> 2 outputs: output 0 fires from timestep 1 on; label 0 then 1."""
    net = A.Network(
        1,
        [A.Population("h", 1, threshold=0.5, beta=0.0), A.Population("o", 2, threshold=0.5)],
        [
            A.Dense("a", "input", "h", [[1.0]]),
            A.Dense("b", "h", "o", [[1.0], [0.0]]),
        ],
    )
    x = np.zeros((2, 3, 1))
    x[:, 1:, 0] = 1.0
    res = A.Simulator(net, policy="fifo").run(x, [0, 1])
    curve = C.decision_curve(res)
    # timestep 0: no spikes, no decision; then both samples decide 0 (right for sample 0)
    assert curve["accuracy"] == [0.0, 0.5, 0.5]
    assert curve["spikes"] == [0.0, 2.0, 4.0]
    assert C.decision_curve(A.Simulator(net).run(x)) is None


def test_non_spiking_readout_decisions_follow_the_readout():
    net = A.Network(
        2,
        [A.Population("o", 2, threshold=np.inf, beta=1.0)],
        [A.Dense("a", "input", "o", [[1.0, 0.0], [0.0, 1.0]])],
        readout="sum",
    )
    x = np.array([[[1, 0], [0, 3], [1, 0]]], dtype=float)
    res = A.Simulator(net, policy="layered").run(x, [1])
    dec = C.decisions_per_timestep(res)
    assert dec.tolist() == [[0, 1, 1]]  # potentials accumulate: (1,0), (1,3), (2,3)
    assert dec[:, -1].tolist() == res.predictions.tolist()


def test_record_sample_keeps_events_per_spec():
    net = tiny_net()
    x, y = tiny_data(3, 4)
    rec = C.record_sample(net, x, 2, [C.RunSpec("layered", "inf"), C.RunSpec("fifo", "1")], y)
    assert list(rec) == ["layered", "fifo F=1"]
    direct = A.Simulator(net, policy="fifo", record_events=True).run(x, y)
    np.testing.assert_array_equal(rec["fifo F=1"].events[0], direct.events[2])
    with pytest.raises(A.AsyncsimError, match=r"sample 5 is out of range"):
        C.record_sample(net, x, 5, [C.RunSpec("fifo", "1")])


def test_record_sample_uses_the_sweeps_input_mode():
    """Rasters of a queued-input comparison are recorded with queued input (the layered
    baseline always integrates the whole frame first)."""
    net = tiny_net()
    x, y = tiny_data(3, 4)
    specs = [C.RunSpec("layered", "inf"), C.RunSpec("fifo", "1")]
    rec = C.record_sample(net, x, 1, specs, y, input_mode="queued")
    assert rec["layered"].options["input_mode"] == "prioritised"
    assert rec["fifo F=1"].options["input_mode"] == "queued"
    direct = A.Simulator(net, "fifo", 1, input_mode="queued", record_events=True).run(x, y)
    np.testing.assert_array_equal(rec["fifo F=1"].events[0], direct.events[1])


def test_progress_covers_every_sample_of_every_run():
    net = tiny_net()
    x, y = tiny_data(3, 3)
    calls = []
    C.sweep(
        net, x, y, policies=["fifo"], group_sizes=[1], progress=lambda d, t: calls.append((d, t))
    )
    assert calls[-1] == (6, 6)  # 2 runs (layered, fifo F=1) x 3 samples
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
