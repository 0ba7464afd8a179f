"""Results of a simulation run: per-sample, per-population, per-timestep counters.

All arrays are numpy; ``S`` samples, ``T`` timesteps, ``P`` populations (declaration
order), ``K`` output neurons. Latency triples are ``(network spikes, forward steps,
synaptic operations)``; sample-level points are ``(timestep, spikes, steps, synops)``
counted from the start of the sample; ``-1`` means "never happened".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LATENCY_FIELDS = ("spikes", "steps", "synops")
POINT_FIELDS = ("timestep", "spikes", "steps", "synops")


@dataclass
class Result:
    """Everything measured in one :meth:`asyncsim.Simulator.run`.

    Attributes (arrays):
        spikes: (S, T, P) network spikes per population.
        synops: (S, T, P) synaptic operations of network spikes (one per delivered spike
            per nonzero synapse), attributed to the *target* population.
        input_synops: (S, T, P) the same for input deliveries (kept apart).
        neuron_updates: (S, T, P) integrations: neurons that received current in a forward
            step and were not refractory, counted once per step (layered: every neuron
            once per timestep).
        forward_steps: (S, T).
        peak_queue: (S, T) most spikes pending at once (layered: largest layer burst).
        output_spikes: (S, T, K).
        output_potentials: (S, T, K) output potentials at the end of each timestep.
        latency_first: (S, T, 3) within each timestep, up to and including the forward
            step of its first output spike; -1 if none.
        latency_correct: (S, T, 3) the same for the first spike of the label's neuron.
        first_output, first_correct, stable_correct: (S, 4) sample-level points; the
            stable point is where the decision became correct for the last time (it stays
            correct to the end); -1 if the final decision is wrong.
        reactivity: (S, P) summed over spikes: currents the neuron received in its
            timestep before it fired (divide by spikes for the mean).
        predictions: (S,) decision per sample, -1 for none (no spikes or a tie).
        labels: (S,) or None.
        events: per sample, a structured array (timestep, step, population, index, count)
            of every spike event in order, if recorded (count > 1 only for multi_spike
            populations).
    """

    population_names: list[str]
    population_sizes: list[int]
    output: str
    readout: str
    options: dict[str, Any]
    sample_ids: np.ndarray
    spikes: np.ndarray
    synops: np.ndarray
    input_synops: np.ndarray
    neuron_updates: np.ndarray
    forward_steps: np.ndarray
    peak_queue: np.ndarray
    output_spikes: np.ndarray
    output_potentials: np.ndarray
    latency_first: np.ndarray
    latency_correct: np.ndarray
    first_output: np.ndarray
    first_correct: np.ndarray
    stable_correct: np.ndarray
    reactivity: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray | None = None
    events: list[np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- shape helpers
    @property
    def n_samples(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def n_timesteps(self) -> int:
        return int(self.spikes.shape[1])

    @property
    def n_neurons(self) -> int:
        return int(sum(self.population_sizes))

    # ---------------------------------------------------------------- aggregates
    @property
    def accuracy(self) -> float | None:
        """Fraction of samples whose decision equals the label (no decision = wrong)."""
        if self.labels is None:
            return None
        return float(np.mean(self.predictions == self.labels))

    def spikes_per_sample(self) -> float:
        return float(self.spikes.sum() / self.n_samples)

    def spike_density(self) -> float:
        """Spikes / (neurons x timesteps), averaged over samples (SEMANTICS.md section 6)."""
        return float(self.spikes.sum() / (self.n_neurons * self.n_timesteps * self.n_samples))

    def synops_per_sample(self) -> float:
        return float(self.synops.sum() / self.n_samples)

    def _mean_latency(self, arr: np.ndarray, col: int) -> float | None:
        vals = arr[..., col]
        vals = vals[vals >= 0]
        return float(vals.mean()) if vals.size else None

    def mean_reactivity(self) -> list[float | None]:
        """Per population: mean currents received before firing (None if no spikes)."""
        tot = self.spikes.sum(axis=(0, 1))
        react = self.reactivity.sum(axis=0)
        return [float(r / s) if s else None for r, s in zip(react, tot, strict=True)]

    def summary(self) -> dict[str, Any]:
        """Sample-averaged headline numbers (what ``asyncsim run`` prints)."""
        out: dict[str, Any] = dict(self.options)
        out.update(
            samples=self.n_samples,
            timesteps=self.n_timesteps,
            accuracy=self.accuracy,
            spikes_per_sample=self.spikes_per_sample(),
            spike_density=self.spike_density(),
            synops_per_sample=self.synops_per_sample(),
            input_synops_per_sample=float(self.input_synops.sum() / self.n_samples),
            neuron_updates_per_sample=float(self.neuron_updates.sum() / self.n_samples),
            forward_steps_per_sample=float(self.forward_steps.sum() / self.n_samples),
            peak_queue=int(self.peak_queue.max()) if self.peak_queue.size else 0,
            no_decision=float(np.mean(self.predictions < 0)),
        )
        for name, arr in (
            ("first_output", self.latency_first),
            ("first_correct", self.latency_correct),
        ):
            for col, f in enumerate(LATENCY_FIELDS):
                out[f"latency_{name}_{f}"] = self._mean_latency(arr, col)
        for name, arr in (("stable_correct", self.stable_correct),):
            for col, f in enumerate(POINT_FIELDS):
                out[f"{name}_{f}"] = self._mean_latency(arr, col)
        return out

    def per_population(self) -> list[dict[str, Any]]:
        """One row per population: spikes, density, synops, updates, reactivity."""
        rows = []
        react = self.mean_reactivity()
        for p, (name, size) in enumerate(
            zip(self.population_names, self.population_sizes, strict=True)
        ):
            spk = float(self.spikes[:, :, p].sum() / self.n_samples)
            rows.append(
                dict(
                    population=name,
                    neurons=size,
                    spikes_per_sample=spk,
                    spike_density=spk / (size * self.n_timesteps),
                    synops_per_sample=float(self.synops[:, :, p].sum() / self.n_samples),
                    input_synops_per_sample=float(
                        self.input_synops[:, :, p].sum() / self.n_samples
                    ),
                    neuron_updates_per_sample=float(
                        self.neuron_updates[:, :, p].sum() / self.n_samples
                    ),
                    mean_reactivity=react[p],
                )
            )
        return rows

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """JSON-ready dict: summary and per-population rows; with ``arrays=True`` also the
        raw per-sample arrays as nested lists."""
        d: dict[str, Any] = {
            "summary": self.summary(),
            "populations": self.per_population(),
            "output": self.output,
            "readout": self.readout,
        }
        if arrays:
            for name in self.array_names():
                val = getattr(self, name)
                if val is not None:
                    d[name] = np.asarray(val).tolist()
        return d

    @staticmethod
    def array_names() -> tuple[str, ...]:
        return (
            "sample_ids",
            "spikes",
            "synops",
            "input_synops",
            "neuron_updates",
            "forward_steps",
            "peak_queue",
            "output_spikes",
            "output_potentials",
            "latency_first",
            "latency_correct",
            "first_output",
            "first_correct",
            "stable_correct",
            "reactivity",
            "predictions",
            "labels",
        )


EVENT_DTYPE = np.dtype(
    [
        ("timestep", np.int64),
        ("step", np.int64),
        ("population", np.int64),
        ("index", np.int64),
        ("count", np.int64),
    ]
)


def decide(scores: np.ndarray) -> np.ndarray:
    """Unique argmax along the last axis; -1 where the maximum is tied or all counts are 0
    for integer scores (no spikes = no decision)."""
    scores = np.asarray(scores)
    best = scores.argmax(axis=-1)
    top = np.take_along_axis(scores, best[..., None], axis=-1)[..., 0]
    ties = (scores == top[..., None]).sum(axis=-1) > 1
    out = np.where(ties, -1, best)
    if np.issubdtype(scores.dtype, np.integer):
        out = np.where(top > 0, out, -1)
    return out
