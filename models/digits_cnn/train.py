"""Train, export and package ``models/digits_cnn/``: a small convolutional snnTorch network
on scikit-learn's 8x8 digits (the same split and rate code as ``models/digits``).

    Conv2d(1->8, 3x3, pad 1) -> Leaky -> AvgPool2d(2)
    -> Conv2d(8->16, 3x3, pad 1) -> Leaky -> AvgPool2d(2)
    -> Flatten -> Linear(64->10) -> Leaky

    python models/digits_cnn/train.py [--check]

Outputs next to this script: model.nir, test.npz (inputs uint8 (360, 20, 1, 8, 8),
labels int64), metrics.json. Needs torch, snntorch, nir, nirtorch, scikit-learn.
(An mnist1d variant was tried first: 1-D kernels (1, k) trip nir 1.0.8's type inference for
non-square kernels inside snnTorch's exporter, and a rate-coded spiking CNN reached only
61 % in a few minutes of CPU training.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import snntorch as snn
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _training as tr

HERE = Path(__file__).resolve().parent
T = 20
BETA = 0.85
EPOCHS = 25
BATCH = 64
LR = 3e-3


def encode(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(S, 64) pixels 0..16 -> uint8 (S, T, 1, 8, 8) Bernoulli spikes, p = pixel/16."""
    p = (x / 16.0).reshape(-1, 1, 1, 8, 8)
    return (rng.random((x.shape[0], T, 1, 8, 8)) < p).astype(np.uint8)


def leaky(shape: tuple[int, ...]) -> snn.Leaky:
    """snnTorch's default reset (subtract, reset_delay=True); per-neuron tensors, as the
    NIR exporter requires."""
    return snn.Leaky(beta=torch.full(shape, BETA), threshold=torch.ones(shape), init_hidden=True)


def build() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        leaky((8, 8, 8)),
        torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        leaky((16, 4, 4)),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
        leaky((10,)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="also run asyncsim (layered)")
    args = ap.parse_args()
    rng = tr.setup()
    x_tr, x_te, y_tr, y_te = tr.split()
    test_inputs = encode(x_te, rng)
    net = build()
    tr.fit(net, encode, x_tr, y_tr, rng, EPOCHS, BATCH, LR, log_every=5)
    out32, out64 = tr.test_outputs(net, build, test_inputs)
    tr.package(HERE, net, (1, 8, 8), test_inputs, y_te, out32, out64, T, args.check)


if __name__ == "__main__":
    main()
