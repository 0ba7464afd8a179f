"""NIR import/export: fixtures, node types, graph structure and round trips.

References are independent of the loader: small numpy re-implementations of NIR's Euler
reading, explicit convolution loops, values from notes/trainers.md, and the simulation of
the original network for round trips.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest

import asyncsim as A

FIX = Path(__file__).parent / "fixtures" / "nir"
DT = 1e-3


def quiet_load(path_or_graph, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(path_or_graph, nir.NIRGraph):
            return A.io.from_nir(path_or_graph, **kw)
        return A.load(path_or_graph, **kw)


def graph(nodes, edges, **kw):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, **kw)


def lif(n, tau=0.01, thr=1.0, r=None, v_leak=0.0, v_reset=0.0):
    tau = np.full(n, tau, dtype=np.float64)
    return nir.LIF(
        tau=tau,
        r=np.full(n, 1.0) if r is None else np.full(n, r),
        v_leak=np.full(n, v_leak),
        v_threshold=np.full(n, thr),
        v_reset=np.full(n, v_reset),
    )


def inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def out(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def euler_lif(x, tau, thr, dt=DT, r=1.0, v_leak=0.0):
    """Generic NIR Euler LIF with reset to 0 (v > thr), x: (T, n) input current."""
    v = np.full(x.shape[1], v_leak, dtype=np.float64)
    s_all, v_all = [], []
    for xt in x:
        v = v + dt / tau * (v_leak - v + r * xt)
        s = v > thr
        v = np.where(s, 0.0, v)
        s_all.append(s.astype(int))
        v_all.append(v.copy())
    return np.array(s_all), np.array(v_all)


# --------------------------------------------------------------------------- fixtures
def test_fixture_braille_recurrent_snntorch():
    net = quiet_load(FIX / "braille_noDelay_noBias_subtract.nir", profile="snntorch")
    assert [p.name for p in net.populations] == ["lif1.lif", "lif2"]
    lif1, lif2 = net.populations
    # notes/trainers.md: alpha 0.75, beta 0.85 (lif1); alpha 0.45, beta 0.70 (lif2)
    np.testing.assert_allclose(lif1.alpha, 0.75, atol=1e-6)
    np.testing.assert_allclose(lif1.beta, 0.85, atol=1e-6)
    np.testing.assert_allclose(lif2.alpha, 0.45, atol=1e-6)
    np.testing.assert_allclose(lif2.beta, 0.70, atol=1e-6)
    rec = [p for p in net.projections if p.source == p.target]
    assert len(rec) == 1 and rec[0].delay == 1 and rec[0].name == "lif1.w_rec"
    assert net.metadata["recurrent_edges"] == ["lif1.w_rec -> lif1.lif"]
    assert net.output == "lif2" and lif1.reset == "subtract" and lif1.reset_delay
    rng = np.random.default_rng(0)
    res = A.Simulator(net, policy="layered").run((rng.random((2, 30, 12)) < 0.5).astype(float))
    assert res.spikes.sum() > 0


def test_fixture_braille_default_profile_infers_dt():
    with pytest.warns(UserWarning) as rec:
        net = A.load(FIX / "braille_noDelay_noBias_subtract.nir")
    msgs = " | ".join(str(w.message) for w in rec)
    assert "dt = 0.0001 s was inferred" in msgs and "pass dt=" in msgs
    assert "no profile given" in msgs
    assert net.metadata["dt"] == pytest.approx(1e-4)
    assert net.metadata["dt_source"].startswith("inferred")
    assert net.metadata["profile"] == "generic"


def test_fixture_cnn_sinabs():
    net = quiet_load(FIX / "cnn_sinabs.nir", profile="sinabs")
    assert [tuple(p.shape) for p in net.populations] == [
        (16, 16, 16),
        (16, 16, 16),
        (8, 8, 8),
        (256,),
        (10,),
    ]
    assert all(p.multi_spike and p.threshold_op == ">=" for p in net.populations)
    assert all(p.reset == "subtract" for p in net.populations)
    kinds = [type(p).__name__ for p in net.projections]
    assert kinds == ["Conv2d", "Conv2d", "Conv2d", "Dense", "Dense"]
    pooled = net.projections[2]  # SumPool2d(2) -> Conv2d(8, 16, 3, 3, padding 1)
    assert pooled.weight.shape == (8, 16, 6, 6)
    assert pooled.stride == (2, 2) and pooled.padding == (2, 2)
    assert net.metadata["dt"] == 1.0 and net.metadata["dt_source"] == "profile 'sinabs'"


def test_fixture_lif_norse_old_convention():
    with pytest.warns(UserWarning, match="older Norse file"):
        net = A.load(FIX / "lif_norse.nir", profile="norse")
    (pop,) = net.populations
    assert net.metadata["dt"] == 1e-3
    np.testing.assert_allclose(pop.beta, 1 - 1e-3 / 2.5e-3)
    assert pop.threshold.ravel()[0] == pytest.approx(0.1)


def test_fixture_lif_rockpool_unverified():
    with pytest.warns(UserWarning) as rec:
        net = A.load(FIX / "lif_rockpool.nir", profile="rockpool")
    assert any("not verified" in str(w.message) for w in rec)
    assert net.metadata["dt"] == pytest.approx(1e-4, rel=1e-5)
    (pop,) = net.populations
    np.testing.assert_allclose(pop.beta, np.exp(-1e-4 / 2.5e-3), rtol=1e-6)
    assert net.metadata["verified_profile"] is False


def fixture_profile(name):
    """The trainer profile of each shared NIR fixture (by the exporter that wrote it)."""
    return {
        "lif_norse.nir": "norse",
        "lif_rockpool.nir": "rockpool",
        "cnn_sinabs.nir": "sinabs",
    }.get(name, "snntorch")


@pytest.mark.parametrize("name", sorted(p.name for p in FIX.glob("*.nir")))
def test_every_fixture_loads_and_runs(name):
    net = quiet_load(FIX / name, profile=fixture_profile(name))
    frames = np.ones((1, 3, *net.input_shape))
    res = A.Simulator(net, policy="fifo", group_size=4).run(frames)
    assert res.spikes.shape == (1, 3, len(net.populations))


# --------------------------------------------------------------------------- node types
def test_affine_lif_matches_euler_reference():
    rng = np.random.default_rng(1)
    w = rng.normal(0.5, 0.5, (3, 4))
    b = rng.normal(0, 0.2, 3)
    g = graph(
        {
            "input": inp(4),
            "fc": nir.Affine(weight=w, bias=b),
            "lif": lif(3, tau=0.004, thr=0.3),
            "output": out(3),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    net = quiet_load(g, dt=DT)
    assert net.metadata["dt_source"] == "argument"
    x = rng.uniform(0, 2, (1, 50, 4))
    res = A.Simulator(net, policy="layered").run(x)
    s_ref, _ = euler_lif(x[0] @ w.T + b, 0.004, 0.3)
    np.testing.assert_array_equal(res.output_spikes[0], s_ref)
    assert s_ref.sum() > 0


def test_several_edges_into_one_node_add_up():
    rng = np.random.default_rng(2)
    w = rng.normal(0.5, 0.3, (3, 3))
    s = np.array([0.3, -0.2, 0.5])
    g = graph(
        {
            "input": inp(3),
            "a": nir.Linear(weight=w),
            "b": nir.Scale(scale=s),
            "lif": lif(3, tau=0.005, thr=0.4),
            "output": out(3),
        },
        [("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")],
    )
    net = quiet_load(g, dt=DT)
    assert sorted(type(p).__name__ for p in net.projections) == ["Dense", "OneToOne"]
    x = rng.uniform(0, 2, (1, 40, 3))
    res = A.Simulator(net, policy="layered").run(x)
    s_ref, _ = euler_lif(x[0] @ w.T + x[0] * s, 0.005, 0.4)
    np.testing.assert_array_equal(res.output_spikes[0], s_ref)


def test_operator_chain_is_composed():
    """Affine -> Scale -> Affine between two neuron nodes: one composed projection whose
    weight is the matrix product, biases pushed through the chain."""
    rng = np.random.default_rng(3)
    w1, b1 = rng.normal(size=(5, 4)), rng.normal(size=5)
    sc = rng.normal(size=5)
    w2, b2 = rng.normal(size=(3, 5)), rng.normal(size=3)
    g = graph(
        {
            "input": inp(4),
            "a1": nir.Affine(weight=w1, bias=b1),
            "s": nir.Scale(scale=sc),
            "a2": nir.Affine(weight=w2, bias=b2),
            "lif": nir.IF(r=np.full(3, 1.0 / DT), v_threshold=np.full(3, 5.0)),
            "output": out(3),
        },
        [("input", "a1"), ("a1", "s"), ("s", "a2"), ("a2", "lif"), ("lif", "output")],
    )
    net = quiet_load(g, dt=DT)
    (pr,) = net.projections
    np.testing.assert_allclose(pr.weight, w2 @ np.diag(sc) @ w1, rtol=1e-12)
    np.testing.assert_allclose(net.populations[0].bias, w2 @ (sc * b1) + b2, rtol=1e-12)
    np.testing.assert_array_equal(net.populations[0].beta, 1.0)  # IF: no leak


def test_delay_node_shifts_spikes():
    w = np.eye(2) * 2.0
    nodes = {
        "input": inp(2),
        "fc": nir.Linear(weight=w),
        "lif": lif(2, tau=1.0, r=1 / DT),
        "output": out(2),
    }
    plain = graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    nodes_d = dict(nodes, d=nir.Delay(delay=np.full(2, 3 * DT)))
    delayed = graph(nodes_d, [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")])
    x = np.zeros((1, 12, 2))
    x[0, [0, 4], 0] = 1.0
    x[0, 1, 1] = 1.0
    r0 = A.Simulator(quiet_load(plain, dt=DT, v_init="zero"), policy="layered").run(x)
    net_d = quiet_load(delayed, dt=DT, v_init="zero")
    assert net_d.projections[0].delay == 3
    r3 = A.Simulator(net_d, policy="layered").run(x)
    assert r0.output_spikes.sum() == 3
    np.testing.assert_array_equal(r3.output_spikes[0, 3:], r0.output_spikes[0, :-3])


def test_nonuniform_delay_splits_projection():
    g = graph(
        {
            "input": inp(2),
            "fc": nir.Linear(weight=np.eye(2) * 2.0),
            "d": nir.Delay(delay=np.array([1 * DT, 2 * DT])),
            "lif": lif(2, tau=1.0, r=1 / DT),
            "output": out(2),
        },
        [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")],
    )
    net = quiet_load(g, dt=DT, v_init="zero")
    assert sorted(p.delay for p in net.projections) == [1, 2]
    x = np.zeros((1, 5, 2))
    x[0, 0] = 1.0
    res = A.Simulator(net, policy="layered").run(x)
    assert res.output_spikes[0, 1].tolist() == [1, 0]
    assert res.output_spikes[0, 2].tolist() == [0, 1]


def test_nested_subgraph_equals_flat_graph():
    rng = np.random.default_rng(4)
    w = rng.normal(0.6, 0.3, (3, 4))
    inner = graph(
        {"in": inp(3), "lif": lif(3, tau=0.003, thr=0.5), "out": out(3)},
        [("in", "lif"), ("lif", "out")],
    )
    nested = graph(
        {"input": inp(4), "fc": nir.Linear(weight=w), "sub": inner, "output": out(3)},
        [("input", "fc"), ("fc", "sub"), ("sub", "output")],
    )
    flat = graph(
        {
            "input": inp(4),
            "fc": nir.Linear(weight=w),
            "lif": lif(3, tau=0.003, thr=0.5),
            "output": out(3),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    a, b = quiet_load(nested, dt=DT), quiet_load(flat, dt=DT)
    assert [p.name for p in a.populations] == ["sub.lif"]
    x = rng.uniform(0, 2, (2, 30, 4))
    ra = A.Simulator(a, policy="layered").run(x)
    rb = A.Simulator(b, policy="layered").run(x)
    np.testing.assert_array_equal(ra.output_spikes, rb.output_spikes)
    assert ra.output_spikes.sum() > 0


def test_cycle_gets_one_step_delay():
    """LIF <-> Linear recurrence: the closing edge carries the previous step's spikes."""
    g = graph(
        {
            "input": inp(1),
            "fc": nir.Linear(weight=np.array([[2.0]])),
            "lif": lif(1, tau=1.0, thr=1.0, r=1 / DT),
            "rec": nir.Linear(weight=np.array([[2.0]])),
            "output": out(1),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    net = quiet_load(g, dt=DT, v_init="zero")
    rec = [p for p in net.projections if p.name == "rec"]
    assert rec[0].delay == 1
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1.0  # one input spike; the self-excitation keeps the neuron firing
    res = A.Simulator(net, policy="layered").run(x)
    # tau = 1 s at dt = 1 ms: beta = 0.999; v = 2 at t=0 (spike), then 2 from itself each step
    assert res.output_spikes[0, :, 0].tolist() == [1, 1, 1, 1, 1, 1]


def test_threshold_i_and_li_nodes():
    """Threshold = memoryless comparison; I integrates (v += dt*r*x); LI leaks."""
    g = graph(
        {
            "input": inp(2),
            "th": nir.Threshold(threshold=np.array([0.5, 1.5])),
            "sc": nir.Scale(scale=np.array([1.0, 1.0])),
            "int": nir.I(r=np.array([1.0 / DT, 2.0 / DT])),
            "output": out(2),
        },
        [("input", "th"), ("th", "sc"), ("sc", "int"), ("int", "output")],
    )
    net = quiet_load(g, dt=DT)
    th = net.population("th")
    np.testing.assert_array_equal(th.beta, 0.0)
    assert net.readout == "sum" and not net.population("int").spiking
    x = np.tile(np.array([1.0, 1.0]), (1, 4, 1))
    x[0, 2] = [0.0, 2.0]
    res = A.Simulator(net, policy="layered").run(x)
    # th fires [1,0],[1,0],[0,1],[1,0]; int accumulates r*dt*count: [1,2,2,3] and [0,0,2,2]
    np.testing.assert_allclose(res.output_potentials[0], [[1, 0], [2, 0], [2, 2], [3, 2]])


def test_li_readout_potential_matches_euler():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, 3))
    g = graph(
        {
            "input": inp(3),
            "fc": nir.Linear(weight=w),
            "li": nir.LI(tau=np.array([0.004, 0.01]), r=np.ones(2), v_leak=np.array([0.1, -0.2])),
            "output": out(2),
        },
        [("input", "fc"), ("fc", "li"), ("li", "output")],
    )
    net = quiet_load(g, dt=DT)
    x = rng.uniform(0, 1, (1, 20, 3))
    res = A.Simulator(net, policy="layered").run(x)
    tau, vl = np.array([0.004, 0.01]), np.array([0.1, -0.2])
    v = vl.copy()  # generic profile: v_init = v_leak
    ref = []
    for xt in x[0]:
        v = v + DT / tau * (vl - v + w @ xt)
        ref.append(v.copy())
    # weights are float32 in the engine (compile.py): float32 tolerance
    np.testing.assert_allclose(res.output_potentials[0], ref, rtol=1e-6, atol=1e-7)


def test_cubalif_generic_euler():
    """NIR Euler CubaLIF, with an Affine bias that enters the synaptic current."""
    rng = np.random.default_rng(6)
    w = rng.normal(1.0, 0.5, (3, 2))
    b = np.array([0.3, -0.2, 0.1])
    ts, tm = np.array([0.002, 0.004, 0.008]), np.array([0.005, 0.01, 0.02])
    w_in, r = np.array([1.0, 2.0, 0.5]), np.array([1.0, 1.5, 2.0])
    g = graph(
        {
            "input": inp(2),
            "fc": nir.Affine(weight=w, bias=b),
            "c": nir.CubaLIF(
                tau_syn=ts,
                tau_mem=tm,
                r=r,
                v_leak=np.zeros(3),
                v_threshold=np.full(3, 0.2),
                w_in=w_in,
            ),
            "output": out(3),
        },
        [("input", "fc"), ("fc", "c"), ("c", "output")],
    )
    net = quiet_load(g, dt=DT)
    x = rng.uniform(0, 3, (1, 60, 2))
    res = A.Simulator(net, policy="layered").run(x)
    i = np.zeros(3)
    v = np.zeros(3)
    ref = []
    for xt in x[0]:  # NIR Euler reading (notes/trainers.md section 4)
        i = i + DT / ts * (w_in * (w @ xt + b) - i)
        v = v + DT / tm * (0.0 - v + r * i)
        s = v > 0.2
        v = np.where(s, 0.0, v)
        ref.append(s.astype(int))
    np.testing.assert_array_equal(res.output_spikes[0], np.array(ref))
    assert np.array(ref).sum() > 0


def _conv2d_loops(x, w, stride, pad, dil, groups):
    """Direct-loop cross-correlation (independent of the loader's numpy version)."""
    co, cpg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    ho = (xp.shape[1] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[2] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((co, ho, wo))
    opg = co // groups
    for o in range(co):
        g0 = (o // opg) * cpg
        for i in range(ho):
            for j in range(wo):
                acc = 0.0
                for c in range(cpg):
                    for a in range(kh):
                        for b in range(kw):
                            acc += (
                                w[o, c, a, b]
                                * xp[g0 + c, i * stride[0] + a * dil[0], j * stride[1] + b * dil[1]]
                            )
                y[o, i, j] = acc
    return y


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [((1, 1), "same", (2, 1), 2), ((2, 1), (1, 0), (1, 1), 1), ((1, 1), "valid", (1, 2), 4)],
)
def test_conv2d_options(stride, padding, dilation, groups):
    rng = np.random.default_rng(7)
    w = rng.normal(size=(4, 4 // groups, 3, 2))
    cv = nir.Conv2d(
        input_shape=(7, 6),
        weight=w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=np.zeros(4),
    )
    x = rng.uniform(-1, 1, (4, 7, 6))
    if padding == "same":
        th, tw = dilation[0] * 2, dilation[1] * 1
        pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    elif padding == "valid":
        pad = (0, 0, 0, 0)
    else:
        pad = (padding[0], padding[0], padding[1], padding[1])
    y = _conv2d_loops(x, w, stride, pad, dilation, groups)
    g = graph(
        {
            "input": inp(4, 7, 6),
            "cv": cv,
            "int": nir.I(r=np.full(y.shape, 1.0 / DT)),
            "output": out(*y.shape),
        },
        [("input", "cv"), ("cv", "int"), ("int", "output")],
    )
    net = quiet_load(g, dt=DT)
    assert isinstance(net.projections[0], A.Conv2d)
    res = A.Simulator(net, policy="layered").run(x[None, None])
    np.testing.assert_allclose(res.output_potentials[0, 0], y.ravel(), rtol=1e-5, atol=1e-5)


def _pool_conv_graph(size, pool, kernel, stride, w, bias=None):
    """input (3, size, size) -> IF -> pool(kernel, stride) -> Conv2d(w, padding 1) -> I."""
    c_out = w.shape[0]
    ps = (size - kernel) // stride + 1
    cls = nir.SumPool2d if pool == "sum" else nir.AvgPool2d
    return graph(
        {
            "input": inp(3, size, size),
            "if": nir.IF(
                r=np.full((3, size, size), 1.0 / DT), v_threshold=np.full((3, size, size), 0.5)
            ),
            "pool": cls(
                kernel_size=np.array([kernel, kernel]),
                stride=np.array([stride, stride]),
                padding=np.array([0, 0]),
            ),
            "cv": nir.Conv2d(
                input_shape=(ps, ps),
                weight=w,
                stride=1,
                padding=1,
                dilation=1,
                groups=1,
                bias=np.zeros(c_out) if bias is None else bias,
            ),
            "int": nir.I(r=np.full((c_out, ps, ps), 1.0 / DT)),
            "output": out(c_out, ps, ps),
        },
        [("input", "if"), ("if", "pool"), ("pool", "cv"), ("cv", "int"), ("int", "output")],
    )


def test_conv1d_and_pool_chain_composed():
    """Conv1d on (C, L) and SumPool2d followed by Conv2d (composed into one projection)."""
    rng = np.random.default_rng(8)
    w1 = rng.normal(size=(3, 2, 3))
    g = graph(
        {
            "input": inp(2, 9),
            "c1": nir.Conv1d(
                input_shape=9,
                weight=w1,
                stride=2,
                padding=1,
                dilation=1,
                groups=1,
                bias=np.zeros(3),
            ),
            "int": nir.I(r=np.full((3, 5), 1.0 / DT)),
            "output": out(3, 5),
        },
        [("input", "c1"), ("c1", "int"), ("int", "output")],
    )
    net = quiet_load(g, dt=DT)
    assert tuple(net.input_shape) == (2, 1, 9)
    x = rng.uniform(-1, 1, (2, 9))
    res = A.Simulator(net, policy="layered").run(x.reshape(1, 1, 2, 1, 9))
    y = _conv2d_loops(x[:, None, :], w1[:, :, None, :], (1, 2), (0, 0, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(res.output_potentials[0, 0], y.ravel(), rtol=1e-5, atol=1e-5)

    w2 = rng.normal(size=(2, 3, 3, 3))
    g2 = _pool_conv_graph(8, "sum", 2, 2, w2, bias=np.array([0.1, -0.1]))
    net2 = quiet_load(g2, dt=DT)
    assert isinstance(net2.projections[1], A.Conv2d)  # pool -> conv is one convolution
    xs = (rng.random((3, 8, 8)) < 0.5).astype(float)
    res2 = A.Simulator(net2, policy="layered").run(xs[None, None])
    pooled = xs.reshape(3, 4, 2, 4, 2).sum(axis=(2, 4))
    y2 = (
        _conv2d_loops(pooled, w2, (1, 1), (1, 1, 1, 1), (1, 1), 1)
        + np.array([0.1, -0.1])[:, None, None]
    )
    np.testing.assert_allclose(res2.output_potentials[0, 0], y2.ravel(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("size", "pool", "kernel", "stride", "zero", "structured"),
    [
        (8, "sum", 2, 2, False, True),
        (8, "avg", 2, 2, False, True),
        (9, "sum", 3, 3, False, True),
        (9, "sum", 2, 2, False, False),  # the pool drops the last row and column
        (8, "sum", 2, 1, False, False),  # overlapping windows
        (8, "sum", 2, 2, True, False),  # a zero weight is no synapse in a sparse matrix
    ],
)
def test_pool_then_conv_loaded_as_one_convolution_or_composed(
    size, pool, kernel, stride, zero, structured
):
    """A pool whose windows tile its input followed by a convolution becomes one Conv2d;
    anything else is composed into a matrix. Either way the potentials equal explicit
    loops (pool by reshaping, convolution by direct loops)."""
    rng = np.random.default_rng(size + kernel + stride)
    w = rng.normal(size=(2, 3, 3, 3))
    if zero:
        w[1, 2, 0, 1] = 0.0
    net = quiet_load(_pool_conv_graph(size, pool, kernel, stride, w), dt=DT)
    assert isinstance(net.projections[1], A.Conv2d) == structured
    xs = (rng.random((3, size, size)) < 0.5).astype(float)
    res = A.Simulator(net, policy="layered").run(xs[None, None])
    ps = (size - kernel) // stride + 1
    windows = np.zeros((3, ps, ps))
    for i in range(ps):
        for j in range(ps):
            win = xs[:, i * stride : i * stride + kernel, j * stride : j * stride + kernel]
            windows[:, i, j] = win.sum(axis=(1, 2))
    if pool == "avg":
        windows /= kernel * kernel
    y = _conv2d_loops(windows, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(res.output_potentials[0, 0], y.ravel(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy", ["layered", "fifo", "momentum", "random"])
def test_pool_then_conv_as_one_convolution_runs_like_the_composed_matrix(policy):
    """SumPool2d(2) then a 3x3 convolution with padding 1, as the importer now writes it
    (one Conv2d: each tap a 2x2 block, stride 2, padding 2) and as it used to (a Sparse
    projection of the composed matrix, built here by explicit loops): every result of
    every policy is identical, event log included."""
    rng = np.random.default_rng(3)
    k = rng.normal(0.3, 0.4, size=(4, 3, 3, 3))
    m = np.zeros((4 * 4 * 4, 3 * 8 * 8))
    for s in range(3 * 8 * 8):
        x = np.zeros(3 * 8 * 8)
        x[s] = 1.0
        pooled = x.reshape(3, 4, 2, 4, 2).sum(axis=(2, 4))
        m[:, s] = _conv2d_loops(pooled, k, (1, 1), (1, 1, 1, 1), (1, 1), 1).ravel()
    ti, si = np.nonzero(m)
    pops = [
        A.Population("a", (3, 8, 8), threshold=0.5),
        A.Population("b", (4, 4, 4), threshold=0.7, reset="subtract"),
        A.Population("o", 3, threshold=1.0),
    ]
    readout = A.Dense("r", "b", "o", rng.normal(0.2, 0.3, (3, 64)))
    first = A.Dense("i", "input", "a", rng.uniform(0.0, 1.0, (192, 6)))
    conv = A.Conv2d(
        "c", "a", "b", weight=np.repeat(np.repeat(k, 2, axis=2), 2, axis=3), stride=2, padding=2
    )
    sparse = A.Sparse("c", "a", "b", source_index=si, target_index=ti, weight=m[ti, si])
    x = (rng.random((3, 5, 6)) < 0.5).astype(float)
    results = [
        A.Simulator(A.Network(6, pops, [first, proj, readout]), policy, 1, record_events=True).run(
            x, labels=[0, 1, 2]
        )
        for proj in (conv, sparse)
    ]
    assert results[0].spikes[:, :, 1].sum() > 20  # the convolution's target does spike
    for name in A.Result.array_names():
        np.testing.assert_array_equal(
            getattr(results[0], name), getattr(results[1], name), err_msg=name
        )
    assert len(results[0].events) == len(results[1].events) == 3
    for a, b in zip(results[0].events, results[1].events, strict=True):
        np.testing.assert_array_equal(a, b)


def test_output_fed_by_operator_gets_readout_population():
    w = np.array([[1.0, -1.0]])
    g = graph(
        {
            "input": inp(2),
            "lif": nir.IF(r=np.full(2, 1 / DT), v_threshold=np.full(2, 0.5)),
            "fc": nir.Affine(weight=w, bias=np.array([0.25])),
            "output": out(1),
        },
        [("input", "lif"), ("lif", "fc"), ("fc", "output")],
    )
    with pytest.warns(UserWarning, match="non-spiking readout population"):
        net = A.io.from_nir(g, dt=DT, profile="generic")
    assert net.output == "output" and net.readout == "sum"
    x = np.array([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])
    res = A.Simulator(net, policy="layered").run(x)
    np.testing.assert_allclose(res.output_potentials[0, :, 0], [1.25, -0.75, 0.25])


def test_profile_overrides_are_recorded():
    net = quiet_load(
        FIX / "braille_noDelay_noBias_subtract.nir",
        profile="snntorch",
        threshold_op=">=",
        reset_delay=False,
    )
    m = net.metadata
    assert m["threshold_op"] == ">=" and m["reset_delay"] is False
    assert m["overridden"] == ["reset_delay", "threshold_op"]
    assert all(p.threshold_op == ">=" for p in net.populations)
    assert net.populations[0].metadata["nir_type"] == "CubaLIF"


def test_digits_model_metadata_for_inspect():
    net = A.load(Path(__file__).parents[1] / "models" / "digits" / "model.nir")
    m = net.metadata
    for key in (
        "profile",
        "dt",
        "dt_source",
        "discretisation",
        "threshold_op",
        "reset",
        "reset_delay",
        "v_init",
        "trainer",
    ):
        assert key in m
    assert m["profile_source"] == "file metadata" and m["file_metadata"]["source"] == "snntorch"
    assert m["overridden"] == []  # the metadata's reset settings equal the profile's


# --------------------------------------------------------------------------- round trips
def _random_network(rng) -> A.Network:
    pops = [
        A.Population(
            "conv",
            (2, 6, 6),
            threshold=rng.uniform(0.5, 1, 2),
            beta=0.9,
            reset="subtract",
            reset_delay=True,
        ),
        A.Population(
            "pool",
            (2, 3, 3),
            threshold=0.8,
            beta=rng.uniform(0.5, 1, (2, 3, 3)),
            v_reset=-0.1,
            threshold_op=">=",
        ),
        A.Population(
            "syn",
            5,
            threshold=rng.uniform(0.5, 1.5, 5),
            beta=0.8,
            alpha=rng.uniform(0, 1, 5),
            bias=rng.normal(0, 0.1, 5),
        ),
        A.Population(
            "ms", 4, threshold=0.7, beta=1.0, multi_spike=True, reset="subtract", v_init=0.2
        ),
        A.Population("out", 3, threshold=np.inf, beta=0.7, bias=0.05),
    ]
    projs = [
        A.Conv2d("c1", "input", "conv", weight=rng.normal(0.3, 0.5, (2, 1, 3, 3)), padding="same"),
        A.pool2d("p1", "conv", "pool", channels=2, kernel=2, mode="avg"),
        A.Dense("d1", "pool", "syn", weight=rng.normal(0.3, 0.5, (5, 18))),
        A.Sparse(
            "s1",
            "syn",
            "ms",
            source_index=[0, 1, 4, 4],
            target_index=[0, 2, 3, 1],
            weight=[1.0, 0.5, -0.3, 0.8],
        ),
        A.OneToOne("rec", "ms", "ms", weight=rng.normal(0, 0.2, 4), delay=1),
        A.Dense("d2", "ms", "out", weight=rng.normal(0, 1, (3, 4)), delay=2),
        A.Dense("skip", "syn", "out", weight=rng.normal(0, 1, (3, 5))),
    ]
    return A.Network(
        (1, 6, 6), pops, projs, output="out", name="rt", metadata={"k": [1, 2], "s": "x"}
    )


def _same_network(a: A.Network, b: A.Network) -> None:
    assert tuple(a.input_shape) == tuple(b.input_shape)
    assert (a.output, a.readout, a.name, a.metadata) == (b.output, b.readout, b.name, b.metadata)
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations, strict=True):
        for f in (
            "shape",
            "reset",
            "threshold_op",
            "reset_delay",
            "refractory",
            "refractory_dropout",
            "syn_immediate",
            "multi_spike",
            "metadata",
        ):
            assert getattr(p, f) == getattr(q, f), (p.name, f)
        for f in (
            "threshold",
            "beta",
            "v_reset",
            "bias",
            "v_init",
            "alpha",
            "syn_gain",
            "syn_bias",
        ):
            np.testing.assert_array_equal(getattr(p, f), getattr(q, f), err_msg=f"{p.name}.{f}")
    assert len(a.projections) == len(b.projections)
    for p, q in zip(a.projections, b.projections, strict=True):
        assert type(p) is type(q) and p.__dict__.keys() == q.__dict__.keys()
        for k, v in p.__dict__.items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, q.__dict__[k], err_msg=f"{p.name}.{k}")
            else:
                assert v == q.__dict__[k], (p.name, k)


def test_h5_round_trip_is_identical(tmp_path):
    net = _random_network(np.random.default_rng(9))
    path = A.save(net, tmp_path / "net.h5")
    _same_network(net, A.load(path))
    assert [p.name for p in tmp_path.iterdir()] == ["net.h5"]  # no temporary files left


def test_nir_round_trip_simulates_identically(tmp_path):
    rng = np.random.default_rng(10)
    net = _random_network(rng)
    path = A.save(net, tmp_path / "net.nir")
    back = A.load(path)  # no warning: an asyncsim-written file is exact
    assert back.metadata == net.metadata
    assert [p.name for p in back.projections] and {p.name for p in back.projections} == {
        p.name for p in net.projections
    }
    frames = (rng.random((3, 15, 1, 6, 6)) < 0.6).astype(float) * 1.5
    for policy, f in (("layered", 1), ("fifo", 1), ("momentum", 3)):
        ra = A.Simulator(net, policy=policy, group_size=f).run(frames)
        rb = A.Simulator(back, policy=policy, group_size=f).run(frames)
        np.testing.assert_array_equal(ra.spikes, rb.spikes)
        np.testing.assert_array_equal(ra.output_potentials, rb.output_potentials)
        np.testing.assert_array_equal(ra.synops, rb.synops)
    assert ra.spikes.sum() > 0
    # other tools see standard NIR: the graph reads with type checks off
    g = nir.read(path, type_check=False)
    assert type(g.nodes["syn"]).__name__ == "CubaLIF" and type(g.nodes["out"]).__name__ == "LI"
    assert type(g.nodes["rec.delay"]).__name__ == "Delay"


def test_digits_nir_to_h5_to_nir(tmp_path):
    net = A.load(Path(__file__).parents[1] / "models" / "digits" / "model.nir")
    _same_network(net, A.load(A.save(net, tmp_path / "d.h5")))
    back = A.load(A.save(net, tmp_path / "d.nir"))
    frames, labels = A.load_inputs(Path(__file__).parents[1] / "models" / "digits" / "test.npz")
    ra = A.Simulator(net, policy="layered").run(frames[:50], labels[:50])
    rb = A.Simulator(back, policy="layered").run(frames[:50], labels[:50])
    np.testing.assert_array_equal(ra.output_spikes, rb.output_spikes)


def test_save_refuses_to_overwrite(tmp_path):
    net = _random_network(np.random.default_rng(11))
    A.save(net, tmp_path / "a.h5")
    with pytest.raises(A.AsyncsimError, match="already exists; pass --force"):
        A.save(net, tmp_path / "a.h5")
    A.save(net, tmp_path / "a.h5", overwrite=True)
    with pytest.raises(A.AsyncsimError, match="cannot tell the format"):
        A.save(net, tmp_path / "a.txt")
    A.save(net, tmp_path / "a.txt", format="nir")
    assert type(A.load(tmp_path / "a.txt", format="nir")) is A.Network


def test_cubali_readout_and_spyx_rockpool_dt():
    """CubaLI is a non-spiking CubaLIF; spyx / rockpool solve dt from their r conventions."""
    g = graph(
        {
            "input": inp(2),
            "fc": nir.Linear(weight=np.eye(2)),
            "c": nir.CubaLI(
                tau_syn=np.full(2, 0.002),
                tau_mem=np.full(2, 0.004),
                r=np.ones(2),
                v_leak=np.zeros(2),
                w_in=np.ones(2),
            ),
            "output": out(2),
        },
        [("input", "fc"), ("fc", "c"), ("c", "output")],
    )
    net = quiet_load(g, dt=DT, profile="generic")
    c = net.population("c")
    assert not c.spiking and net.readout == "sum"
    np.testing.assert_allclose(c.alpha, 0.5)
    np.testing.assert_allclose(c.beta, 0.75)
    x = np.zeros((1, 3, 2))
    x[0, 0, 0] = 1.0
    res = A.Simulator(net, policy="layered").run(x)
    # I: 0.5, 0.25, 0.125 ; v: v + 0.25*(I - v): 0.125, 0.15625, 0.1484375
    np.testing.assert_allclose(res.output_potentials[0, :, 0], [0.125, 0.15625, 0.1484375])

    tau = np.array([0.01, 0.02])
    spyx = graph(
        {"input": inp(2), "fc": nir.Linear(weight=np.eye(2)), "l": lif(2, r=0.0), "output": out(2)},
        [("input", "fc"), ("fc", "l"), ("l", "output")],
    )
    spyx.nodes["l"].tau = tau
    spyx.nodes["l"].r = 1 - 1e-3 / tau  # Spyx writes r = beta = 1 - dt/tau
    with pytest.warns(UserWarning) as rec:
        n2 = A.io.from_nir(spyx, profile="spyx")
    assert n2.metadata["dt"] == pytest.approx(1e-3)
    assert any("not verified" in str(w.message) for w in rec)
    rock = copy_graph_with_r(spyx, tau * np.exp(-1e-4 / tau) / 1e-4)
    with pytest.warns(UserWarning):
        n3 = A.io.from_nir(rock, profile="rockpool")
    assert n3.metadata["dt"] == pytest.approx(1e-4)
    np.testing.assert_allclose(n3.populations[0].beta, np.exp(-1e-4 / tau))


def copy_graph_with_r(g, r):
    import copy

    g2 = copy.deepcopy(g)
    g2.nodes["l"].r = r
    return g2


@pytest.mark.parametrize("name", sorted(p.name for p in FIX.glob("*.nir")))
def test_fixture_networks_round_trip_through_h5(tmp_path, name):
    net = quiet_load(FIX / name, profile=fixture_profile(name))
    _same_network(net, A.load(A.save(net, tmp_path / "f.h5")))
