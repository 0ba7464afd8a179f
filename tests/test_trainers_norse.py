"""Norse -> NIR -> asyncsim: layered execution reproduces Norse's spikes (and a leaky
integrator readout's membrane potential).

Norse 1.1.0 conventions (profile ``norse``): forward Euler; its exporter writes
tau_NIR = dt*tau, so the effective step is dt_cell*dt_export = 1e-6 for the defaults
(inferred with a warning); LIFCell's current jumps by the raw input; '>', reset to v_reset,
initial v = v_leak. Reference in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("norse")
nir = pytest.importorskip("nir")
import norse.torch as nt  # noqa: E402
from norse.torch.functional.iaf import IAFParameters  # noqa: E402
from norse.torch.functional.leaky_integrator_box import LIBoxParameters  # noqa: E402
from norse.torch.functional.lif import LIFParameters  # noqa: E402
from norse.torch.functional.lif_box import LIFBoxParameters  # noqa: E402

import asyncsim as A  # noqa: E402

from .trainer_utils import assert_same_spikes  # noqa: E402

pytestmark = pytest.mark.trainers
T, S = 60, 3


def _v(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def _export(net, n_in, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = nt.to_nir(net, torch.zeros(n_in, dtype=torch.float64))  # unbatched sample
    nir.write(path, g)
    return path


def _run(net, x):
    state = None
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            o, state = net(torch.tensor(x[:, t]), state)
            outs.append(o.numpy().copy())
    return np.stack(outs, axis=1)


def _load(path):
    with pytest.warns(UserWarning, match="dt = 1e-06 s was inferred"):
        return A.load(path, profile="norse")


def _cells(kind, n, rng):
    if kind == "LIFCell":
        return nt.LIFCell(
            LIFParameters(
                tau_mem_inv=_v(rng.uniform(50, 200, n)),
                tau_syn_inv=_v(rng.uniform(100, 300, n)),
                v_th=_v(rng.uniform(0.1, 0.3, n)),
                v_leak=_v(np.zeros(n)),
                v_reset=_v(np.zeros(n)),
            )
        )
    if kind == "LIFBoxCell":
        return nt.LIFBoxCell(
            LIFBoxParameters(
                tau_mem_inv=_v(rng.uniform(50, 200, n)),
                v_th=_v(rng.uniform(0.1, 0.3, n)),
                v_leak=_v(np.zeros(n)),
                v_reset=_v(np.zeros(n)),
            )
        )
    return nt.IAFCell(IAFParameters(v_th=_v(rng.uniform(0.5, 1.0, n)), v_reset=_v(np.zeros(n))))


@pytest.mark.parametrize("kind", ["LIFCell", "LIFBoxCell", "IAFCell"])
def test_feedforward(tmp_path, kind):
    rng = np.random.default_rng(30)
    torch.manual_seed(30)
    bias = True  # LIFCell: the Linear bias jumps into the current (syn_bias)
    net = nt.SequentialState(
        torch.nn.Linear(8, 12, bias=bias),
        _cells(kind, 12, rng),
        torch.nn.Linear(12, 4, bias=bias),
        _cells(kind, 4, rng),
    ).double()
    with torch.no_grad():
        scale = {"LIFCell": 3.0, "LIFBoxCell": 20.0, "IAFCell": 1.5}[kind]
        net[0].weight.mul_(scale)
        net[2].weight.mul_(scale)
    x = (rng.random((S, T, 8)) < 0.5).astype(np.float64)
    out = _run(net, x).astype(np.int64)
    path = _export(net, 8, tmp_path / "norse.nir")
    net_a = _load(path) if kind != "IAFCell" else A.load(path, profile="norse")
    res = A.Simulator(net_a, policy="layered").run(x)
    n = assert_same_spikes(res, out)
    assert 0 < n < out.size


def test_leaky_integrator_readout_potentials(tmp_path):
    """LIFBoxCell -> Linear -> LIBoxCell: a non-spiking readout; asyncsim reports its
    potential, which must equal Norse's output to float32 precision.

    Why not float64: the engine stores weights as float32 (compile.py), and the loader folds
    Norse's input gain dt/tau (about 0.1 here) into them, so the effective weights carry a
    float32 rounding (relative 6e-8 each) that Norse's float64 pass does not; summed over
    inputs and 60 leaky steps this gives relative differences of a few 1e-6. Spikes are
    still identical (test_feedforward)."""
    rng = np.random.default_rng(31)
    torch.manual_seed(31)
    net = nt.SequentialState(
        torch.nn.Linear(6, 10),
        _cells("LIFBoxCell", 10, rng),
        torch.nn.Linear(10, 3),
        nt.LIBoxCell(
            LIBoxParameters(tau_mem_inv=_v(rng.uniform(50, 150, 3)), v_leak=_v(np.zeros(3)))
        ),
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(20.0)
    x = (rng.random((S, T, 6)) < 0.5).astype(np.float64)
    out = _run(net, x)
    path = _export(net, 6, tmp_path / "li.nir")
    net_a = _load(path)
    assert net_a.readout == "sum" and not net_a.population(net_a.output).spiking
    res = A.Simulator(net_a, policy="layered").run(x)
    assert np.abs(out).max() > 1e-3
    np.testing.assert_allclose(res.output_potentials, out, rtol=2e-5, atol=1e-7)
