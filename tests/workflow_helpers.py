"""Helpers of the workflow tests (CLI, compare, energy, export, plots): a tiny classifier
network with a known structure, its inputs, and model/data files on disk."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np

import asyncsim as A
from asyncsim.errors import AsyncsimError

K, PER, N_IN = 4, 4, 16


def tiny_net(seed: int = 0) -> A.Network:
    """16 inputs -> 12 -> 8 -> 4: class k drives inputs 4k..4k+3, hidden units of group
    k (index % 4 == k) listen to them, the output unit k to its group; other weights are
    small noise or mild inhibition, so the net classifies well and asynchronous order
    matters in the second hidden layer."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 0.1, (12, N_IN))
    for h in range(12):
        w1[h, (h % K) * PER : (h % K + 1) * PER] += 0.5
    w2 = rng.normal(-0.1, 0.1, (8, 12))
    for h in range(8):
        for g in range(12):
            if g % K == h % K:
                w2[h, g] = 0.7
    w3 = np.full((K, 8), -0.4)
    for h in range(8):
        w3[h % K, h] = 0.8
    pops = [
        A.Population("h1", 12, threshold=1.0, beta=0.8),
        A.Population("h2", 8, threshold=1.0, beta=0.8),
        A.Population("out", K, threshold=1.0, beta=0.8),
    ]
    projs = [
        A.Dense("fc1", "input", "h1", w1),
        A.Dense("fc2", "h1", "h2", w2),
        A.Dense("fc3", "h2", "out", w3),
    ]
    return A.Network(N_IN, pops, projs, name="tiny", metadata={"trainer": "hand-made"})


def tiny_data(n_samples: int = 12, n_timesteps: int = 8, seed: int = 1):
    """Bernoulli frames (S, T, 16) with the label's inputs firing often, and labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % K
    x = (rng.random((n_samples, n_timesteps, N_IN)) < 0.1).astype(np.uint8)
    for s, k in enumerate(labels):
        x[s, :, k * PER : (k + 1) * PER] = rng.random((n_timesteps, PER)) < 0.6
    return x, labels


# ---------------------------------------------------------------------- model files
try:  # the real readers/writers (issue 3), once merged
    from asyncsim.io import load_inputs as _real_load_inputs  # noqa: F401
    from asyncsim.io import save as _real_save

    HAVE_IO = True
except ImportError:
    HAVE_IO = False

MODEL_SUFFIX = ".h5" if HAVE_IO else ".pkl"


def write_model(net: A.Network, path: Path) -> Path:
    """Save ``net`` where the CLI can load it (native HDF5 once asyncsim.io exists)."""
    if HAVE_IO:
        _real_save(net, path)
    else:
        path.write_bytes(pickle.dumps(net))
    return path


def write_data(path: Path, frames: np.ndarray, labels: np.ndarray | None = None) -> Path:
    if labels is None:
        np.savez(path, inputs=frames)
    else:
        np.savez(path, inputs=frames, labels=labels)
    return path


def _fake_load(path, dt=None, profile=None, **_):
    try:
        net = pickle.loads(Path(path).read_bytes())
    except Exception as exc:
        raise AsyncsimError(f"{path}: not a model file ({type(exc).__name__})") from None
    return net


def _fake_load_inputs(path, input_shape=None, n_timesteps=None, **_):
    with np.load(path) as z:
        x = z["inputs"]
        y = z["labels"] if "labels" in z.files else None
    if input_shape is not None and x.shape[2:] != tuple(input_shape):
        raise AsyncsimError(f"inputs shape {x.shape}: frames do not match input {input_shape}")
    return x, y


def install_fake_io() -> None:
    """Until asyncsim.io is merged, give the CLI a stand-in module with the interface of
    CONTEXT.md (pickled networks, .npz frames)."""
    if HAVE_IO or "asyncsim.io" in sys.modules:
        return
    mod = types.ModuleType("asyncsim.io")
    mod.load = _fake_load  # type: ignore[attr-defined]
    mod.load_inputs = _fake_load_inputs  # type: ignore[attr-defined]
    sys.modules["asyncsim.io"] = mod
    A.io = mod  # type: ignore[attr-defined]
