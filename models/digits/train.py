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
import json
import os
import sys
import tempfile
from pathlib import Path

import nir
import numpy as np
import snntorch as snn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

HERE = Path(__file__).resolve().parent
SEED = 0
T = 25  # timesteps per sample
N_HIDDEN = 128
BETA = 0.9  # leak factor per timestep, both layers (not learned)
THRESHOLD = 1.0
EPOCHS = 40
BATCH = 64
LR = 2e-3
TEST_FRACTION = 0.2  # 360 of 1797 samples


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


def run(net: torch.nn.Sequential, frames: torch.Tensor) -> torch.Tensor:
    """Clock-driven forward pass. ``frames``: (B, T, 64) -> output spikes (B, T, 10)."""
    snn_utils.reset(net)
    out = []
    for t in range(frames.shape[1]):
        h = frames[:, t]
        for layer in net:
            # snnTorch emits float32 spikes even from a float64 layer: keep the dtype
            h = layer(h).to(frames.dtype)
        out.append(h)
    return torch.stack(out, dim=1)


def decide(counts: np.ndarray) -> np.ndarray:
    """argmax of spike counts per sample; a tie (or no spike) is no decision (-1), as in
    asyncsim."""
    best = counts.argmax(axis=1)
    top = counts.max(axis=1)
    ties = (counts == top[:, None]).sum(axis=1) > 1
    return np.where(ties, -1, best)


def write_atomic_npz(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="also run asyncsim (layered)")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # bitwise reproducible training
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        digits.data,
        digits.target,
        test_size=TEST_FRACTION,
        stratify=digits.target,
        random_state=SEED,
    )
    test_inputs = encode(x_te, rng)  # fixed test spike trains, shipped in test.npz

    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    ytr = torch.as_tensor(y_tr)
    for epoch in range(EPOCHS):
        train_inputs = torch.as_tensor(encode(x_tr, rng), dtype=torch.float32)  # fresh draws
        perm = torch.randperm(len(ytr))
        total = 0.0
        for i in range(0, len(ytr), BATCH):
            idx = perm[i : i + BATCH]
            counts = run(net, train_inputs[idx]).sum(dim=1)  # (B, 10) spike counts
            loss = loss_fn(counts, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(ytr):.4f}", flush=True)

    net.eval()
    with torch.no_grad():
        out32 = run(net, torch.as_tensor(test_inputs, dtype=torch.float32)).numpy()
        net64 = build().double()
        net64.load_state_dict(net.state_dict())
        out64 = run(net64.double(), torch.as_tensor(test_inputs, dtype=torch.float64)).numpy()
    pred32 = decide(out32.sum(axis=1))
    pred64 = decide(out64.sum(axis=1))
    acc32 = float((pred32 == y_te).mean())
    acc64 = float((pred64 == y_te).mean())
    argmax_acc = float((out32.sum(axis=1).argmax(axis=1) == y_te).mean())
    print(f"test accuracy (snnTorch float32, ties count as wrong): {acc32:.4f}")
    print(f"test accuracy (snnTorch float64 forward):              {acc64:.4f}")
    print(f"test accuracy (plain argmax, ties -> lowest index):    {argmax_acc:.4f}")

    graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
    # NIR has no field for the reset mechanism or the trainer: record them so that
    # asyncsim.load picks the right profile without being told.
    graph.metadata = {
        "source": "snntorch",
        "source_version": snn.__version__,
        "asyncsim_profile": "snntorch",
        "reset_mechanism": "subtract",
        "reset_delay": "true",
        "dt": 1e-4,
        "timesteps": T,
        "encoding": "bernoulli rate code, p = pixel / 16 per timestep",
        "dataset": "sklearn load_digits (8x8), stratified 80/20 split, random_state 0",
    }
    fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".nir")
    os.close(fd)
    nir.write(tmp, graph)
    os.chmod(tmp, 0o644)
    os.replace(tmp, HERE / "model.nir")
    write_atomic_npz(HERE / "test.npz", inputs=test_inputs, labels=y_te.astype(np.int64))

    metrics = {
        "trainer": f"snntorch {snn.__version__}, torch {torch.__version__}",
        "test_samples": len(y_te),
        "timesteps": T,
        "accuracy_snntorch_float32": acc32,
        "accuracy_snntorch_float64": acc64,
        "accuracy_argmax_float32": argmax_acc,
        "output_spikes_snntorch_float32": int(out32.sum()),
    }
    if args.check:
        sys.path.insert(0, str(HERE.parents[1]))
        import asyncsim

        model = asyncsim.load(HERE / "model.nir")
        res = asyncsim.Simulator(model, policy="layered").run(test_inputs, y_te)
        same = np.array_equal(res.output_spikes, out64.astype(np.int64))
        metrics["accuracy_asyncsim_layered"] = float(res.accuracy)
        metrics["layered_equals_snntorch_float64_spikes"] = bool(same)
        print(
            f"asyncsim layered accuracy: {res.accuracy:.4f}; spikes identical to the "
            f"float64 snnTorch pass: {same}"
        )
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()
