"""Pieces shared by the ``models/*/train.py`` scripts: snnTorch networks trained on
scikit-learn's 8x8 digits with a Bernoulli rate code, exported to NIR and packaged with
their test spike trains. Needs torch, snntorch, nir, nirtorch and scikit-learn.

Training is bitwise reproducible: numpy and torch are seeded and torch uses one thread.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np
import snntorch as snn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the asyncsim of this checkout (for --check and writing)

from asyncsim._files import atomic_write  # noqa: E402
from asyncsim.result import decide  # noqa: E402

SEED = 0
TEST_FRACTION = 0.2  # 360 of 1797 samples


def setup() -> np.random.Generator:
    """Seed torch, one torch thread (bitwise reproducible), and the numpy generator used
    for every spike train."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    return np.random.default_rng(SEED)


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 80/20 split of load_digits: x_train, x_test (pixels 0..16), y_train,
    y_test (int64)."""
    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        d.data, d.target, test_size=TEST_FRACTION, stratify=d.target, random_state=SEED
    )
    return x_tr, x_te, y_tr, y_te.astype(np.int64)


def run(net: torch.nn.Sequential, frames: torch.Tensor) -> torch.Tensor:
    """Clock-driven forward pass: (B, T, ...) -> output spikes (B, T, classes)."""
    snn_utils.reset(net)
    out = []
    for t in range(frames.shape[1]):
        h = frames[:, t]
        for layer in net:
            # snnTorch emits float32 spikes even from a float64 layer: keep the dtype
            h = layer(h).to(frames.dtype)
        out.append(h)
    return torch.stack(out, dim=1)


def fit(
    net: torch.nn.Sequential,
    encode: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    rng: np.random.Generator,
    epochs: int,
    batch: int,
    lr: float,
    log_every: int,
) -> None:
    """Adam on cross-entropy of the output spike counts (surrogate gradients); fresh
    spike trains every epoch."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    y = torch.as_tensor(y_train)
    for epoch in range(epochs):
        inputs = torch.as_tensor(encode(x_train, rng), dtype=torch.float32)
        perm = torch.randperm(len(y))
        total = 0.0
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            loss = loss_fn(run(net, inputs[idx]).sum(dim=1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % log_every == log_every - 1 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(y):.4f}", flush=True)


def test_outputs(
    net: torch.nn.Sequential, build: Callable[[], torch.nn.Sequential], inputs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Output spikes of the trained network on the test spike trains, in float32 and in
    float64 (the same weights; the float64 pass is what asyncsim is compared with)."""
    net.eval()
    with torch.no_grad():
        out32 = run(net, torch.as_tensor(inputs, dtype=torch.float32)).numpy()
        net64 = build().double()
        net64.load_state_dict(net.state_dict())
        out64 = run(net64, torch.as_tensor(inputs, dtype=torch.float64)).numpy()
    return out32, out64


def accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    """Argmax of output spike counts; a tie (or no spike) counts as wrong, as in asyncsim."""
    return float((decide(out.sum(axis=1)) == labels).mean())


def package(
    here: Path,
    net: torch.nn.Sequential,
    sample_shape: tuple[int, ...],
    test_inputs: np.ndarray,
    labels: np.ndarray,
    out32: np.ndarray,
    out64: np.ndarray,
    timesteps: int,
    check: bool,
    extra_metrics: dict[str, Any] | None = None,
) -> None:
    """Write model.nir, test.npz and metrics.json next to the training script (each
    atomically); with ``check``, also run asyncsim's layered mode on the exported file and
    record whether its output spikes equal the float64 snnTorch pass."""
    graph = export_to_nir(net, torch.zeros(1, *sample_shape), ignore_dims=[0])
    # NIR has no field for the reset mechanism or the trainer: record them so that
    # asyncsim.load picks the right profile without being told.
    graph.metadata = {
        "source": "snntorch",
        "source_version": snn.__version__,
        "asyncsim_profile": "snntorch",
        "reset_mechanism": "subtract",
        "reset_delay": "true",
        "dt": 1e-4,
        "timesteps": timesteps,
        "encoding": "bernoulli rate code, p = pixel / 16 per timestep",
        "dataset": "sklearn load_digits (8x8), stratified 80/20 split, random_state 0",
    }
    atomic_write(here / "model.nir", lambda p: nir.write(p, graph), overwrite=True)

    def write_npz(path: str) -> None:
        with open(path, "wb") as f:  # a file object: numpy would append ".npz" to a name
            np.savez_compressed(f, inputs=test_inputs, labels=labels)

    atomic_write(here / "test.npz", write_npz, overwrite=True)
    metrics: dict[str, Any] = {
        "trainer": f"snntorch {snn.__version__}, torch {torch.__version__}",
        "test_samples": len(labels),
        "timesteps": timesteps,
        "accuracy_snntorch_float32": accuracy(out32, labels),
        "accuracy_snntorch_float64": accuracy(out64, labels),
        **(extra_metrics or {}),
        "output_spikes_snntorch_float32": int(out32.sum()),
    }
    print(
        f"test accuracy snnTorch float32 {metrics['accuracy_snntorch_float32']:.4f}, "
        f"float64 {metrics['accuracy_snntorch_float64']:.4f}"
    )
    if check:
        import asyncsim

        model = asyncsim.load(here / "model.nir")
        res = asyncsim.Simulator(model, policy="layered").run(test_inputs, labels)
        same = bool(np.array_equal(res.output_spikes, out64.astype(np.int64)))
        metrics["accuracy_asyncsim_layered"] = float(res.accuracy)
        metrics["layered_equals_snntorch_float64_spikes"] = same
        print(f"asyncsim layered accuracy {res.accuracy:.4f}; identical spikes: {same}")
    atomic_write(
        here / "metrics.json",
        lambda p: Path(p).write_text(json.dumps(metrics, indent=2) + "\n"),
        overwrite=True,
    )
