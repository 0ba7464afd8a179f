"""Sinabs -> NIR -> asyncsim: layered execution reproduces Sinabs' spike counts exactly.

Sinabs conventions (profile ``sinabs``): tau in timesteps (dt = 1), exact exponential leak,
LIF input scaled by (1 - alpha) (``norm_input=True``), MultiSpike (floor(v/theta) spikes
per step, '>='), reset by subtraction. Sinabs' ``*Squeeze`` layers take (batch*time, ...)
batch-major input. The reference runs in float64.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sinabs = pytest.importorskip("sinabs")
nir = pytest.importorskip("nir")
import sinabs.layers as sl  # noqa: E402

import asyncsim as A  # noqa: E402

from .trainer_utils import assert_same_spikes, layered  # noqa: E402

pytestmark = pytest.mark.trainers
FIXTURES = Path(__file__).parent / "fixtures" / "nir"
T, S = 30, 3


def _export(net, sample, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = sinabs.to_nir(net, sample)
        g.infer_types()  # Conv2d/SumPool2d/Flatten come out untyped (trainers.md)
    nir.write(path, g)
    return path


def _run(net, x):
    """x: (S, T, ...) -> output (S, T, K) and per-layer spikes, float64."""
    for m in net.modules():
        if isinstance(m, sl.StatefulLayer):
            m.reset_states()
    outs = {}
    h = torch.tensor(x.reshape(S * T, *x.shape[2:]))
    with torch.no_grad():
        for i, m in enumerate(net):
            h = m(h).double()  # Sinabs emits float32 spikes: keep float64 (counts are exact)
            if isinstance(m, (sl.IAF, sl.LIF)):
                outs[i] = h.numpy().reshape(S, T, *h.shape[1:]).copy()
    last = outs[max(outs)]
    return last.astype(np.int64), outs


def _check(anet, res, out, layers):
    names = [p.name for p in anet.populations]
    per = {names[k]: layers[i] for k, i in enumerate(sorted(layers))}
    n = assert_same_spikes(res, out, per)
    assert n > 0
    return n


def test_iaf_multispike(tmp_path):
    rng = np.random.default_rng(10)
    torch.manual_seed(10)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 12),
        sl.IAFSqueeze(batch_size=S, spike_threshold=torch.tensor(0.8)),
        torch.nn.Linear(12, 5),
        sl.IAFSqueeze(batch_size=S, spike_threshold=torch.tensor(0.6)),
    ).double()
    x = rng.uniform(-0.5, 2.5, (S, T, 10))
    out, layers = _run(net, x)
    path = _export(net.float(), torch.zeros(S * T, 10), tmp_path / "iaf.nir")
    anet, res = layered(path, x, profile="sinabs")
    _check(anet, res, out, layers)
    assert out.max() > 1, "the test should exercise several spikes per step"


@pytest.mark.parametrize("norm_input", [True, False])
def test_lif_norm_input(tmp_path, norm_input):
    """Sinabs LIF; norm_input is not exported, so False must be given at load time."""
    rng = np.random.default_rng(11)
    torch.manual_seed(11)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 10),
        sl.LIFSqueeze(
            batch_size=S,
            tau_mem=torch.tensor(rng.uniform(2, 20, 10), dtype=torch.float32),
            spike_threshold=torch.tensor(rng.uniform(0.1, 0.5, 10), dtype=torch.float32),
            norm_input=norm_input,
        ),
        torch.nn.Linear(10, 4),
        sl.LIFSqueeze(
            batch_size=S,
            tau_mem=torch.tensor(rng.uniform(2, 20, 4), dtype=torch.float32),
            spike_threshold=torch.tensor(rng.uniform(0.1, 0.5, 4), dtype=torch.float32),
            norm_input=norm_input,
        ),
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    x = rng.uniform(0, 2, (S, T, 8)) * (1.0 if norm_input else 0.2)
    out, layers = _run(net, x)
    path = _export(net.float(), torch.zeros(S * T, 8), tmp_path / "lif.nir")
    anet, res = layered(path, x, profile="sinabs", norm_input=norm_input)
    _check(anet, res, out, layers)
    _, wrong = layered(path, x, profile="sinabs", norm_input=not norm_input)
    assert (wrong.output_spikes != out).any()  # the setting matters and is not in the file


def test_cnn_sumpool(tmp_path):
    rng = np.random.default_rng(12)
    torch.manual_seed(12)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=S),
        sl.SumPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1, bias=False),
        sl.IAFSqueeze(batch_size=S),
        sl.SumPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 2 * 2, 5),
        sl.IAFSqueeze(batch_size=S),
    ).double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(2.0)
    x = (rng.random((S, T, 2, 16, 16)) < 0.2).astype(np.float64)
    out, layers = _run(net, x)
    path = _export(net.float(), torch.zeros(S * T, 2, 16, 16), tmp_path / "cnn.nir")
    anet, res = layered(path, x, profile="sinabs")
    assert any(isinstance(p, A.Conv2d) for p in anet.projections)
    _check(anet, res, out, layers)


def test_sinabs_min_v_mem_is_refused():
    with pytest.raises(A.AsyncsimError, match="min_v_mem"):
        A.load(FIXTURES / "cnn_sinabs.nir", profile="sinabs", min_v_mem=-1.0)


def _fixture_reference(batch: int):
    """The NIR-paper Sinabs CNN rebuilt in Sinabs (trainer defaults: min_v_mem=None)."""
    g = nir.read(FIXTURES / "cnn_sinabs.nir")
    ref = torch.nn.Sequential()
    for key in [str(i) for i in range(13)]:
        n = g.nodes[key]
        if isinstance(n, nir.Conv2d):
            c = torch.nn.Conv2d(
                n.weight.shape[1],
                n.weight.shape[0],
                n.weight.shape[2:],
                stride=tuple(n.stride),
                padding=tuple(n.padding),
            )
            c.weight.data = torch.tensor(n.weight)
            c.bias.data = torch.tensor(n.bias)
            ref.append(c)
        elif isinstance(n, nir.IF):
            ref.append(sl.IAFSqueeze(batch_size=batch, spike_threshold=torch.tensor(1.0)))
        elif isinstance(n, nir.SumPool2d):
            ref.append(sl.SumPool2d(tuple(n.kernel_size), tuple(n.stride)))
        elif isinstance(n, nir.Flatten):
            ref.append(torch.nn.Flatten(1, -1))
        elif isinstance(n, nir.Affine):
            lin = torch.nn.Linear(n.weight.shape[1], n.weight.shape[0])
            lin.weight.data = torch.tensor(n.weight)
            lin.bias.data = torch.tensor(n.bias)
            ref.append(lin)
    return ref.double()


def test_fixture_cnn_runs_on_events_and_matches_sinabs(tmp_path):
    """The NIR paper's N-MNIST CNN on a synthetic tonic-style event stream: frames from
    events, layered execution equal to Sinabs, spikes reach the output, and asynchronous
    execution runs end to end."""
    shutil.copy(FIXTURES / "cnn_sinabs.nir", tmp_path / "cnn.nir")
    net = A.load(tmp_path / "cnn.nir", profile="sinabs")
    assert tuple(net.input_shape) == (2, 34, 34)
    rng = np.random.default_rng(13)
    dtype = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]
    samples = []
    for _ in range(S):
        n_ev = 6000
        ev = np.zeros(n_ev, dtype=dtype)
        ev["x"] = rng.integers(0, 34, n_ev)
        ev["y"] = rng.integers(0, 34, n_ev)
        ev["p"] = rng.integers(0, 2, n_ev)
        ev["t"] = np.sort(rng.integers(0, 300_000, n_ev))  # microseconds, 300 ms
        samples.append(ev)
    frames, labels = A.load_inputs(samples, input_shape=net.input_shape, time_window=10_000)
    assert labels is None
    assert frames.shape == (S, 30, 2, 34, 34)
    assert frames.sum() == S * 6000
    res = A.Simulator(net, policy="layered").run(frames)
    ref = _fixture_reference(S)
    h = torch.tensor(frames.astype(np.float64).reshape(S * 30, 2, 34, 34))
    with torch.no_grad():
        for m in ref:
            h = m(h).double()
    out = h.numpy().reshape(S, 30, 10)
    assert out.sum() > 0
    assert_same_spikes(res, out.astype(np.int64))
    res_async = A.Simulator(net, policy="fifo", group_size=8).run(frames)
    assert res_async.output_spikes.shape == (S, 30, 10)
    assert res_async.output_spikes.sum() > 0
    assert (res_async.spikes.sum(axis=(0, 1)) > 0).all()
