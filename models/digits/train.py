"""Train, export and package the shipped demo model ``models/digits/``.

A two-layer snnTorch network (64 -> 128 Leaky -> 10 Leaky) on scikit-learn's 8x8
``load_digits`` images, rate coded as Bernoulli spike trains. Everything is seeded and
runs on CPU in well under a minute:

    python models/digits/train.py            # writes model.nir, test.npz
    python models/digits/train.py --check    # + asyncsim layered accuracy

Outputs (next to this script):
    model.nir     the trained network, exported with ``snntorch.export_to_nir``
    test.npz      ``inputs`` uint8 (S, T, 64) spike counts, ``labels`` int64 (S,)
    metrics.json  accuracies measured by this script (quoted in MODEL_CARD.md)

Needs torch, snntorch, nir, nirtorch and scikit-learn (not needed by asyncsim itself).
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
T = 25  # timesteps per sample
N_HIDDEN = 128
BETA = 0.9  # leak factor per timestep, both layers (not learned)
THRESHOLD = 1.0
EPOCHS = 40
BATCH = 64
LR = 2e-3


def encode(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli rate code: pixel value p in [0, 16] fires with probability p/16 per
    timestep. ``x``: (S, 64) -> uint8 (S, T, 64) spike counts (0 or 1)."""
    prob = x / 16.0
    return (rng.random((x.shape[0], T, x.shape[1])) < prob[:, None, :]).astype(np.uint8)


def build() -> torch.nn.Sequential:
    """The network. beta and threshold are per-neuron tensors: snnTorch's NIR exporter
    needs them that way (a scalar gives a shape error in ``nir``). Reset: snnTorch's
    default, subtract with ``reset_delay=True`` (the potential is lowered by the
    threshold one timestep after the spike)."""

    def leaky(n: int) -> snn.Leaky:
        return snn.Leaky(
            beta=torch.full((n,), BETA),
            threshold=torch.full((n,), THRESHOLD),
            reset_mechanism="subtract",
            reset_delay=True,
            init_hidden=True,
        )

    return torch.nn.Sequential(
        torch.nn.Linear(64, N_HIDDEN), leaky(N_HIDDEN), torch.nn.Linear(N_HIDDEN, 10), leaky(10)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="also run asyncsim (layered)")
    args = ap.parse_args()
    rng = tr.setup()
    x_tr, x_te, y_tr, y_te = tr.split()
    test_inputs = encode(x_te, rng)  # fixed test spike trains, shipped in test.npz
    net = build()
    tr.fit(net, encode, x_tr, y_tr, rng, EPOCHS, BATCH, LR, log_every=10)
    out32, out64 = tr.test_outputs(net, build, test_inputs)
    argmax = float((out32.sum(axis=1).argmax(axis=1) == y_te).mean())
    print(f"test accuracy (plain argmax, ties -> lowest index): {argmax:.4f}")
    tr.package(
        HERE,
        net,
        (64,),
        test_inputs,
        y_te,
        out32,
        out64,
        T,
        args.check,
        {"accuracy_argmax_float32": argmax},
    )


if __name__ == "__main__":
    main()
