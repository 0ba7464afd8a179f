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


def run(net: torch.nn.Sequential, frames: torch.Tensor) -> torch.Tensor:
    """(B, T, 1, 8, 8) -> output spikes (B, T, 10)."""
    snn_utils.reset(net)
    out = []
    for t in range(frames.shape[1]):
        h = frames[:, t]
        for layer in net:
            h = layer(h).to(frames.dtype)  # snnTorch spikes are float32
        out.append(h)
    return torch.stack(out, dim=1)


def decide(counts: np.ndarray) -> np.ndarray:
    """argmax of spike counts; a tie is no decision (-1), as in asyncsim."""
    best = counts.argmax(axis=1)
    ties = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return np.where(ties, -1, best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="also run asyncsim (layered)")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # bitwise reproducible
    rng = np.random.default_rng(SEED)
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data, d.target, test_size=0.2, stratify=d.target, random_state=SEED
    )
    y_te = y_te.astype(np.int64)
    test_inputs = encode(x_te, rng)

    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    ytr = torch.as_tensor(y_tr)
    for epoch in range(EPOCHS):
        xin = torch.as_tensor(encode(x_tr, rng), dtype=torch.float32)
        perm = torch.randperm(len(ytr))
        total = 0.0
        for i in range(0, len(ytr), BATCH):
            idx = perm[i : i + BATCH]
            loss = loss_fn(run(net, xin[idx]).sum(dim=1), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4:
            print(f"epoch {epoch + 1:3d}  loss {total / len(ytr):.4f}", flush=True)

    net.eval()
    with torch.no_grad():
        out32 = run(net, torch.as_tensor(test_inputs, dtype=torch.float32)).numpy()
        net64 = build().double()
        net64.load_state_dict(net.state_dict())
        out64 = run(net64, torch.as_tensor(test_inputs, dtype=torch.float64)).numpy()
    acc32 = float((decide(out32.sum(axis=1)) == y_te).mean())
    acc64 = float((decide(out64.sum(axis=1)) == y_te).mean())
    print(f"test accuracy snnTorch float32 {acc32:.4f}, float64 {acc64:.4f}")

    graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
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
    for name, write in (
        ("model.nir", lambda p: nir.write(p, graph)),
        ("test.npz", lambda p: np.savez_compressed(p, inputs=test_inputs, labels=y_te)),
    ):
        fd, tmp = tempfile.mkstemp(dir=HERE, suffix=Path(name).suffix)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, HERE / name)
    metrics = {
        "trainer": f"snntorch {snn.__version__}, torch {torch.__version__}",
        "test_samples": len(y_te),
        "timesteps": T,
        "accuracy_snntorch_float32": acc32,
        "accuracy_snntorch_float64": acc64,
        "output_spikes_snntorch_float32": int(out32.sum()),
    }
    if args.check:
        sys.path.insert(0, str(HERE.parents[1]))
        import asyncsim

        model = asyncsim.load(HERE / "model.nir")
        res = asyncsim.Simulator(model, policy="layered").run(test_inputs, y_te)
        same = bool(np.array_equal(res.output_spikes, out64.astype(np.int64)))
        metrics["accuracy_asyncsim_layered"] = float(res.accuracy)
        metrics["layered_equals_snntorch_float64_spikes"] = same
        print(f"asyncsim layered accuracy {res.accuracy:.4f}; identical spikes: {same}")
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main()
