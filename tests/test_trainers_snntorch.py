"""snnTorch -> NIR -> asyncsim: layered execution must reproduce snnTorch's spikes exactly.

Every model is exported with snnTorch's own exporter (``export_to_nir``), written and read
back with ``nir``, loaded with ``asyncsim.load(profile="snntorch", ...)`` and run with
``Simulator(policy="layered")``. The reference is snnTorch's forward pass in float64
(parameters are float32 tensors, so the export holds exactly what the trainer used).
Spike trains of the output layer must be identical timestep by timestep, and every hidden
layer's spike count per timestep must match.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")
from snntorch.export_nir import export_to_nir  # noqa: E402

import asyncsim as A  # noqa: E402

from .trainer_utils import assert_same_spikes, layered  # noqa: E402

pytestmark = pytest.mark.trainers
T, S = 40, 4


def _params(shape, rng):
    beta = torch.tensor(rng.uniform(0.5, 0.95, shape), dtype=torch.float32)
    thr = torch.tensor(rng.uniform(0.5, 1.5, shape), dtype=torch.float32)
    return beta, thr


def _leaky(shape, rng, **kw):
    beta, thr = _params(shape, rng)
    return snn.Leaky(beta=beta, threshold=thr, init_hidden=False, **kw)


def _export(net, sample, path):
    """snnTorch's exporter traces the modules with ``init_hidden=True`` (each neuron layer
    then returns only its spikes); the forward passes here use explicit state instead."""
    neurons = [m for m in net if isinstance(m, snn.SpikingNeuron)]
    for m in neurons:
        m.init_hidden = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = export_to_nir(net, sample, ignore_dims=[0])
    finally:
        for m in neurons:
            m.init_hidden = False
    nir.write(path, g)
    return path


def _run(net, x):
    """snnTorch forward pass in float64 with explicit state; ``x``: (S, T, ...) float64.
    Returns the output spikes (S, T, K) and every spiking layer's spikes."""
    layers = list(net)
    state: dict[int, tuple] = {}
    outs: dict[int, list] = {
        i: [] for i, m in enumerate(layers) if isinstance(m, snn.SpikingNeuron)
    }
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = x[:, t]
            for i, m in enumerate(layers):
                if isinstance(m, snn.RLeaky):
                    spk, mem = state.get(i, (torch.zeros_like(h), torch.zeros_like(h)))
                    spk, mem = m(h, spk, mem)
                    h = spk.double()  # snnTorch emits float32 spikes even in float64
                    state[i] = (h, mem)
                elif isinstance(m, snn.Synaptic):
                    syn, mem = state.get(i, (torch.zeros_like(h), torch.zeros_like(h)))
                    spk, syn, mem = m(h, syn, mem)
                    h = spk.double()
                    state[i] = (syn, mem)
                elif isinstance(m, snn.Leaky):
                    mem = state.get(i, (torch.zeros_like(h),))[0]
                    spk, mem = m(h, mem)
                    h = spk.double()
                    state[i] = (mem,)
                else:
                    h = m(h)
                if i in outs:
                    outs[i].append(h.numpy().copy())
    layer_spikes = {i: np.stack(v, axis=1) for i, v in outs.items()}
    last = max(layer_spikes)
    return layer_spikes[last].astype(np.int64), layer_spikes


def _per_layer(net, layer_spikes, names):
    idx = sorted(layer_spikes)
    return {names[k]: layer_spikes[i] for k, i in enumerate(idx)}


def _spiking_names(anet):
    return [p.name for p in anet.populations]


@pytest.mark.parametrize(
    ("reset", "delay"),
    [("subtract", True), ("zero", True), ("zero", False)],
    ids=["subtract-delay(default)", "zero-delay", "zero-nodelay"],
)
@pytest.mark.parametrize("inputs", ["spikes", "currents"])
def test_feedforward_leaky(tmp_path, reset, delay, inputs):
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    kw = dict(reset_mechanism=reset, reset_delay=delay)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 30),
        _leaky((30,), rng, **kw),
        torch.nn.Linear(30, 8),
        _leaky((8,), rng, **kw),
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    if inputs == "spikes":
        x = (rng.random((S, T, 20)) < 0.3).astype(np.float64)
    else:
        x = rng.uniform(-0.2, 1.0, (S, T, 20))
    out, layers = _run(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 20), tmp_path / "ff.nir")
    anet, res = layered(path, x, profile="snntorch", reset=reset, reset_delay=delay)
    assert anet.metadata["reset"] == reset and anet.metadata["reset_delay"] == delay
    n = assert_same_spikes(res, out, _per_layer(net, layers, _spiking_names(anet)))
    assert 0 < n < out.size  # neither silent nor saturated


def test_feedforward_subtract_nodelay_warns_only_where_inexact(tmp_path):
    """snnTorch's reset_delay=False with subtraction decides the next spike on a potential
    that is reduced by the threshold again whenever the post-reset potential still exceeds
    the threshold (notes/trainers.md). With inputs that never push v above 2*theta the
    readings agree exactly; asyncsim reproduces that regime."""
    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    kw = dict(reset_mechanism="subtract", reset_delay=False)
    net = torch.nn.Sequential(torch.nn.Linear(10, 12), _leaky((12,), rng, **kw)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(rng.uniform(0.0, 0.3, (12, 10))))
        net[0].bias.zero_()
    x = (rng.random((S, T, 10)) < 0.3).astype(np.float64)
    out, _layers = _run(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 10), tmp_path / "sub.nir")
    with pytest.warns(UserWarning, match="reset_delay=False with reset='subtract'"):
        _, res = layered(path, x, profile="snntorch", reset="subtract", reset_delay=False)
    assert assert_same_spikes(res, out) > 0
    # the documented limit: drive far above 2*theta and the two readings part ways
    x_big = x * 8.0
    out_big, _ = _run(net.double(), torch.tensor(x_big))
    with pytest.warns(UserWarning, match="reset_delay=False"):
        _, res_big = layered(path, x_big, profile="snntorch", reset="subtract", reset_delay=False)
    assert (res_big.output_spikes != out_big).any()


@pytest.mark.parametrize(("reset", "delay"), [("subtract", True), ("zero", False)])
def test_synaptic(tmp_path, reset, delay):
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    alpha = torch.tensor(rng.uniform(0.3, 0.9, 16), dtype=torch.float32)
    beta, thr = _params((16,), rng)
    alpha2 = torch.tensor(rng.uniform(0.3, 0.9, 6), dtype=torch.float32)
    beta2, thr2 = _params((6,), rng)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 16),
        snn.Synaptic(
            alpha=alpha, beta=beta, threshold=thr, reset_mechanism=reset, reset_delay=delay
        ),
        torch.nn.Linear(16, 6),
        snn.Synaptic(
            alpha=alpha2, beta=beta2, threshold=thr2, reset_mechanism=reset, reset_delay=delay
        ),
    ).double()
    x = (rng.random((S, T, 12)) < 0.3).astype(np.float64)
    out, layers = _run(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 12), tmp_path / "syn.nir")
    anet, res = layered(path, x, profile="snntorch", reset=reset, reset_delay=delay)
    n = assert_same_spikes(res, out, _per_layer(net, layers, _spiking_names(anet)))
    assert 0 < n < out.size


def test_synaptic_zero_reset_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    alpha = torch.full((4,), 0.5)
    beta, thr = _params((4,), rng)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4, bias=False), snn.Synaptic(alpha=alpha, beta=beta, threshold=thr)
    )
    path = _export(net, torch.zeros(1, 3), tmp_path / "synz.nir")
    with pytest.raises(
        A.AsyncsimError, match="reset_mechanism='zero' and reset_delay=True also wipes the input"
    ):
        A.load(path, profile="snntorch", reset="zero")


@pytest.mark.parametrize(("reset", "delay"), [("subtract", True), ("zero", True)])
def test_convolutional_with_pooling(tmp_path, reset, delay):
    """Conv2d -> Leaky -> AvgPool2d -> Conv2d -> Leaky -> AvgPool2d -> Flatten -> Linear
    -> Leaky: structured convolutions plus composed pool+conv / pool+linear chains."""
    rng = np.random.default_rng(5)
    torch.manual_seed(5)
    kw = dict(reset_mechanism=reset, reset_delay=delay)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        _leaky((4, 8, 8), rng, **kw),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1, stride=1),
        _leaky((6, 4, 4), rng, **kw),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(24, 10),
        _leaky((10,), rng, **kw),
    ).double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(2.5)
    x = (rng.random((S, T, 2, 8, 8)) < 0.3).astype(np.float64)
    out, layers = _run(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 2, 8, 8), tmp_path / "cnn.nir")
    anet, res = layered(path, x, profile="snntorch", reset=reset, reset_delay=delay)
    kinds = {type(p).__name__ for p in anet.projections}
    assert "Conv2d" in kinds
    n = assert_same_spikes(res, out, _per_layer(net, layers, _spiking_names(anet)))
    assert 0 < n < out.size
    assert all(res.spikes[:, :, p].sum() > 0 for p in range(len(anet.populations)))


@pytest.mark.parametrize(("reset", "delay"), [("subtract", True), ("zero", False)])
def test_recurrent_rleaky(tmp_path, reset, delay):
    """RLeaky (all-to-all recurrent Linear with bias): the recurrent edge carries the
    previous timestep's spikes and its bias acts from timestep 0, as in snnTorch."""
    rng = np.random.default_rng(6)
    torch.manual_seed(6)
    beta, thr = _params((15,), rng)
    beta2, thr2 = _params((5,), rng)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 15),
        snn.RLeaky(
            beta=beta, threshold=thr, linear_features=15, reset_mechanism=reset, reset_delay=delay
        ),
        torch.nn.Linear(15, 5),
        snn.Leaky(beta=beta2, threshold=thr2, reset_mechanism=reset, reset_delay=delay),
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[1].recurrent.weight.mul_(1.5)
        net[1].recurrent.bias.fill_(0.05)
    x = (rng.random((S, T, 8)) < 0.3).astype(np.float64)
    out, layers = _run(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 8), tmp_path / "rnn.nir")
    anet, res = layered(path, x, profile="snntorch", reset=reset, reset_delay=delay)
    rec = [p for p in anet.projections if p.source == p.target]
    assert len(rec) == 1 and rec[0].delay == 1
    n = assert_same_spikes(res, out, _per_layer(net, layers, _spiking_names(anet)))
    assert 0 < n < out.size


def test_recurrent_rsynaptic(tmp_path):
    """RSynaptic: the recurrent Linear (with bias) feeds the synaptic current, previous
    timestep's spikes; the biases of both Linear layers go into the current (syn_bias)."""
    rng = np.random.default_rng(8)
    torch.manual_seed(8)
    alpha = torch.tensor(rng.uniform(0.3, 0.9, 10), dtype=torch.float32)
    beta, thr = _params((10,), rng)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 10),
        snn.RSynaptic(alpha=alpha, beta=beta, threshold=thr, linear_features=10),
    ).double()
    with torch.no_grad():
        net[1].recurrent.bias.fill_(0.05)
    x = (rng.random((S, T, 6)) < 0.3).astype(np.float64)
    out = _run_rsynaptic(net, torch.tensor(x))
    path = _export(net.float(), torch.zeros(1, 6), tmp_path / "rsyn.nir")
    anet, res = layered(path, x, profile="snntorch")
    assert anet.populations[0].alpha is not None and np.any(anet.populations[0].syn_bias != 0)
    n = assert_same_spikes(res, out)
    assert 0 < n < out.size


def _run_rsynaptic(net, x):
    lin, rs = net[0], net[1]
    spk = torch.zeros(x.shape[0], 10, dtype=torch.float64)
    syn = torch.zeros_like(spk)
    mem = torch.zeros_like(spk)
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            spk, syn, mem = rs(lin(x[:, t]), spk, syn, mem)
            spk = spk.double()
            outs.append(spk.numpy().copy())
    return np.stack(outs, axis=1).astype(np.int64)


def test_recurrent_rleaky_zero_delay_is_refused(tmp_path):
    """RLeaky with reset='zero' and reset_delay=True wipes the input as well (trainers.md)."""
    beta, thr = _params((4,), np.random.default_rng(7))
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        snn.RLeaky(beta=beta, threshold=thr, linear_features=4, reset_mechanism="zero"),
    )
    path = _export(net, torch.zeros(1, 3), tmp_path / "rz.nir")
    with pytest.raises(A.AsyncsimError, match=r"RLeaky\) with reset_mechanism='zero'"):
        A.load(path, profile="snntorch", reset="zero", reset_delay=True)


def test_shipped_digits_model_matches_snntorch():
    """models/digits: asyncsim layered == snnTorch (float64) on the shipped test set."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "models" / "digits"
    net = A.load(root / "model.nir")
    assert net.metadata["profile"] == "snntorch"
    assert net.metadata["reset"] == "subtract" and net.metadata["reset_delay"] is True
    frames, labels = A.load_inputs(root / "test.npz", input_shape=net.input_shape)
    g = nir.read(root / "model.nir")
    n = g.nodes
    tnet = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        snn.Leaky(beta=torch.full((128,), 0.9), threshold=torch.ones(128)),
        torch.nn.Linear(128, 10),
        snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10)),
    ).double()
    with torch.no_grad():
        for i in (0, 2):
            tnet[i].weight.copy_(torch.tensor(n[str(i)].weight))
            tnet[i].bias.copy_(torch.tensor(n[str(i)].bias))
    out, layers = _run(tnet, torch.tensor(frames.astype(np.float64)))
    res = A.Simulator(net, policy="layered").run(frames, labels)
    assert_same_spikes(res, out, {"1": layers[1]})
    assert res.accuracy >= 0.9


def test_shipped_digits_cnn_model_matches_snntorch():
    """models/digits_cnn: the snnTorch CNN rebuilt from the file's weights (float64) and
    asyncsim layered give the same spikes on the shipped test set."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "models" / "digits_cnn"
    net = A.load(root / "model.nir")
    frames, labels = A.load_inputs(root / "test.npz", input_shape=net.input_shape)
    frames, labels = frames[:120], labels[:120]
    n = nir.read(root / "model.nir").nodes

    def lk(shape):
        return snn.Leaky(beta=torch.full(shape, 0.85), threshold=torch.ones(shape))

    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        lk((8, 8, 8)),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        lk((16, 4, 4)),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
        lk((10,)),
    ).double()
    with torch.no_grad():
        for i in (0, 3, 7):
            tnet[i].weight.copy_(torch.tensor(n[str(i)].weight))
            tnet[i].bias.copy_(torch.tensor(n[str(i)].bias))
    out, layers = _run(tnet, torch.tensor(frames.astype(np.float64)))
    res = A.Simulator(net, policy="layered").run(frames, labels)
    assert_same_spikes(res, out, _per_layer(tnet, layers, [p.name for p in net.populations]))
    assert res.accuracy >= 0.85
