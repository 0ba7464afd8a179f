"""Layered versus asynchronous execution of one trained network: the comparison sweep.

>>> rows = compare(net, frames, labels)                          # doctest: +SKIP
>>> [(r["policy"], r["group_size"], r["accuracy"]) for r in rows]  # doctest: +SKIP

One network is compiled once and run under the layered baseline and under every
asynchronous policy for a sweep of forward group sizes F (and, for ``random``, several
seeds). :func:`sweep` returns one *run row* per simulation; :func:`aggregate` folds the
seeds of a random run into a mean and a spread (population standard deviation over
seeds) and adds, for the headline metrics, the ratio to the layered baseline
(``<metric>_rel``). :func:`compare` does both.

A run row holds :meth:`asyncsim.Result.summary` unchanged (so every number can be
checked against the API; only ``group_size`` reads ``"-"`` for layered, where F does not
apply) plus ``run`` (a label) and:

* ``first_output_{timestep,spikes,steps,synops}``: sample-level point of the first output
  spike (network spikes, forward steps and synaptic operations counted from the start
  of the sample), averaged over samples that have one; ``output_fraction`` = share of
  samples with an output spike;
* ``activation_sparsity`` (NeuroBench ``ActivationSparsity``), ``effective_acs``,
  ``effective_macs``, ``dense_synops`` (NeuroBench ``SynapticOperations``), per sample;
* ``energy``: ``{preset: estimate}`` for every requested preset and ``energy_pj`` (the
  first preset's total per sample);
* ``curve``: the decision curve, accuracy of the decision read at the end of each
  timestep against the mean network spikes processed up to then (needs labels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from .compile import CompiledNetwork, compile_network
from .energy import DEFAULT_PRESET, EnergyPreset, count_operations, dense_synapses, estimate
from .errors import AsyncsimError
from .export import flatten
from .network import Network
from .policies import ASYNC_POLICIES as _ASYNC_POLICIES
from .policies import Policy, format_group_size, parse_group_size
from .result import Result, decide
from .simulator import Simulator

ASYNC_POLICIES = tuple(p.label for p in _ASYNC_POLICIES)  # ("fifo", "momentum", "random")
DEFAULT_SEEDS = (0, 1, 2)

HEADLINE = (
    "accuracy",
    "spikes_per_sample",
    "spike_density",
    "synops_per_sample",
    "first_output_spikes",
    "stable_correct_spikes",
    "energy_pj",
)
"""Metrics of the comparison table; each gets ``_std`` (over seeds) and ``_rel`` (ratio to
layered) columns in aggregated rows."""

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class RunSpec:
    """One simulation of the sweep."""

    policy: str
    group_size: str
    seed: int = 0

    @property
    def label(self) -> str:
        if self.policy == "layered":
            return "layered"
        s = f"{self.policy} F={self.group_size}"
        return s + (f" seed={self.seed}" if self.policy == "random" else "")

    def simulator(
        self, compiled: CompiledNetwork, stop: str, input_mode: str, **options: Any
    ) -> Simulator:
        """The Simulator of this run; the layered baseline always drains and integrates
        the whole input frame first (stop rules and queued input are asynchronous)."""
        layered = self.policy == "layered"
        return Simulator(
            compiled,
            policy=self.policy,
            group_size=self.group_size,
            seed=self.seed,
            stop="drain" if layered else stop,
            input_mode="prioritised" if layered else input_mode,
            **options,
        )


def default_group_sizes(widest: int) -> list[str]:
    """``1, 2, 4, ..., 2**k`` with ``2**k >= widest``, then ``inf``."""
    if widest < 1:
        raise AsyncsimError(f"widest layer {widest} must be >= 1")
    out = []
    f = 1
    while True:
        out.append(str(f))
        if f >= widest:
            break
        f *= 2
    out.append("inf")
    return out


def sweep_specs(
    widest: int,
    policies: Iterable[str] = ASYNC_POLICIES,
    group_sizes: Iterable[int | str] | None = None,
    seeds: Iterable[int] = DEFAULT_SEEDS,
) -> list[RunSpec]:
    """The runs of a comparison: layered first (always), then each asynchronous policy x F
    (x seed for random; the deterministic policies run with the first seed only)."""
    pols = [Policy.parse(p).label for p in policies]
    sizes = (
        default_group_sizes(widest)
        if group_sizes is None
        else [format_group_size(parse_group_size(f)) for f in group_sizes]
    )
    if not sizes:
        raise AsyncsimError("group sizes: give at least one F (an integer >= 1 or 'inf')")
    seed_list = [int(s) for s in seeds]
    if not seed_list or min(seed_list) < 0:
        raise AsyncsimError(f"seeds {seed_list}: give at least one seed, each >= 0")
    specs = [RunSpec("layered", "inf", 0)]
    for pol in dict.fromkeys(pols):
        if pol == "layered":
            continue
        for f in dict.fromkeys(sizes):
            for seed in seed_list if pol == "random" else seed_list[:1]:
                specs.append(RunSpec(pol, f, seed))
    return specs


# ---------------------------------------------------------------------- one run
def _mean_point(arr: np.ndarray, col: int) -> float | None:
    vals = arr[:, col]
    vals = vals[vals >= 0]
    return float(vals.mean()) if vals.size else None


def decisions_per_timestep(result: Result) -> np.ndarray:
    """(S, T) decision read at the end of each timestep (-1: none), by the network's
    readout; the last column equals ``result.predictions``."""
    if result.readout == "spikes":
        return decide(np.cumsum(result.output_spikes, axis=1))
    v = result.output_potentials
    if result.readout == "sum":
        return decide(np.cumsum(v, axis=1))
    if result.readout == "max":
        return decide(np.maximum.accumulate(v, axis=1))
    return decide(v)


def decision_curve(result: Result) -> dict[str, list[float]] | None:
    """Accuracy at the end of each timestep vs mean network spikes processed so far.

    Returns ``{"timestep", "spikes", "accuracy"}`` lists of length T, or None without
    labels.
    """
    if result.labels is None:
        return None
    dec = decisions_per_timestep(result)
    acc = (dec == result.labels[:, None]).mean(axis=0)
    spikes = np.cumsum(result.spikes.sum(axis=2), axis=1).mean(axis=0)
    return {
        "timestep": list(range(result.n_timesteps)),
        "spikes": spikes.tolist(),
        "accuracy": acc.tolist(),
    }


def activation_sparsity(result: Result, network: Network) -> float:
    """NeuroBench ``ActivationSparsity``: 1 - spikes / (neurons x timesteps) over the
    spiking populations (a non-spiking readout is left out, as NeuroBench leaves out
    non-activation layers). Exact when a neuron spikes at most once per timestep
    (refractoriness on, the default); a multi-spike event counts its n spikes."""
    spiking = np.array([p.spiking for p in network.populations])
    sizes = np.asarray(result.population_sizes)[spiking]
    total = sizes.sum() * result.n_timesteps * result.n_samples
    if total == 0:
        return 1.0
    return float(1.0 - result.spikes[:, :, spiking].sum() / total)


def measure(
    result: Result,
    network: Network | CompiledNetwork,
    inputs: Any = None,
    energy: Sequence[str | EnergyPreset] = (DEFAULT_PRESET,),
) -> dict[str, Any]:
    """The run row of one result (see the module docstring)."""
    c = network if isinstance(network, CompiledNetwork) else compile_network(network)
    row: dict[str, Any] = dict(result.summary())
    for col, name in enumerate(("timestep", "spikes", "steps", "synops")):
        row[f"first_output_{name}"] = _mean_point(result.first_output, col)
    row["output_fraction"] = float(np.mean(result.first_output[:, 0] >= 0))
    counts = count_operations(result, c, inputs)
    row["activation_sparsity"] = activation_sparsity(result, c.network)
    row["effective_acs"] = counts["synops_ac"]
    row["effective_macs"] = counts["synops_mac"]
    row["dense_synops"] = float(sum(dense_synapses(c.network).values()) * result.n_timesteps)
    row["counts"] = counts
    est = [estimate(counts, p) for p in energy]
    row["energy"] = {e["preset"]: e for e in est}
    row["energy_preset"] = est[0]["preset"] if est else None
    row["energy_pj"] = est[0]["total_pj"] if est else None
    row["curve"] = decision_curve(result)
    return row


# ---------------------------------------------------------------------- the sweep
def _frames(inputs: Any) -> np.ndarray:
    arr = np.asarray(inputs)
    if arr.ndim < 3:
        raise AsyncsimError(
            f"inputs shape {arr.shape}: expected (samples, timesteps, *input_shape)"
        )
    return arr


def sweep(
    network: Network | CompiledNetwork,
    inputs: Any,
    labels: Any = None,
    *,
    policies: Iterable[str] = ASYNC_POLICIES,
    group_sizes: Iterable[int | str] | None = None,
    seeds: Iterable[int] = DEFAULT_SEEDS,
    stop: str = "drain",
    input_mode: str = "prioritised",
    energy: Sequence[str | EnergyPreset] = (DEFAULT_PRESET,),
    threads: int | None = None,
    progress: ProgressFn | None = None,
    on_run: Callable[[RunSpec, Result, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run layered and every policy x F (x seed) on the same compiled network.

    Args:
        network: the network (compiled once here if it is not already).
        inputs: frames ``(S, T, *input_shape)``; labels: ``(S,)`` or None.
        policies: asynchronous policies to sweep (layered always runs first).
        group_sizes: values of F (default :func:`default_group_sizes` of the widest
            population).
        seeds: seeds of the random policy (the others are deterministic and run once).
        stop, input_mode: options of the asynchronous runs (layered always drains).
        energy: presets (names, table files or :class:`EnergyPreset`); the first one is
            the table's ``energy_pj``.
        progress: ``(done, total)`` over all samples of all runs.
        on_run: called with ``(spec, result, row)`` after each run (e.g. to keep results).

    Returns:
        one run row per simulation, in :func:`sweep_specs` order, each with ``policy``,
        ``group_size``, ``seed`` and ``run`` (a label) set.
    """
    compiled = network if isinstance(network, CompiledNetwork) else compile_network(network)
    frames = _frames(inputs)
    specs = sweep_specs(compiled.network.widest(), policies, group_sizes, seeds)
    n_s = frames.shape[0]
    total = len(specs) * n_s
    rows = []
    for i, spec in enumerate(specs):
        is_layered = spec.policy == "layered"
        sim = spec.simulator(compiled, stop, input_mode, threads=threads)
        cb = None
        if progress is not None:
            base = i * n_s

            def cb(done: int, _total: int, base: int = base) -> None:
                progress(base + done, total)

        res = sim.run(frames, labels, progress=cb)
        row = measure(res, compiled, frames, energy)
        row["run"] = spec.label
        row["policy"] = spec.policy
        row["group_size"] = "-" if is_layered else spec.group_size
        row["seed"] = spec.seed
        rows.append(row)
        if on_run is not None:
            on_run(spec, res, row)
    return rows


def _is_num(v: Any) -> TypeGuard[int | float | np.integer | np.floating]:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def aggregate(run_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold run rows into one row per (policy, F): numeric values averaged over seeds
    (``None`` where a run had none), ``<metric>_std`` for the headline metrics, and
    ``<metric>_rel`` = value / layered value. Rows are flat (dotted keys); the decision
    curve is averaged too (``curve.accuracy`` etc., lists)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in run_rows:
        groups.setdefault((r["policy"], str(r["group_size"])), []).append(r)
    out = []
    for (pol, f), rs in groups.items():
        flat = [flatten(r) for r in rs]
        row: dict[str, Any] = {"policy": pol, "group_size": f, "runs": len(rs)}
        row["seeds"] = [r["seed"] for r in rs]
        for key in flat[0]:
            if key in ("policy", "group_size", "seed", "run"):
                continue
            vals = [fr.get(key) for fr in flat]
            if all(_is_num(v) for v in vals):
                row[key] = float(np.mean(np.asarray(vals)))
            elif all(isinstance(v, list) and all(_is_num(x) for x in v) for v in vals):
                row[key] = np.mean(np.array(vals, dtype=np.float64), axis=0).tolist()
            elif any(_is_num(v) for v in vals):
                nums = [v for v in vals if _is_num(v)]
                # a seed without e.g. an output: skip it
                row[key] = float(np.mean(np.asarray(nums)))
            else:
                row[key] = vals[0] if all(v == vals[0] for v in vals) else vals
        for m in HEADLINE:
            m_nums = [v for v in (fr.get(m) for fr in flat) if _is_num(v)]
            row[f"{m}_std"] = (
                float(np.std(np.asarray(m_nums))) if len(m_nums) > 1 else 0.0 if m_nums else None
            )
        row["run"] = "layered" if pol == "layered" else f"{pol} F={f}"
        out.append(row)
    base = next((r for r in out if r["policy"] == "layered"), None)
    for row in out:
        for m in HEADLINE:
            b = None if base is None else base.get(m)
            v = row.get(m)
            row[f"{m}_rel"] = float(v / b) if _is_num(v) and _is_num(b) and b != 0 else None
    return out


def compare(
    network: Network | CompiledNetwork,
    inputs: Any,
    labels: Any = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Layered vs asynchronous comparison: :func:`aggregate` of :func:`sweep` (same
    arguments). Returns one flat row per (policy, F)."""
    return aggregate(sweep(network, inputs, labels, **kwargs))


def record_sample(
    network: Network | CompiledNetwork,
    inputs: Any,
    sample: int,
    specs: Sequence[RunSpec],
    labels: Any = None,
    stop: str = "drain",
    input_mode: str = "prioritised",
) -> dict[str, Result]:
    """Run one sample with every spike recorded, once per spec (for raster plots).

    Returns ``{spec.label: Result}`` with ``events`` set.
    """
    compiled = network if isinstance(network, CompiledNetwork) else compile_network(network)
    frames = _frames(inputs)
    if not 0 <= sample < frames.shape[0]:
        raise AsyncsimError(f"sample {sample} is out of range: the inputs have {frames.shape[0]}")
    lab = None if labels is None else np.asarray(labels)[sample : sample + 1]
    out = {}
    for spec in specs:
        sim = spec.simulator(compiled, stop, input_mode, record_events=True, threads=1)
        out[spec.label] = sim.run(frames[sample : sample + 1], lab, sample_ids=[sample])
    return out


__all__ = [
    "ASYNC_POLICIES",
    "HEADLINE",
    "RunSpec",
    "activation_sparsity",
    "aggregate",
    "compare",
    "decision_curve",
    "decisions_per_timestep",
    "default_group_sizes",
    "measure",
    "record_sample",
    "sweep",
    "sweep_specs",
]
