"""Helpers for the trainer cross-checks: run asyncsim's layered mode on an exported model
and compare with the trainer's own spikes, timestep by timestep."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import asyncsim as A


def layered(path: Path, frames: np.ndarray, **load_kw) -> tuple[A.Network, A.Result]:
    """Load ``path`` and run it layer-synchronously (the trainer's execution order)."""
    net = A.load(path, **load_kw)
    res = A.Simulator(net, policy="layered", threads=1).run(frames)
    return net, res


def assert_same_spikes(
    res: A.Result, trainer_out: np.ndarray, per_layer: dict[str, np.ndarray] | None = None
) -> int:
    """Require identical output spike trains ``(S, T, K)`` and, optionally, identical spike
    counts per timestep for named populations (``{name: (S, T, *shape)}``). Returns the
    number of output spikes (the caller checks the test is not vacuous)."""
    out = np.asarray(trainer_out)
    assert res.output_spikes.shape == out.shape, (res.output_spikes.shape, out.shape)
    diff = np.argwhere(res.output_spikes != out)
    assert diff.size == 0, (
        f"{len(diff)} output (sample, timestep, neuron) entries differ, first {diff[:5].tolist()}; "
        f"asyncsim {int(res.output_spikes.sum())} vs trainer {int(out.sum())} spikes"
    )
    for name, spikes in (per_layer or {}).items():
        p = res.population_names.index(name)
        want = np.asarray(spikes).reshape(spikes.shape[0], spikes.shape[1], -1).sum(axis=2)
        got = res.spikes[:, :, p]
        bad = np.argwhere(got != want)
        assert bad.size == 0, (
            f"population {name!r}: spike counts differ at (sample, timestep) {bad[:5].tolist()}"
        )
    return int(out.sum())
