"""Operation counts and energy estimates: counts x per-operation costs, term by term.

An energy estimate here is a *model*, not a measurement: ``E = sum_term count_term x
cost_term``. Every preset states its **scope**:

* ``per-term``: each number prices one kind of operation; the terms add up (and a
  preset that leaves a term out simply does not price it: memory traffic for Horowitz,
  inter-tile routing for Loihi);
* ``all-in``: the total energy of a chip divided by one event count at one operating
  point (leakage, routing and neuron updates included). Such a preset prices exactly one
  term and nothing may be added to it.

Counted terms (all per sample, averaged over the samples of a run)
-----------------------------------------------------------------
``synops_ac``
    effective accumulate operations: one per delivered *binary* value (a network spike,
    or an input value of +1 or -1) per nonzero synapse it reaches. Equals NeuroBench's
    ``Effective_ACs`` for spiking layers (each nonzero input x nonzero weight pair).
``synops_mac``
    effective multiply-accumulate operations: deliveries of graded input values (event
    counts > 1, real-valued currents) per nonzero synapse. NeuroBench decides AC vs MAC
    per *tensor* (one graded value makes the whole layer-step MACs); asyncsim decides per
    delivered value. The two agree whenever each input frame is wholly binary or wholly
    graded, the usual case.
``synops``
    all synaptic operations, ``synops_ac + synops_mac``.
``spikes``
    network spikes (a Sinabs multi-spike event of count n counts n).
``spike_messages``
    spikes of neurons that have outgoing synapses (one message per spike: a lower bound
    on chips that send one packet per destination core; output neurons send none).
``neuron_updates``
    event-driven integrations: a neuron that received current in a forward step, once
    per step (layered execution: every neuron once per timestep). Closest NeuroBench
    metric: ``MembraneUpdates``, which counts neurons whose membrane *changed*; see
    ``docs/metrics.md`` for the differences.
``neuron_timesteps``
    neurons x timesteps: the dense, clock-driven neuron count (every neuron leaks once per
    timestep). This is NeuroBench's dense-style count, *not* its ``MembraneUpdates``.
``idle_neuron_timesteps``
    per population and timestep, ``max(0, neurons - neuron_updates)``: a lower bound on
    neuron-timesteps without an integration (Loihi's "inactive" update).
``forward_steps``
    forward steps (scheduler rounds).

The AC/MAC split of input deliveries is computed from the input frames and the fan-out of
each input channel (:func:`count_operations`); it is exact for prioritised input without
input dropout and is apportioned proportionally otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .compile import CompiledNetwork, compile_network
from .errors import AsyncsimError
from .network import Conv2d, Dense, Network, OneToOne, Sparse
from .result import Result

TERMS: dict[str, str] = {
    "synops_ac": "effective accumulates: binary deliveries x nonzero synapses",
    "synops_mac": "effective multiply-accumulates: graded input deliveries x nonzero synapses",
    "synops": "all synaptic operations (synops_ac + synops_mac)",
    "spikes": "network spikes",
    "spike_messages": "spikes of neurons with outgoing synapses (one message per spike)",
    "neuron_updates": "event-driven integrations (neuron received current in a step)",
    "neuron_timesteps": "neurons x timesteps (dense, clock-driven neuron count)",
    "idle_neuron_timesteps": "neuron-timesteps without an integration (lower bound)",
    "forward_steps": "forward steps (scheduler rounds)",
}
"""Every term a preset or a user table may price, with its meaning."""

SCOPES = ("per-term", "all-in")


@dataclass(frozen=True)
class EnergyPreset:
    """A named table of per-operation energies in picojoules.

    Attributes:
        name: identifier used on the command line (``--energy NAME``).
        title: one-line description (node, voltage, operating point).
        scope: ``"per-term"`` or ``"all-in"`` (see the module docstring).
        costs_pj: term -> energy per operation in pJ (terms from :data:`TERMS`).
        source: the citation the numbers come from.
        notes: what the numbers cover and what they leave out.
    """

    name: str
    title: str
    scope: str
    costs_pj: Mapping[str, float]
    source: str
    notes: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"energy table {self.name!r}"
        if self.scope not in SCOPES:
            raise AsyncsimError(
                f"{where}: scope {self.scope!r} is unknown; use 'per-term' (terms add up) "
                "or 'all-in' (one whole-chip figure per event)"
            )
        if not self.costs_pj:
            raise AsyncsimError(f"{where}: no costs given; price at least one term")
        for term, cost in self.costs_pj.items():
            if term not in TERMS:
                raise AsyncsimError(
                    f"{where}: unknown term {term!r}; known terms: {', '.join(TERMS)}"
                )
            if (
                isinstance(cost, bool)
                or not isinstance(cost, (int, float))
                or not math.isfinite(cost)
                or cost < 0
            ):
                raise AsyncsimError(
                    f"{where}: cost of {term!r} is {cost!r}; give a finite number of pJ >= 0"
                )
        if self.scope == "all-in" and len(self.costs_pj) != 1:
            raise AsyncsimError(
                f"{where}: an all-in figure already includes every other cost, so it must "
                f"price exactly one term (got {', '.join(self.costs_pj)}); use scope "
                "'per-term' to add terms up"
            )


PRESETS: dict[str, EnergyPreset] = {
    p.name: p
    for p in (
        EnergyPreset(
            name="horowitz45-fp32",
            title="Horowitz 45 nm, 0.9 V, fp32 arithmetic: AC 0.9 pJ, MAC 4.6 pJ",
            scope="per-term",
            costs_pj={"synops_ac": 0.9, "synops_mac": 4.6},
            source=(
                "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
                "ISSCC 2014 Digest of Technical Papers, pp. 10-14 (energy table): fp32 add "
                "0.9 pJ, fp32 mult 3.7 pJ; MAC = mult + add = 4.6 pJ"
            ),
            notes=(
                "Arithmetic unit only: no operand fetch, register file, control, clocking, "
                "leakage or memory access (a 32-bit 8 KB SRAM read is ~5 pJ, more than "
                "the add). Neuron updates are not priced. The common SNN-paper convention; "
                "do not read the AC/MAC ratio as hardware energy."
            ),
            meta={"node_nm": 45, "voltage_v": 0.9, "kind": "Sim"},
        ),
        EnergyPreset(
            name="horowitz45-int8",
            title="Horowitz 45 nm, 0.9 V, int8 arithmetic: AC 0.03 pJ, MAC 0.23 pJ",
            scope="per-term",
            costs_pj={"synops_ac": 0.03, "synops_mac": 0.23},
            source=(
                "M. Horowitz, ISSCC 2014 (energy table): int8 add 0.03 pJ, int8 mult 0.2 pJ; "
                "MAC = mult + add = 0.23 pJ (derived, not a row of the table)"
            ),
            notes="Arithmetic only, as horowitz45-fp32.",
            meta={"node_nm": 45, "voltage_v": 0.9, "kind": "Sim"},
        ),
        EnergyPreset(
            name="loihi-davies2018",
            title="Loihi (14 nm, 0.75 V) pre-silicon per-operation energies",
            scope="per-term",
            costs_pj={
                "synops": 23.6,
                "neuron_updates": 81.0,
                "idle_neuron_timesteps": 52.0,
                "spikes": 1.7,
            },
            source=(
                "M. Davies et al., 'Loihi: A neuromorphic manycore processor with on-chip "
                "learning', IEEE Micro 38(1):82-99, 2018, Table 2 (pre-silicon SDF/SPICE): "
                "synaptic spike op 23.6 pJ (minimum), neuron update active 81 pJ / inactive "
                "52 pJ, within-tile spike 1.7 pJ"
            ),
            notes=(
                "Simulated figures; 23.6 pJ is a lower bound. Each event-driven integration "
                "is priced as one active update, neuron-timesteps without one as inactive. "
                "Inter-tile hops (3.0/4.0 pJ) are not priced: asyncsim does not place "
                "neurons on cores. Numbers read from transcriptions of Table 2: check "
                "against the paper before publishing."
            ),
            meta={"node_nm": 14, "voltage_v": 0.75, "kind": "Sim"},
        ),
        EnergyPreset(
            name="loihi-sanafe",
            title="Loihi per-event model calibrated on silicon (SANA-FE)",
            scope="per-term",
            costs_pj={
                "synops": 35.5,
                "neuron_timesteps": 51.2,
                "neuron_updates": 21.6,
                "spikes": 69.3,
                "spike_messages": 111.0,
            },
            source=(
                "J. Boyle et al., 'SANA-FE: Simulating Advanced Neuromorphic Architectures "
                "for Fast Exploration', IEEE TCAD 44(8):3165-3178, 2025; values from "
                "SLAM-Lab/SANA-FE arch/loihi.yaml @c55bfa87: dense synapse 35.5 pJ per "
                "synapse per spike, soma access 51.2 pJ per neuron per timestep, update "
                "21.6 pJ, spike out 69.3 pJ, axon message out 111.0 pJ"
            ),
            notes=(
                "Calibrated by regression on Loihi silicon (reported error up to 11.7% in "
                "energy). Every synapse is priced as dense (conv 24.0, sparse 33.6 pJ: "
                "supply your own table for those); one message per spike (lower bound: "
                "Loihi sends one per destination core); hops not priced."
            ),
            meta={"node_nm": 14, "kind": "Si-calibrated"},
        ),
        EnergyPreset(
            name="truenorth",
            title="TrueNorth (28 nm, 0.775 V) all-in 26 pJ per synaptic event",
            scope="all-in",
            costs_pj={"synops": 26.0},
            source=(
                "P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a "
                "scalable communication network and interface', Science 345(6197):668-673, "
                "2014: 72 mW total at 20 Hz mean rate, 128 active synapses per neuron, "
                "0.775 V = 26 pJ per synaptic event"
            ),
            notes=(
                "Total chip energy (passive plus active) divided by synaptic events at one "
                "operating point: nothing may be added to it."
            ),
            meta={"node_nm": 28, "voltage_v": 0.775, "kind": "Si"},
        ),
        EnergyPreset(
            name="odin",
            title="ODIN (28 nm FDSOI, 0.55 V) all-in 12.7 pJ per synaptic operation",
            scope="all-in",
            costs_pj={"synops": 12.7},
            source=(
                "C. Frenkel et al., 'A 0.086-mm2 12.7-pJ/SOP 64k-synapse 256-neuron "
                "online-learning digital spiking neuromorphic processor in 28-nm CMOS', "
                "IEEE TBioCAS 13(1):145-158, 2019"
            ),
            notes="Minimum energy per SOP at the maximum SOP rate, leakage and idle included.",
            meta={"node_nm": 28, "voltage_v": 0.55, "kind": "Si"},
        ),
    )
}
"""The built-in presets. See ``docs/metrics.md`` for the table with sources."""

DEFAULT_PRESET = "horowitz45-fp32"


def load_energy_table(path: str | Path) -> EnergyPreset:
    """Read a user energy table from JSON (always) or YAML (needs ``pyyaml``).

    The file holds either a mapping ``term -> pJ`` or::

        {"name": "mychip", "scope": "per-term", "source": "datasheet v2",
         "costs_pj": {"synops_ac": 1.2, "neuron_updates": 3.0}}
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise AsyncsimError(
                f"energy table {str(p)!r} is YAML, which needs pyyaml: "
                "pip install pyyaml (or asyncsim[yaml]), or write the table as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AsyncsimError(f"energy table {str(p)!r}: invalid YAML: {exc}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AsyncsimError(f"energy table {str(p)!r}: invalid JSON: {exc}") from None
    else:
        raise AsyncsimError(
            f"energy table {str(p)!r}: unknown file type {suffix!r}; use .json or .yaml"
        )
    return preset_from_dict(data, default_name=p.stem)


def preset_from_dict(data: Any, default_name: str = "custom") -> EnergyPreset:
    """Build an :class:`EnergyPreset` from a parsed user table (see
    :func:`load_energy_table`)."""
    if not isinstance(data, Mapping):
        raise AsyncsimError(
            f"energy table {default_name!r} must be a mapping of term -> pJ, or have a "
            f"'costs_pj' mapping; got {type(data).__name__}"
        )
    if "costs_pj" in data:
        extra = set(data) - {"name", "title", "scope", "costs_pj", "source", "notes"}
        if extra:
            raise AsyncsimError(
                f"energy table {default_name!r}: unknown keys {sorted(extra)}; allowed: "
                "name, title, scope, costs_pj, source, notes"
            )
        costs = data["costs_pj"]
        if not isinstance(costs, Mapping):
            raise AsyncsimError(f"energy table {default_name!r}: 'costs_pj' must be a mapping")
        return EnergyPreset(
            name=str(data.get("name", default_name)),
            title=str(data.get("title", "user-supplied energy table")),
            scope=str(data.get("scope", "per-term")),
            costs_pj=dict(costs),
            source=str(data.get("source", "user-supplied")),
            notes=str(data.get("notes", "")),
        )
    return EnergyPreset(
        name=default_name,
        title="user-supplied energy table",
        scope="per-term",
        costs_pj=dict(data),
        source="user-supplied",
    )


def get_preset(name_or_path: str | EnergyPreset) -> EnergyPreset:
    """A built-in preset by name, or a user table from a ``.json`` / ``.yaml`` file."""
    if isinstance(name_or_path, EnergyPreset):
        return name_or_path
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]
    if Path(key).suffix.lower() in (".json", ".yaml", ".yml"):
        return load_energy_table(key)
    raise AsyncsimError(
        f"unknown energy preset {key!r}; choose one of {', '.join(PRESETS)} "
        "or give a .json/.yaml table file"
    )


# ---------------------------------------------------------------------- counting
def _compiled(network: Network | CompiledNetwork) -> CompiledNetwork:
    if isinstance(network, CompiledNetwork):
        return network
    if isinstance(network, Network):
        return compile_network(network)
    raise AsyncsimError(f"expected a Network or CompiledNetwork, got {type(network).__name__}")


def input_mac_fraction(
    network: Network | CompiledNetwork, inputs: Any, chunk: int = 64
) -> np.ndarray:
    """Per sample and timestep, the share of input synaptic operations that are MACs.

    A delivered input value counts as an AC if it is +1 or -1 and as a MAC otherwise
    (zeros are not delivered). Returns ``(S, T)`` floats in [0, 1] (0 where no input).
    Cost: O(S x T x inputs), computed ``chunk`` samples at a time.
    """
    c = _compiled(network)
    fan = c.fan_out()[: c.n_inputs].astype(np.float64)
    x = np.asarray(inputs)
    x = x.reshape(x.shape[0], x.shape[1], -1)
    if x.shape[2] != c.n_inputs:
        raise AsyncsimError(
            f"inputs have {x.shape[2]} values per frame but the network has {c.n_inputs} inputs"
        )
    out = np.zeros(x.shape[:2])
    for a in range(0, x.shape[0], chunk):
        xs = x[a : a + chunk]
        nz = xs != 0
        graded = nz & (np.abs(xs) != 1)
        tot = nz @ fan
        mac = graded @ fan
        out[a : a + chunk] = np.divide(mac, tot, out=np.zeros_like(mac), where=tot > 0)
    return out


def count_operations(
    result: Result, network: Network | CompiledNetwork, inputs: Any = None
) -> dict[str, float]:
    """Operation counts per sample (mean over the run's samples), for every term of
    :data:`TERMS`.

    Args:
        result: what :meth:`asyncsim.Simulator.run` returned.
        network: the network (or compiled network) that produced it.
        inputs: the frames of that run; needed to split input deliveries into ACs and
            MACs. Without them every input delivery counts as an AC.
    """
    c = _compiled(network)
    s = result.n_samples
    in_ops = result.input_synops.sum(axis=2).astype(np.float64)  # (S, T)
    if inputs is not None:
        frac = input_mac_fraction(c, inputs)
        if frac.shape != in_ops.shape:
            raise AsyncsimError(
                f"inputs give {frac.shape} (samples, timesteps) but the result has "
                f"{in_ops.shape}; pass the frames of this run"
            )
        mac = float(np.rint(in_ops * frac).sum())
    else:
        mac = 0.0
    net_ops = float(result.synops.sum())
    ac = net_ops + float(in_ops.sum()) - mac
    sizes = np.asarray(result.population_sizes, dtype=np.int64)
    sources = {pr.source for pr in c.network.projections}
    has_out = np.array([name in sources for name in result.population_names])
    upd = result.neuron_updates
    idle = np.maximum(0, sizes[None, None, :] - upd).sum()
    counts = {
        "synops_ac": ac / s,
        "synops_mac": mac / s,
        "synops": (ac + mac) / s,
        "spikes": float(result.spikes.sum()) / s,
        "spike_messages": float(result.spikes[:, :, has_out].sum()) / s,
        "neuron_updates": float(upd.sum()) / s,
        "neuron_timesteps": float(sizes.sum() * result.n_timesteps),
        "idle_neuron_timesteps": float(idle) / s,
        "forward_steps": float(result.forward_steps.sum()) / s,
    }
    return counts


def estimate(counts: Mapping[str, float], preset: str | EnergyPreset) -> dict[str, Any]:
    """Energy per sample from operation counts: ``sum(count x cost)`` by term.

    Returns ``{"preset", "scope", "source", "total_pj", "terms": {term: {"count",
    "cost_pj", "energy_pj"}}}``; terms the preset does not price are left out.
    """
    p = get_preset(preset)
    terms: dict[str, dict[str, float]] = {}
    for term, cost in p.costs_pj.items():
        n = float(counts[term])
        terms[term] = {"count": n, "cost_pj": float(cost), "energy_pj": n * float(cost)}
    return {
        "preset": p.name,
        "scope": p.scope,
        "source": p.source,
        "total_pj": float(sum(t["energy_pj"] for t in terms.values())),
        "terms": terms,
    }


# ---------------------------------------------------------------------- static counts
def dense_synapses(network: Network) -> dict[str, int]:
    """Synapses per projection as NeuroBench's ``Dense`` counts them: every connection,
    zero weights included, convolution taps that fall on zero padding excluded.

    Dense synaptic operations per timestep = the sum of these values.
    """
    out: dict[str, int] = {}
    for pr in network.projections:
        if isinstance(pr, Dense):
            out[pr.name] = int(pr.weight.size)
        elif isinstance(pr, Sparse):
            out[pr.name] = int(np.asarray(pr.weight).size)
        elif isinstance(pr, OneToOne):
            out[pr.name] = network.population(pr.target).size
        elif isinstance(pr, Conv2d):
            out[pr.name] = _conv_dense(pr, network.source_shape(pr.source))
        else:  # pragma: no cover - new projection types must be added here
            raise AsyncsimError(f"projection {pr.name!r}: unsupported type {type(pr).__name__}")
    return out


def _conv_dense(pr: Conv2d, src_shape: tuple[int, ...]) -> int:
    """Kernel taps landing inside the input, summed over output positions, x channels."""
    c_out, c_per_group, kh, kw = pr.weight.shape
    _, h, w = src_shape
    top, _bottom, left, _right = pr.padding_lrtb((h, w))
    _, ho, wo = pr.output_shape(src_shape)
    dh, dw = pr.dilation
    sh, sw = pr.stride

    def valid(n_out: int, k: int, stride: int, dil: int, pad: int, size: int) -> int:
        pos = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
        return int(((pos >= 0) & (pos < size)).sum())

    taps = valid(ho, kh, sh, dh, top, h) * valid(wo, kw, sw, dw, left, w)
    return int(c_out * c_per_group * taps)


def format_energy(pj: float | None) -> str:
    """Human-readable energy: ``1.23 nJ`` etc."""
    if pj is None or not math.isfinite(pj):
        return "-"
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "TERMS",
    "EnergyPreset",
    "count_operations",
    "dense_synapses",
    "estimate",
    "format_energy",
    "get_preset",
    "input_mac_fraction",
    "load_energy_table",
    "preset_from_dict",
]
