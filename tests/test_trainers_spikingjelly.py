"""SpikingJelly -> NIR -> asyncsim: layered execution reproduces SpikingJelly's spikes.

SpikingJelly conventions (profile ``spikingjelly``): dt = 1e-4 (tau_NIR = tau_steps*dt),
forward Euler, '>=' comparison, hard reset to v_reset, initial v = v_reset. Reference in
float64, single-step mode.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")
nir = pytest.importorskip("nir")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir  # noqa: E402

from .trainer_utils import assert_same_spikes, layered  # noqa: E402

pytestmark = pytest.mark.trainers
T, S = 40, 3


def _export(net, sample, path):
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = export_to_nir(net, sample, save_path=None, dt=1e-4)
    finally:
        logging.disable(logging.NOTSET)
    nir.write(path, g)
    return path


def _run(net, x):
    functional.reset_net(net)
    outs: dict[int, list] = {}
    with torch.no_grad():
        for t in range(x.shape[1]):
            h = torch.tensor(x[:, t])
            for i, m in enumerate(net):
                h = m(h)
                if isinstance(m, neuron.BaseNode):
                    outs.setdefault(i, []).append(h.numpy().copy())
    layers = {i: np.stack(v, axis=1) for i, v in outs.items()}
    return layers[max(layers)].astype(np.int64), layers


@pytest.mark.parametrize(
    ("make", "scale", "bias"),
    [
        (lambda: neuron.LIFNode(tau=4.0, v_threshold=0.6), 6.0, True),
        (
            lambda: neuron.LIFNode(tau=3.0, decay_input=False, v_reset=-0.2, v_threshold=0.8),
            2.0,
            True,
        ),
        (lambda: neuron.IFNode(v_threshold=0.7), 2.0, True),
        (lambda: neuron.CUBALIFNode(c_decay=0.6, v_decay=0.8, v_threshold=0.7), 1.0, False),
        (lambda: neuron.CUBALIFNode(c_decay=0.6, v_decay=0.8, v_threshold=0.7), 1.0, True),
    ],
    ids=["LIF", "LIF-nodecay-vreset", "IF", "CUBALIF", "CUBALIF-bias"],
)
def test_feedforward(tmp_path, make, scale, bias):
    rng = np.random.default_rng(20)
    torch.manual_seed(20)
    net = torch.nn.Sequential(
        layer.Linear(10, 14, bias=bias), make(), layer.Linear(14, 5, bias=bias), make()
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(scale)
        net[2].weight.mul_(scale)
    x = (rng.random((S, T, 10)) < 0.4).astype(np.float64)
    out, layers = _run(net, x)
    path = _export(net.float(), torch.zeros(1, 10), tmp_path / "sj.nir")
    anet, res = layered(path, x, profile="spikingjelly")
    names = [p.name for p in anet.populations]
    per = {names[k]: layers[i] for k, i in enumerate(sorted(layers))}
    n = assert_same_spikes(res, out, per)
    assert 0 < n < out.size


def test_cnn_avgpool(tmp_path):
    rng = np.random.default_rng(21)
    torch.manual_seed(21)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, stride=2, padding=1),
        neuron.IFNode(v_threshold=0.5),
        layer.AvgPool2d(2),
        layer.Flatten(),
        layer.Linear(16, 5),
        neuron.IFNode(v_threshold=0.5),
    ).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[4].weight.mul_(3.0)
    x = (rng.random((S, T, 2, 8, 8)) < 0.3).astype(np.float64)
    out, layers = _run(net, x)
    path = _export(net.float(), torch.zeros(1, 2, 8, 8), tmp_path / "sjcnn.nir")
    anet, res = layered(path, x, profile="spikingjelly")
    names = [p.name for p in anet.populations]
    per = {names[k]: layers[i] for k, i in enumerate(sorted(layers))}
    n = assert_same_spikes(res, out, per)
    assert n > 0
