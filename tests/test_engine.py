"""Engine behaviour beyond SEMANTICS.md section 8, checked against independent computations:
naive numpy convolutions, hand-written recurrences, hand-computed stop rules, and the
determinism guarantees (seeds, batching, threads, streaming)."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

import asyncsim as A
from asyncsim import _kernels as K
from tests.conftest import assert_matches_reference, chain

# --------------------------------------------------------------------------- determinism


def _random_net(seed: int = 0) -> A.Network:
    rng = np.random.default_rng(seed)
    pops = [
        A.Population("h", 20, threshold=1.0, beta=0.9, refractory_dropout=0.2),
        A.Population("o", 5, threshold=1.0, beta=0.9),
    ]
    projs = [
        A.Dense("a", "input", "h", rng.normal(0.3, 0.6, (20, 8))),
        A.Dense("b", "h", "o", rng.normal(0.3, 0.6, (5, 20))),
    ]
    return A.Network(8, pops, projs)


@pytest.mark.parametrize("policy", ["fifo", "momentum", "random", "layered"])
def test_same_seed_same_result_and_batch_independence(policy):
    net = _random_net()
    rng = np.random.default_rng(1)
    x = (rng.random((10, 12, 8)) < 0.4).astype(float)
    labels = rng.integers(0, 5, 10)
    kw = dict(
        policy=policy, group_size=2, seed=5, jitter=1e-3, input_dropout=0.1, record_events=True
    )
    a = A.Simulator(net, threads=1, **kw).run(x, labels)
    b = A.Simulator(net, threads=2, **kw).run(x, labels)
    for name in A.Result.array_names():
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # each sample alone (with its id) gives the same numbers as in the batch
    for s in (0, 3, 9):
        one = A.Simulator(net, threads=1, **kw).run(x[s : s + 1], labels[s : s + 1], sample_ids=[s])
        np.testing.assert_array_equal(one.spikes[0], a.spikes[s])
        np.testing.assert_array_equal(one.events[0], a.events[s])
    # reversed order, reversed ids: same per-sample results
    rev = A.Simulator(net, threads=2, **kw).run(
        x[::-1], labels[::-1], sample_ids=np.arange(10)[::-1]
    )
    np.testing.assert_array_equal(rev.spikes[::-1], a.spikes)


def test_seed_changes_random_outcomes():
    net = _random_net()
    x = (np.random.default_rng(2).random((6, 10, 8)) < 0.4).astype(float)
    r = [A.Simulator(net, "random", 1, seed=s).run(x).spikes for s in (0, 1)]
    assert not np.array_equal(r[0], r[1])


# --------------------------------------------------------------------------- convolution


def naive_conv(x, w, stride, pad, dil, groups):
    """Direct 2-D convolution (cross-correlation, as PyTorch) with explicit padding."""
    c_in, h, wd = x.shape
    c_out, cig, kh, kw = w.shape
    top, bottom, left, right = pad
    xp = np.zeros((c_in, h + top + bottom, wd + left + right))
    xp[:, top : top + h, left : left + wd] = x
    ho = (h + top + bottom - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + left + right - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((c_out, ho, wo))
    cog = c_out // groups
    for co in range(c_out):
        g = co // cog
        for oy in range(ho):
            for ox in range(wo):
                acc = 0.0
                for cl in range(cig):
                    for ky in range(kh):
                        for kx in range(kw):
                            acc += (
                                w[co, cl, ky, kx]
                                * xp[
                                    g * cig + cl,
                                    oy * stride[0] + ky * dil[0],
                                    ox * stride[1] + kx * dil[1],
                                ]
                            )
                out[co, oy, ox] = acc
    return out


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(3, 7),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.booleans(),
    st.booleans(),
)
def test_conv_matches_naive_convolution(
    seed, c_in, groups_or_one, size, k, stride, pad, dil, same, policy_async
):
    """A non-spiking conv target integrates exactly the naive convolution of one frame."""
    rng = np.random.default_rng(seed)
    groups = groups_or_one if c_in % groups_or_one == 0 else 1
    c_out = groups * int(rng.integers(1, 3))
    w = rng.normal(size=(c_out, c_in // groups, k, k)).astype(np.float32).astype(np.float64)
    x = rng.integers(0, 3, (c_in, size, size)).astype(float)
    padding = "same" if same else pad
    if same:
        stride = 1
    cv = A.Conv2d(
        "cv", "input", "o", weight=w, stride=stride, padding=padding, dilation=dil, groups=groups
    )
    try:
        shape = cv.output_shape(x.shape)
    except A.AsyncsimError:
        return  # kernel larger than the padded input: rejected with a clear error
    net = A.Network(x.shape, [A.Population("o", shape, threshold=np.inf)], [cv])
    policy = "fifo" if policy_async else "layered"
    res = A.Simulator(net, policy, "inf").run(x[None, None])
    expect = naive_conv(x, w, cv.stride, cv.padding_lrtb(x.shape[1:]), cv.dilation, groups)
    got = res.output_potentials[0, 0].reshape(shape)
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)
    # synaptic operations = nonzero (input, weight) pairs of the convolution
    pairs = naive_conv(
        (x != 0).astype(float),
        (w != 0).astype(float),
        cv.stride,
        cv.padding_lrtb(x.shape[1:]),
        cv.dilation,
        groups,
    )
    assert res.input_synops.sum() == pairs.sum()


def test_pooling_sum_and_avg():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, (2, 6, 6)).astype(float)
    for mode, scale in (("sum", 1.0), ("avg", 0.25)):
        pl = A.pool2d("pl", "input", "o", channels=2, kernel=2, mode=mode)
        net = A.Network((2, 6, 6), [A.Population("o", (2, 3, 3), threshold=np.inf)], [pl])
        res = A.Simulator(net, "layered").run(x[None, None])
        expect = x.reshape(2, 3, 2, 3, 2).sum(axis=(2, 4)) * scale
        np.testing.assert_allclose(res.output_potentials[0, 0].reshape(2, 3, 3), expect)


def test_conv_network_channels_last_is_invisible():
    """Neuron indices in results are logical (C, H, W) even though the engine stores
    3-D populations channels-last: a single input pixel lights the expected outputs."""
    w = np.zeros((3, 1, 1, 1))
    w[:, 0, 0, 0] = [1.0, 2.0, 3.0]
    net = A.Network(
        (1, 2, 2), [A.Population("c", (3, 2, 2), threshold=0.5)], [A.Conv2d("cv", "input", "c", w)]
    )
    x = np.zeros((1, 1, 1, 2, 2))
    x[0, 0, 0, 1, 0] = 1.0  # pixel (y=1, x=0)
    res = A.Simulator(net, "fifo", 1, record_events=True).run(x)
    ev = res.events[0]
    # logical index of (c, 1, 0) in a (3, 2, 2) map is c*4 + 2
    assert sorted(ev["index"].tolist()) == [2, 6, 10]
    assert res.output_spikes[0, 0].reshape(3, 2, 2)[:, 1, 0].tolist() == [1, 1, 1]


# --------------------------------------------------------------------------- neuron dynamics


def run_single(pop_kw, inputs, policy="layered"):
    net = A.Network(1, [A.Population("n", 1, **pop_kw)], [A.Dense("w", "input", "n", [[1.0]])])
    return A.Simulator(net, policy, 1).run(np.asarray(inputs, float)[None, :, None])


@pytest.mark.parametrize("policy", ["layered", "fifo"])
def test_cuba_lif_matches_snntorch_style_recurrence(policy):
    """syn_t = alpha syn + x_t; v_t = beta v + syn_t (snnTorch Synaptic, no spikes here)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=25)
    alpha, beta = 0.7, 0.85
    res = run_single(dict(threshold=np.inf, alpha=alpha, beta=beta), x, policy)
    syn = v = 0.0
    expect = []
    for xt in x:
        syn = alpha * syn + xt
        v = beta * v + syn
        expect.append(v)
    np.testing.assert_allclose(res.output_potentials[0, :, 0], expect, rtol=1e-12)


def test_syn_bias_is_a_constant_input_current():
    """snnTorch Linear(bias=True) -> Synaptic: syn_t = alpha syn + x_t + b; v_t = beta v + syn_t."""
    x = np.random.default_rng(1).normal(size=15)
    alpha, beta, b = 0.6, 0.8, 0.3
    res = run_single(dict(threshold=np.inf, alpha=alpha, beta=beta, syn_bias=b), x, "fifo")
    syn = v = 0.0
    expect = []
    for xt in x:
        syn = alpha * syn + xt + b
        v = beta * v + syn
        expect.append(v)
    np.testing.assert_allclose(res.output_potentials[0, :, 0], expect, rtol=1e-12)
    with pytest.raises(A.AsyncsimError, match="syn_bias needs alpha"):
        A.Population("n", 1, syn_bias=0.1)


def test_cuba_lif_next_step_form():
    """syn_immediate=False: arrivals reach v only through syn at the next timestep."""
    x = np.array([1.0, 0, 0, 2.0, 0])
    alpha, beta, g = 0.5, 0.9, 0.3
    res = run_single(
        dict(threshold=np.inf, alpha=alpha, beta=beta, syn_gain=g, syn_immediate=False), x
    )
    syn = v = 0.0
    expect = []
    for xt in x:
        v = beta * v + g * syn
        syn = alpha * syn + xt
        expect.append(v)
    np.testing.assert_allclose(res.output_potentials[0, :, 0], expect, rtol=1e-12)


def test_delayed_subtract_reset_matches_snntorch_leaky_recurrence():
    """snnTorch Leaky default: m_t = beta m_{t-1} + x_t - theta s_{t-1}, s_t = m_t > theta."""
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1.2, 40)
    beta, theta = 0.8, 1.0
    res = run_single(dict(threshold=theta, beta=beta, reset="subtract", reset_delay=True), x)
    m = 0.0
    s_prev = 0
    spikes, mems = [], []
    for xt in x:
        m = beta * m + xt - theta * s_prev
        s_prev = int(m > theta)
        spikes.append(s_prev)
        mems.append(m)
    assert res.output_spikes[0, :, 0].tolist() == spikes
    np.testing.assert_allclose(res.output_potentials[0, :, 0], mems, rtol=1e-12)
    assert sum(spikes) > 5


def test_delayed_zero_reset_matches_recurrence():
    """snnTorch Leaky reset_mechanism='zero': m_t = beta (1 - s_{t-1}) m_{t-1} + x_t."""
    x = np.random.default_rng(5).uniform(0, 1.2, 40)
    res = run_single(dict(threshold=1.0, beta=0.8, reset="zero", reset_delay=True), x)
    m, s_prev, spikes = 0.0, 0, []
    for xt in x:
        m = 0.8 * (1 - s_prev) * m + xt
        s_prev = int(m > 1.0)
        spikes.append(s_prev)
    assert res.output_spikes[0, :, 0].tolist() == spikes


def test_multi_spike_counts_and_subtracts():
    """multi_spike (Sinabs MultiSpike, IAF): n = floor(v / theta) spikes, v -= n theta."""
    x = np.array([3.5, 0.2, 0.0, 2.0])
    res = run_single(dict(threshold=1.0, beta=1.0, reset="subtract", multi_spike=True), x)
    # v: 3.5 -> 3 spikes, 0.5; +0.2 = 0.7; 0.7; 2.7 -> 2 spikes, 0.7
    assert res.output_spikes[0, :, 0].tolist() == [3, 0, 0, 2]
    np.testing.assert_allclose(res.output_potentials[0, :, 0], [0.5, 0.7, 0.7, 0.7])


def test_multi_spike_synops_count_every_spike():
    net = A.Network(
        1,
        [
            A.Population("h", 1, threshold=1.0, multi_spike=True, reset="subtract"),
            A.Population("o", 4, threshold=100.0),
        ],
        [A.Dense("a", "input", "h", [[1.0]]), A.Dense("b", "h", "o", np.ones((4, 1)))],
    )
    res = A.Simulator(net, "fifo", 1).run(np.full((1, 1, 1), 3.0))
    assert res.spikes[0, 0].tolist() == [3, 0]
    assert res.synops[0, 0, 1] == 12  # 3 spikes x fan-out 4
    np.testing.assert_allclose(res.output_potentials[0, 0], [3.0] * 4)


def test_v_init_and_bias():
    res = run_single(dict(threshold=np.inf, beta=0.5, v_init=2.0, bias=0.25), np.zeros(3))
    # v: 2 -> 0.5*2 + 0.25 = 1.25 -> 0.875 -> 0.6875
    np.testing.assert_allclose(res.output_potentials[0, :, 0], [1.25, 0.875, 0.6875])


@pytest.mark.parametrize("policy", ["layered", "fifo"])
@pytest.mark.parametrize("counts", [(1, 1, 1, 1, 1, 1, 1), (1, 2, 1, 1, 3, 1, 1), (2, 2, 2, 2, 2)])
def test_dense_rows_add_in_delivery_order(policy, counts):
    """Rows delivered together (up to four fused in one pass, products skipped for single
    spikes) add to every potential one row at a time in input order, exactly as separate
    deliveries would: weights of +-1e16 and small ones make every other order round to a
    different value in some of the 64 neurons."""
    rng = np.random.default_rng(len(counts))
    n_in = len(counts)
    w = rng.choice([1e16, -1e16, 1.0, 3.0, -5.0], size=(64, n_in))
    net = A.Network(
        n_in, [A.Population("o", 64, threshold=np.inf, beta=1.0)], [A.Dense("d", "input", "o", w)]
    )
    res = A.Simulator(net, policy, 1).run(np.array(counts, float)[None, None, :])
    stored = w.astype(np.float32).astype(np.float64)  # weights are stored as float32
    want = np.zeros(64)
    for i in range(n_in):  # one delivery at a time, in input order
        want = want + counts[i] * stored[:, i]
    np.testing.assert_array_equal(res.output_potentials[0, 0], want)
    shuffled = np.zeros(64)
    for i in rng.permutation(n_in):
        shuffled = shuffled + counts[i] * stored[:, i]
    assert not np.array_equal(shuffled, want)  # the test can tell orders apart


def test_threshold_ge_with_bias_only_drive():
    """A bias alone drives the neuron (it is updated every timestep)."""
    res = run_single(
        dict(threshold=1.0, beta=1.0, bias=0.5, threshold_op=">="), np.zeros(4), policy="fifo"
    )
    assert res.output_spikes[0, :, 0].tolist() == [0, 1, 0, 1]


def test_delay_delivers_later():
    net = A.Network(
        1,
        [A.Population("h", 1, threshold=0.5), A.Population("o", 1, threshold=0.5)],
        [A.Dense("a", "input", "h", [[1.0]]), A.Dense("b", "h", "o", [[1.0]], delay=2)],
    )
    x = np.zeros((1, 5, 1))
    x[0, 0, 0] = 1
    for policy in ("fifo", "layered"):
        res = A.Simulator(net, policy).run(x)
        assert res.spikes[0, :, 0].tolist() == [1, 0, 0, 0, 0]
        assert res.spikes[0, :, 1].tolist() == [0, 0, 1, 0, 0]
        assert res.synops[0, :, 1].tolist() == [1, 0, 0, 0, 0]  # counted when sent


def test_recurrent_uses_previous_timestep():
    """h -> h with delay 1: a spike at t adds its recurrent current at t + 1 (RLeaky)."""
    net = A.Network(
        1,
        [A.Population("h", 2, threshold=0.5)],
        [
            A.Dense("in", "input", "h", [[1.0], [0.0]]),
            A.Dense("rec", "h", "h", [[0.0, 0.0], [1.0, 0.0]], delay=1),
        ],
    )
    x = np.zeros((1, 3, 1))
    x[0, 0, 0] = 1
    res = A.Simulator(net, "layered", record_events=True).run(x)
    ev = res.events[0]
    assert list(zip(ev["timestep"].tolist(), ev["index"].tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_refractory_dropout_lets_neurons_fire_again():
    net = A.Network(
        1,
        [
            A.Population("h", 2, threshold=0.5),
            A.Population("o", 1, threshold=0.5, refractory_dropout=1.0),
        ],
        [A.Dense("a", "input", "h", np.ones((2, 1))), A.Dense("b", "h", "o", np.ones((1, 2)))],
    )
    res = A.Simulator(net, "fifo", 1).run(np.ones((1, 1, 1)))
    assert res.output_spikes[0, 0, 0] == 2


def test_input_dropout_statistics():
    net = A.Network(1, [A.Population("o", 1, threshold=0.5)], [A.Dense("a", "input", "o", [[1.0]])])
    res = A.Simulator(net, "fifo", input_dropout=0.3, seed=9).run(np.ones((2000, 1, 1)))
    frac = res.output_spikes.mean()
    assert abs(frac - 0.7) < 4 * np.sqrt(0.21 / 2000)


# --------------------------------------------------------------------------- stop rules


def test_stop_on_output_keeps_pending_spikes_for_next_timestep():
    """input -> 3 hidden -> 1 output (each hidden alone fires it); F = 1, stop at the first
    output spike: the two undelivered hidden spikes carry into timestep 1."""
    net = A.Network(
        1,
        [A.Population("h", 3, threshold=0.5), A.Population("o", 1, threshold=0.5)],
        [A.Dense("a", "input", "h", np.ones((3, 1))), A.Dense("b", "h", "o", np.ones((1, 3)))],
    )
    x = np.zeros((1, 3, 1))
    x[0, 0, 0] = 1
    drain = A.Simulator(net, "fifo", 1).run(x)
    assert drain.forward_steps[0].tolist() == [4, 1, 1]
    assert drain.output_spikes[0, :, 0].tolist() == [1, 0, 0]
    # each timestep: one carried hidden spike is delivered, fires the (no longer
    # refractory) output, and the rule stops the timestep again
    stop = A.Simulator(net, "fifo", 1, stop="output").run(x)
    assert stop.forward_steps[0].tolist() == [2, 2, 2]
    assert stop.peak_queue[0].tolist() == [3, 2, 1]
    assert stop.synops[0, :, 1].tolist() == [1, 1, 1]
    assert stop.output_spikes[0, :, 0].tolist() == [1, 1, 1]
    k1 = A.Simulator(net, "fifo", 1, stop="output:1").run(x)
    assert k1.forward_steps[0].tolist() == [3, 2, 1]
    assert k1.output_spikes[0, :, 0].tolist() == [1, 1, 0]


def test_stop_after_n_steps():
    net = chain([1, 1, 1], 1, threshold=0.5)
    x = np.zeros((1, 3, 1))
    x[0, 0, 0] = 1
    res = A.Simulator(net, "fifo", 1, stop="steps:2", record_events=True).run(x)
    ev = res.events[0]
    assert list(
        zip(ev["timestep"].tolist(), ev["step"].tolist(), ev["population"].tolist(), strict=True)
    ) == [(0, 1, 0), (0, 2, 1), (1, 2, 2)]
    assert res.forward_steps[0].tolist() == [2, 2, 1]


def test_queued_input_competes_for_the_group():
    """Queued input with F = 1: one input event per forward step."""
    net = A.Network(
        3, [A.Population("o", 3, threshold=0.5)], [A.Dense("a", "input", "o", np.eye(3))]
    )
    res = A.Simulator(net, "fifo", 1, input_mode="queued", record_events=True).run(
        np.ones((1, 1, 3))
    )
    assert res.events[0]["step"].tolist() == [2, 3, 4]
    prio = A.Simulator(net, "fifo", 1, record_events=True).run(np.ones((1, 1, 3)))
    assert prio.events[0]["step"].tolist() == [1, 1, 1]


def test_output_in_group_compatibility_switch():
    """Reference compatibility: output spikes take forward-group slots (1 < F < inf)."""
    # 2 hidden fire at step 1; each fires its own output; h0 also fires a relay r
    pops = [
        A.Population("h", 2, threshold=0.5),
        A.Population("r", 1, threshold=0.5),
        A.Population("o", 2, threshold=0.5),
    ]
    projs = [
        A.Dense("a", "input", "h", [[1.0], [1.0]]),
        A.Sparse("hr", "h", "r", source_index=[0], target_index=[0], weight=[1.0]),
        A.Sparse("ho", "h", "o", source_index=[0, 1], target_index=[0, 1], weight=[1.0, 1.0]),
        A.Sparse("ro", "r", "o", source_index=[0], target_index=[1], weight=[1.0]),
    ]
    net = A.Network(1, pops, projs, output="o")
    x = np.ones((1, 1, 1))
    plain = assert_matches_reference(net, x, policy="fifo", group_size=2)
    compat = assert_matches_reference(net, x, policy="fifo", group_size=2, output_in_group=True)
    assert plain.forward_steps[0, 0] == 3
    assert compat.forward_steps[0, 0] == 4  # the two output spikes need one more group


# --------------------------------------------------------------------------- streaming


def test_streaming_equals_one_shot():
    net = _random_net(3)
    rng = np.random.default_rng(8)
    x = (rng.random((1, 30, 8)) < 0.4).astype(float)
    for policy in ("momentum", "random"):
        sim = A.Simulator(net, policy, 2, seed=4, stop="steps:6")
        whole = sim.run(x)
        parts = list(sim.stream([x[0, :7], x[0, 7:20], x[0, 20:]]))
        spikes = np.concatenate([p["spikes"] for p in parts])
        np.testing.assert_array_equal(spikes, whole.spikes[0])
        v = np.concatenate([p["out_v"] for p in parts])
        np.testing.assert_array_equal(v, whole.output_potentials[0])


def test_result_summary_and_dict():
    net = chain([4, 3], 2, threshold=0.8)
    res = A.Simulator(net, "momentum", 2).run(np.ones((3, 4, 2)), labels=[0, 1, 2])
    s = res.summary()
    assert s["policy"] == "momentum" and s["group_size"] == "2"
    assert s["spikes_per_sample"] == res.spikes.sum() / 3
    assert s["spike_density"] == res.spikes.sum() / (7 * 4 * 3)
    rows = res.per_population()
    assert [r["population"] for r in rows] == ["l0", "l1"]
    assert sum(r["spikes_per_sample"] for r in rows) == pytest.approx(s["spikes_per_sample"])
    d = res.to_dict(arrays=True)
    assert np.array_equal(np.array(d["spikes"]), res.spikes)
    # all three outputs tie at every step: no decision, so accuracy 0
    assert res.predictions.tolist() == [-1, -1, -1]
    assert res.accuracy == 0.0


def test_non_spiking_readout_decisions():
    w = np.array([[1.0], [2.0], [-1.0]])
    net = A.Network(
        1,
        [A.Population("o", 3, threshold=np.inf, beta=0.5)],
        [A.Dense("a", "input", "o", w)],
        readout="sum",
    )
    res = A.Simulator(net, "fifo").run(np.ones((2, 3, 1)), labels=[1, 0])
    assert res.predictions.tolist() == [1, 1]
    assert res.accuracy == 0.5
    assert res.stable_correct[0, 0] == 0 and res.stable_correct[1, 0] == -1


@pytest.mark.parametrize("policy", ["fifo", "momentum", "layered"])
@pytest.mark.parametrize("refractory", [True, False])
def test_buffers_grow_mid_timestep(policy, refractory):
    """Queue, touched list (64 entries) and event log (256) start small and must grow in the
    middle of a timestep (300 neurons, F = 1, hundreds of pending spikes; without
    refractoriness neurons re-fire; layered: the event log grows between populations):
    the engine still matches the reference exactly, with and without event recording
    (per-sample and batched kernels)."""
    rng = np.random.default_rng(21)
    pops = [
        A.Population("h", 150, threshold=0.5, refractory=refractory, reset="subtract"),
        A.Population("h2", 150, threshold=0.5, refractory=refractory, reset="subtract"),
        A.Population("o", 4, threshold=0.5),
    ]
    projs = [
        A.Dense("a", "input", "h", rng.uniform(0.5, 3.0, (150, 3))),
        A.Sparse(
            "b",
            "h",
            "h2",
            source_index=np.arange(150),
            target_index=np.arange(150),
            weight=rng.uniform(0.2, 0.8, 150),
        ),
        A.Dense("c", "h2", "o", rng.uniform(-0.2, 0.5, (4, 150))),
    ]
    net = A.Network(3, pops, projs)
    x = np.ones((2, 3, 3))
    with_events = assert_matches_reference(net, x, policy=policy, group_size=1)
    assert with_events.peak_queue.max() > 128
    batched = A.Simulator(net, policy, 1, threads=1).run(x)
    for name in A.Result.array_names():
        np.testing.assert_array_equal(
            getattr(batched, name), getattr(with_events, name), err_msg=name
        )


@pytest.mark.parametrize("group_size", [1, 4])
def test_momentum_carries_a_long_queue_across_timesteps(group_size):
    """stop="steps:n" ends timesteps with hundreds of spikes pending; the next timestep
    re-keys them (v_spike cleared: key 0, so arrival order decides) and must restore the
    heap order before popping them. Matches the reference engine exactly."""
    rng = np.random.default_rng(5)
    pops = [
        A.Population("h", 300, threshold=0.5, reset="subtract"),
        A.Population("h2", 150, threshold=0.5, reset="subtract"),
        A.Population("o", 4, threshold=0.5),
    ]
    projs = [
        A.Dense("a", "input", "h", rng.uniform(0.5, 3.0, (300, 3))),
        A.Dense("b", "h", "h2", rng.uniform(-0.02, 0.06, (150, 300))),
        A.Dense("c", "h2", "o", rng.uniform(-0.2, 0.5, (4, 150))),
    ]
    net = A.Network(3, pops, projs)
    x = np.zeros((2, 4, 3))
    x[:, 0] = 1.0  # input only at first: later timesteps pop what was carried (key 0)
    res = assert_matches_reference(
        net, x, policy="momentum", group_size=group_size, stop="steps:30"
    )
    assert (res.forward_steps[:, :3] == 30).all()  # these timesteps ended by the rule
    assert res.peak_queue[:, 1].min() > 200  # hundreds carried over


@pytest.mark.parametrize("policy", ["fifo", "layered"])
def test_mixed_dense_and_sparse_from_one_source(policy):
    """One source reaching the same neurons through a sparse and a dense projection: the
    documented summation order (contiguous segments first, then indexed ones) is followed
    by both engines, so potentials agree to the last bit."""
    rng = np.random.default_rng(2)
    pops = [A.Population("h", 6, threshold=0.7), A.Population("o", 5, threshold=np.inf)]
    projs = [
        A.Dense("a", "input", "h", rng.uniform(0, 1, (6, 3))),
        A.Sparse(
            "s",
            "h",
            "o",
            source_index=rng.integers(0, 6, 20),
            target_index=rng.integers(0, 5, 20),
            weight=rng.normal(size=20),
        ),
        A.Dense("d", "h", "o", rng.normal(size=(5, 6))),
    ]
    net = A.Network(3, pops, projs)
    x = rng.integers(0, 2, (2, 6, 3)).astype(float)
    res = assert_matches_reference(net, x, policy=policy, group_size=2)
    assert res.synops.sum() > 0


def test_large_groups_from_carried_spikes():
    """Spikes carried over a cut timestep plus new ones make a forward group larger than
    the network (n_in + N entries): the delivery list grows, results match the reference."""
    # c and d fire at every step 1 (bias); d, not refractory, fires again at step 2 from c's
    # current and is carried (steps:2): at the next step 2 it is pending twice
    pops = [
        A.Population("c", 4, threshold=0.5, bias=1.0),
        A.Population("d", 4, threshold=0.5, bias=1.0, refractory=False),
        A.Population("e", 2, threshold=0.5),
    ]
    projs = [
        A.Dense("cd", "c", "d", np.ones((4, 4))),
        A.Dense("de", "d", "e", np.full((2, 4), 0.3)),
        A.Dense("in", "input", "e", np.full((2, 2), 0.1)),
    ]
    net = A.Network(2, pops, projs)
    x = np.ones((1, 6, 2))
    res = assert_matches_reference(
        net,
        x,
        policy="fifo",
        group_size="inf",
        stop="steps:2",
        input_mode="queued",
        output_in_group=True,
    )
    assert res.peak_queue.max() > net.n_inputs + net.n_neurons


def test_population_threshold_scalar_only_when_uniform():
    """pop_theta (the scalar the fused passes compare against) is the population's
    comparison threshold when all its neurons share it (just below theta for '>='), and
    NaN, i.e. per-neuron loads, when one neuron differs."""
    pops = [
        A.Population("u", 3, threshold=0.8),
        A.Population("g", 2, threshold=1.0, threshold_op=">="),
        A.Population("m", 3, threshold=np.array([1.0, 1.0, 0.5])),
    ]
    projs = [A.Dense("a", "input", "u", np.ones((3, 1)))]
    projs += [A.Dense("b", "u", "g", np.ones((2, 3))), A.Dense("c", "g", "m", np.ones((3, 2)))]
    c = A.compile_network(A.Network(1, pops, projs))
    pt = c.arrays.pop_theta
    assert pt[0] == 0.8
    assert pt[1] == np.nextafter(1.0, -np.inf)
    assert np.isnan(pt[2])


@pytest.mark.parametrize("policy", ["fifo", "momentum", "random", "layered"])
def test_single_deviating_threshold_and_ge_at_f1(policy):
    """Fused F = 1 deliveries: a population where one neuron has a lower threshold fires
    only that neuron (a scalar compare would fire none), and '>=' fires at exactly theta
    (a plain '>' against theta would not); both agree with the reference engine."""
    pops = [
        A.Population("h", 3, threshold=np.array([1.0, 1.0, 0.5])),
        A.Population("o", 2, threshold=1.0, threshold_op=">=", beta=0.0),
    ]
    projs = [
        A.Dense("a", "input", "h", np.full((3, 1), 0.7)),
        A.Dense("b", "h", "o", np.ones((2, 3))),
    ]
    net = A.Network(1, pops, projs)
    x = np.ones((1, 3, 1))
    res = assert_matches_reference(net, x, policy=policy, group_size=1)
    # h: neuron 2 crosses 0.5 every timestep (reset to zero), neurons 0 and 1 reach
    # 0.7, 1.33 (> 1: fire), ...; o receives exactly 1.0 per h spike and fires at >=
    assert res.spikes[0, 0, 0] == 1  # timestep 0: only the low-threshold neuron
    assert res.output_spikes[0, 0].tolist() == [1, 1]


@pytest.mark.parametrize("policy", ["fifo", "momentum"])
@pytest.mark.parametrize("f", [1, 2, "inf"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_and_sparse_into_one_population(policy, f, seed):
    """Contiguous convolution runs (evaluated by scanning their bounding box) and indexed
    sparse runs reaching the same neurons in one forward step: each neuron is evaluated
    and counted once, and the run flags are cleared for the next step. A second sparse
    projection from the hidden layer back into the conv population (delay 1) makes some
    steps indexed-only; a deep threshold keeps the spike counts moderate."""
    rng = np.random.default_rng(seed)
    c_shape = (2, 6, 6)
    n_c = 72
    pops = [
        A.Population(
            "c",
            c_shape,
            # seed 2: per-neuron thresholds (the box scan's general pass)
            threshold=rng.uniform(0.9, 1.5, c_shape) if seed == 2 else 1.2,
            beta=0.9,
            refractory=seed == 1,
        ),
        A.Population("o", 4, threshold=0.8),
    ]
    projs = [
        A.Conv2d("cv", "input", "c", rng.normal(0.4, 0.8, (2, 1, 3, 3)), padding=1),
        A.Sparse(
            "sp",
            "input",
            "c",
            source_index=rng.integers(0, 36, 60),
            target_index=rng.integers(0, n_c, 60),
            weight=rng.normal(0.3, 0.8, 60),
        ),
        A.Sparse(
            "back",
            "c",
            "c",
            source_index=rng.integers(0, n_c, 40),
            target_index=rng.integers(0, n_c, 40),
            weight=rng.normal(0.2, 0.5, 40),
            delay=1,
        ),
        A.Dense("d", "c", "o", rng.normal(0.2, 0.5, (4, n_c))),
    ]
    net = A.Network((1, 6, 6), pops, projs)
    x = (rng.random((2, 8, 1, 6, 6)) < 0.3).astype(float)
    res = assert_matches_reference(net, x, policy=policy, group_size=f)
    assert res.spikes[:, :, 0].sum() > 0
    assert res.neuron_updates[:, :, 0].sum() > 0


def _sparse_hidden_net(
    h: A.Population, c: A.Population, weights: tuple[np.ndarray, ...]
) -> A.Network:
    """input -> h (dense) -> c (sparse rows) -> a 3-neuron readout (dense); ``weights`` is
    (input -> h matrix, source indices, target indices, sparse weights, c -> readout)."""
    w_ih, s_idx, t_idx, w_hc, w_co = weights
    projs = [
        A.Dense("ih", "input", "h", w_ih),
        A.Sparse("hc", "h", "c", source_index=s_idx, target_index=t_idx, weight=w_hc),
        A.Dense("co", "c", "o", w_co),
    ]
    return A.Network(w_ih.shape[1], [h, c, A.Population("o", 3, threshold=0.5)], projs)


@pytest.mark.parametrize("policy", ["fifo", "momentum"])
@pytest.mark.parametrize("f", [1, 3, "inf"])
def test_sparse_steps_evaluated_from_list_and_by_box(policy, f):
    """A sparse projection's targets are flagged like contiguous runs: a step with few
    sparse sources evaluates them from the touched list (and must clear their flags), a
    step with many (the group of F = inf, or 3 here) covers the population densely and
    scans its box instead (and must not evaluate them again from the list). Both kinds of
    steps hit the same population within one timestep and across timesteps; a stale or
    missing flag shows in the neuron-update counts and the spikes, which must equal the
    reference engine's. Refractoriness on, so potentials of -inf are among the flagged."""
    rng = np.random.default_rng(11)
    n_h, n_c = 24, 240
    s_idx = np.repeat(np.arange(n_h), 6)
    w_ih = rng.uniform(0.0, 0.9, (n_h, 4))
    t_idx = rng.integers(0, n_c, s_idx.size)
    w_hc = rng.normal(0.5, 0.6, s_idx.size)
    net = _sparse_hidden_net(
        A.Population("h", n_h, threshold=0.6, beta=0.8),
        A.Population("c", n_c, threshold=1.0, beta=0.9),
        (w_ih, s_idx, t_idx, w_hc, rng.normal(0.3, 0.4, (3, n_c))),
    )
    x = (rng.random((2, 10, 4)) < 0.6).astype(float)
    res = assert_matches_reference(net, x, policy=policy, group_size=f)
    assert res.spikes[:, :, 1].sum() > 20
    assert res.neuron_updates[:, :, 1].sum() > 0


@pytest.mark.parametrize("policy", ["fifo", "momentum"])
def test_queued_real_valued_input_through_sparse_rows(policy):
    """Queued input at F = 1: each input channel is popped and delivered alone, so a
    channel whose one projection is a sparse row takes the fused sparse path with its real
    value as the multiplier (input synaptic ops are not multiplied by it). Matches the
    reference engine."""
    rng = np.random.default_rng(8)
    n_in, n_c = 6, 20
    s_idx = np.repeat(np.arange(n_in), 7)
    pops = [A.Population("c", n_c, threshold=0.9, beta=0.85), A.Population("o", 3, threshold=0.5)]
    projs = [
        A.Sparse(
            "ic",
            "input",
            "c",
            source_index=s_idx,
            target_index=rng.integers(0, n_c, s_idx.size),
            weight=rng.normal(0.4, 0.5, s_idx.size),
        ),
        A.Dense("co", "c", "o", rng.normal(0.3, 0.4, (3, n_c))),
    ]
    net = A.Network(n_in, pops, projs)
    x = rng.uniform(0.0, 1.5, (2, 6, n_in)) * (rng.random((2, 6, n_in)) < 0.7)
    res = assert_matches_reference(net, x, policy=policy, group_size=1, input_mode="queued")
    assert res.spikes[:, :, 1].sum() > 0


@pytest.mark.parametrize("policy", ["fifo", "momentum"])
@pytest.mark.parametrize("f", [1, 2])
def test_one_source_with_conv_runs_and_sparse_targets(policy, f):
    """A hidden neuron reaching one population through a convolution and a sparse
    projection: in a step that delivers only it, its convolution runs cover their box
    densely (scanned) while its sparse targets are listed without flags; the scan must stamp
    the neurons it evaluated (so the list does not evaluate them again) and the list must
    still evaluate the sparse targets the runs missed. Checked against the reference."""
    rng = np.random.default_rng(3)
    h_shape, c_shape = (1, 4, 4), (2, 4, 4)
    pops = [
        A.Population("h", h_shape, threshold=0.7, beta=0.8),
        A.Population("c", c_shape, threshold=0.9, beta=0.9),
        A.Population("o", 3, threshold=0.6),
    ]
    projs = [
        A.Dense("ih", "input", "h", rng.uniform(0.0, 0.8, (16, 3))),
        A.Conv2d("hc", "h", "c", rng.normal(0.3, 0.5, (2, 1, 3, 3)), padding=1),
        A.Sparse(
            "hs",
            "h",
            "c",
            source_index=np.repeat(np.arange(16), 4),
            target_index=rng.integers(0, 32, 64),
            weight=rng.normal(0.3, 0.5, 64),
        ),
        A.Dense("co", "c", "o", rng.normal(0.3, 0.4, (3, 32))),
    ]
    net = A.Network(3, pops, projs)
    x = (rng.random((2, 10, 3)) < 0.5).astype(float)
    res = assert_matches_reference(net, x, policy=policy, group_size=f)
    assert res.spikes[:, :, 1].sum() > 10
    assert res.neuron_updates[:, :, 1].sum() > 0


@pytest.mark.parametrize(("policy", "f"), [("fifo", 1), ("fifo", "inf"), ("momentum", 2)])
def test_conv_sources_far_apart_in_one_step(policy, f):
    """Several convolution sources in one forward step whose runs lie far apart (a wide,
    sparse bounding box): their runs are flagged without touched-list entries, so the
    population must still be evaluated by scanning the box. Input: two opposite corner
    pixels per timestep (step 1 delivers both); with F > 1, hidden spikes from both
    corners are delivered as one group into the second convolution. Every touched neuron
    crosses its threshold, so a missed evaluation shows as missing spikes."""
    rng = np.random.default_rng(5)
    pops = [
        A.Population("c", (2, 16, 16), threshold=0.5),
        A.Population("e", (2, 16, 16), threshold=0.5),
        A.Population("o", 2, threshold=0.5),
    ]
    projs = [
        A.Conv2d("ic", "input", "c", rng.uniform(0.6, 1.0, (2, 1, 3, 3)), padding=1),
        A.Conv2d("ce", "c", "e", rng.uniform(0.1, 0.3, (2, 2, 3, 3)), padding=1),
        A.Dense("eo", "e", "o", rng.uniform(0.0, 0.1, (2, 512))),
    ]
    net = A.Network((1, 16, 16), pops, projs)
    x = np.zeros((1, 3, 1, 16, 16))
    x[0, :, 0, 0, 0] = 1.0
    x[0, :, 0, 15, 15] = 1.0
    res = assert_matches_reference(net, x, policy=policy, group_size=f)
    # each corner pixel reaches a 2 x 2 patch of c in both channels: 16 spikes at t = 0
    assert res.spikes[0, 0, 0] == 16
    assert res.spikes[0, :, 1].sum() > 0


def test_run_sources_are_partial_runs_into_one_direct_population():
    """The compiler's ``src_run_pop`` (the kernel's loop without per-segment tests) marks
    exactly the sources whose contiguous immediate segments are partial runs into one
    population without synaptic state, with their synaptic ops summed."""
    rng = np.random.default_rng(0)
    shape = (2, 5, 5)
    pops = [A.Population(n, shape) for n in ("c", "e", "f")]
    pops += [A.Population("s", shape, syn_gain=1.0, alpha=0.5), A.Population("d", 3)]
    w = rng.normal(size=(2, 1, 3, 3))
    w[0, 0, 1, 1] = 0.0  # a zero weight is not a synaptic op

    def conv(name: str, src: str, tgt: str) -> A.Conv2d:
        return A.Conv2d(name, src, tgt, rng.normal(size=(2, 2, 3, 3)), padding=1)

    projs = [
        A.Conv2d("ic", "input", "c", w, padding=1),  # runs into one population
        conv("ce", "c", "e"),  # c: runs into two populations
        conv("cf", "c", "f"),
        conv("es", "e", "s"),  # e: runs into a population with synaptic state
        A.Dense("fd", "f", "d", rng.normal(size=(3, 50))),  # f: whole-population rows
    ]
    c = A.compile_network(A.Network((1, 5, 5), pops, projs))
    a = c.arrays
    run_pop = a.src_run_pop
    src_pop = np.concatenate([np.full(a.n_in, -1), a.pop_of])
    assert (run_pop[: a.n_in] == 0).all()
    assert (run_pop[a.n_in :] == -1).all(), np.unique(src_pop[run_pop >= 0])
    np.testing.assert_array_equal(a.src_run_nnz, np.where(run_pop >= 0, c.fan_out(), 0))
    # independently: a nonzero tap (ky, kx) of a 3x3 'same' kernel on 5x5 reaches
    # (5 - |ky - 1|) * (5 - |kx - 1|) output positions
    _, _, ky, kx = np.nonzero(w)
    assert a.src_run_nnz.sum() == ((5 - abs(ky - 1)) * (5 - abs(kx - 1))).sum()


def test_sparse_sources_are_single_immediate_sparse_rows():
    """The compiler's ``src_sparse_pop`` (the kernel's fused add + evaluate for a sparse
    row delivered alone) marks exactly the sources with one segment, immediate and
    indexed, into a population without synaptic state."""
    pops = [A.Population("a", 3), A.Population("b", 3), A.Population("c", 4)]
    pops += [A.Population("s", 4, syn_gain=1.0, alpha=0.5)]

    def sp(name: str, src: str, tgt: str, sources: list[int], **kw) -> A.Sparse:
        n = len(sources)
        return A.Sparse(name, src, tgt, source_index=sources, target_index=[1] * n,
                        weight=[0.5] * n, **kw)  # fmt: skip

    projs = [
        sp("ic", "input", "c", [0, 0]),  # input 0: one row (two synapses) into c
        sp("ac", "a", "c", [0, 1, 2]),  # a0, a1: one row each into c
        sp("acd", "a", "c", [2], delay=2),  # a2: and a delayed one
        sp("bc", "b", "c", [0], delay=1),  # b0: delayed
        sp("bs", "b", "s", [1]),  # b1: into a population with synaptic state
        sp("bc2", "b", "c", [2]),  # b2: two rows
        sp("ba", "b", "a", [2]),
    ]
    a = A.compile_network(A.Network(2, pops, projs)).arrays
    expected = np.full(a.n_in + a.n_neurons, -1)
    expected[0] = 2  # population index of c
    expected[a.n_in + 0] = expected[a.n_in + 1] = 2  # a0, a1
    np.testing.assert_array_equal(a.src_sparse_pop, expected)


@pytest.mark.parametrize("policy", ["layered", "fifo"])
@pytest.mark.parametrize("stride", [1, 2])
def test_reactivity_counts_the_inputs_reaching_each_spiking_neuron(policy, stride):
    """Reactivity (currents a neuron received in its timestep before it fired), by hand:
    with one convolution from the input, every input event of a timestep is delivered
    before any evaluation, so each spike's reactivity is the number of active input pixels
    whose kernel footprint covers the neuron (weights all nonzero). A dense readout adds
    one current per hidden spike of the timestep to every output neuron."""
    rng = np.random.default_rng(stride)
    k, pad = 3, 1
    w = rng.uniform(0.3, 0.9, (2, 1, k, k))
    conv = A.Conv2d("cv", "input", "c", w, stride=stride, padding=pad)
    ho = (6 + 2 * pad - k) // stride + 1
    pops = [A.Population("c", (2, ho, ho), threshold=0.8), A.Population("o", 3, threshold=0.1)]
    dense = A.Dense("d", "c", "o", np.full((3, 2 * ho * ho), 0.01))
    net = A.Network((1, 6, 6), pops, [conv, dense])
    x = (rng.random((3, 5, 1, 6, 6)) < 0.3).astype(float)
    res = A.Simulator(net, policy, 1, record_events=True, threads=1).run(x)
    for s in range(x.shape[0]):
        ev = res.events[s]
        expected = [0, 0]
        for t in range(x.shape[1]):
            active = x[s, t, 0] != 0
            hid = ev[(ev["timestep"] == t) & (ev["population"] == 0)]
            for j, cnt in zip(hid["index"], hid["count"], strict=True):
                oy, ox = divmod(int(j) % (ho * ho), ho)  # logical (channel, y, x)
                ys = [oy * stride + dy - pad for dy in range(k)]
                xs = [ox * stride + dx - pad for dx in range(k)]
                n = sum(active[y, xx] for y in ys for xx in xs if 0 <= y < 6 and 0 <= xx < 6)
                expected[0] += int(n) * int(cnt)
            out = ev[(ev["timestep"] == t) & (ev["population"] == 1)]
            if policy == "layered":  # every hidden spike of t precedes the readout
                expected[1] += int(hid["count"].sum()) * int(out["count"].sum())
        assert expected[0] > 0
        assert res.reactivity[s, 0] == expected[0]
        if policy == "layered":
            assert expected[1] > 0
            assert res.reactivity[s, 1] == expected[1]


def test_reactivity_of_sparse_targets_at_f1():
    """Reactivity through sparse rows, by hand from the event log: with fifo F = 1 every
    queued spike of a timestep is delivered in log order, the i-th at forward step i + 2
    (step 1 evaluates the input), so a target that fires at step S has received one current
    per occurrence in the rows of the hidden spikes delivered at steps 2..S. Rows repeat
    some targets (a neuron counts each current)."""
    rng = np.random.default_rng(4)
    n_h, n_c = 12, 30
    s_idx = np.repeat(np.arange(n_h), 5)
    t_idx = rng.integers(0, n_c, s_idx.size)
    t_idx[1] = t_idx[0]  # at least one repeated target
    w_ih = rng.uniform(0.2, 1.0, (n_h, 3))
    w_hc = rng.uniform(0.1, 0.6, s_idx.size)
    net = _sparse_hidden_net(
        A.Population("h", n_h, threshold=0.5),
        A.Population("c", n_c, threshold=0.8),
        (w_ih, s_idx, t_idx, w_hc, rng.uniform(0.1, 0.5, (3, n_c))),
    )
    x = (rng.random((3, 6, 3)) < 0.6).astype(float)
    res = A.Simulator(net, "fifo", 1, record_events=True, threads=1).run(x)
    for s in range(x.shape[0]):
        ev = res.events[s]
        expected = 0
        for t in range(x.shape[1]):
            et = ev[ev["timestep"] == t]
            queued = et[et["population"] != 2]  # the readout has no targets
            delivered = [
                (i + 2, int(e["index"])) for i, e in enumerate(queued) if e["population"] == 0
            ]
            for e in et[et["population"] == 1]:
                j = int(e["index"])
                n = sum(
                    int(np.count_nonzero(t_idx[s_idx == h] == j))
                    for step, h in delivered
                    if step <= e["step"]
                )
                expected += n * int(e["count"])
        assert expected > 0
        assert res.reactivity[s, 1] == expected


# --------------------------------------------------------------------------- momentum queue


@njit  # not cached: numba's cache would not see changes to the kernels it calls
def _heap_trace(keys, pattern, prefill):
    """Drive the engine's heap: ``prefill`` entries heapified at once (as the timestep
    start re-keys carried spikes), then ``pattern[i]`` pushes before the i-th pop (key
    ``keys[seq]``, arrival number ``seq``, source ``seq``). Returns the popped sources."""
    cap = prefill + pattern.sum() + 1
    qk = np.empty(cap)
    qs = np.empty(cap, np.int64)
    qsrc = np.empty(cap, np.int64)
    qval = np.empty(cap)
    for i in range(prefill):
        qk[i] = keys[i]
        qs[i] = i
        qsrc[i] = i
        qval[i] = 1.0
    K._heapify(qk, qs, qsrc, qval, prefill)
    n = prefill
    seq = prefill
    out = np.empty(cap, np.int64)
    npop = 0
    for k in range(pattern.shape[0]):
        for _ in range(pattern[k]):
            K._heap_push(qk, qs, qsrc, qval, n, keys[seq], seq, seq, 1.0)
            n += 1
            seq += 1
        if n > 0:
            out[npop], _ = K._heap_pop(qk, qs, qsrc, qval, n)
            npop += 1
            n -= 1
    while n > 0:
        out[npop], _ = K._heap_pop(qk, qs, qsrc, qval, n)
        npop += 1
        n -= 1
    return out[:npop]


@pytest.mark.parametrize("seed", range(6))
def test_momentum_heap_pops_in_key_then_arrival_order(seed):
    """The engine's heap (bottom-up pop, Floyd heapify) against :mod:`heapq` on (key,
    arrival): many ties, -inf keys (queued input), bursts of pushes, a heapified prefill
    (the timestep start re-keys carried spikes)."""
    rng = np.random.default_rng(seed)
    prefill = int(rng.integers(0, 40))
    pattern = rng.choice([0, 0, 1, 1, 1, 2, 3, 7], size=int(rng.integers(50, 400)))
    total = prefill + int(pattern.sum())
    keys = np.round(rng.normal(0.0, 1.0, total), 1)  # ~40 distinct values: ties everywhere
    keys[rng.random(total) < 0.1] = -np.inf
    want: list[int] = []
    heap = [(keys[i], i) for i in range(prefill)]
    heapq.heapify(heap)
    seq = prefill
    for k in pattern:
        for _ in range(k):
            heapq.heappush(heap, (keys[seq], seq))
            seq += 1
        if heap:
            want.append(heapq.heappop(heap)[1])
    want += [heapq.heappop(heap)[1] for _ in range(len(heap))]
    assert _heap_trace(keys, pattern, prefill).tolist() == want


def test_momentum_batched_samples_do_not_inherit_pending_spikes():
    """A sample cut by ``steps:2`` ends with spikes still queued; the batched kernel
    reuses one queue for the next sample (24 samples: three per kernel call), which must
    start empty: batched results equal one fresh queue per sample (event recording runs
    samples one by one)."""
    rng = np.random.default_rng(4)
    pops = [A.Population("h", 30, threshold=0.3), A.Population("o", 3, threshold=0.3)]
    projs = [
        A.Dense("a", "input", "h", rng.uniform(0.0, 1.0, (30, 4))),
        A.Dense("b", "h", "o", rng.uniform(0.0, 0.4, (3, 30))),
    ]
    net = A.Network(4, pops, projs)
    x = (rng.random((24, 3, 4)) < 0.8).astype(float)
    kw = dict(policy="momentum", group_size=1, stop="steps:2", threads=1)
    one_by_one = A.Simulator(net, record_events=True, **kw).run(x)
    batched = A.Simulator(net, **kw).run(x)
    # steps:2 delivers one queued entry per timestep: a peak of 2 or more leaves some pending
    assert one_by_one.peak_queue[:, -1].min() > 1
    for name in A.Result.array_names():
        np.testing.assert_array_equal(
            getattr(batched, name), getattr(one_by_one, name), err_msg=name
        )
