"""NIR graph -> :class:`~asyncsim.Network`.

How a graph is read (``docs/models.md`` has the long version):

1. Nested subgraphs are flattened (inner nodes are named ``"outer.inner"``; an inner
   ``Input``/``Output`` becomes an identity operator).
2. Nodes are *neurons* (LIF, IF, LI, I, CubaLIF, CubaLI, Threshold), *operators* (Affine,
   Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay, identities), the one
   ``Input`` and the ``Output`` nodes. Every neuron node becomes a
   :class:`~asyncsim.Population` named after the node.
3. Cycles: a depth-first search from the input (successors in name order) marks the edges
   closing a cycle; each gets a delay of one timestep (previous-timestep semantics, as in
   snnTorch's RLeaky), unless a ``Delay`` node on the cycle already provides one.
4. Every path ``source -> operators... -> neuron`` becomes one projection: a single
   Affine/Linear is a :class:`~asyncsim.Dense`, a Scale (or a direct edge) a
   :class:`~asyncsim.OneToOne`, a convolution or pooling a :class:`~asyncsim.Conv2d`;
   a pool whose windows tile its input followed by a Conv2d is one (expanded)
   :class:`~asyncsim.Conv2d`; other chains (e.g. AvgPool2d -> Flatten -> Linear) are
   composed numerically into one :class:`~asyncsim.Dense` or :class:`~asyncsim.Sparse`
   projection. Several edges into one node add up. The sum of all bias terms reaching a
   neuron becomes its ``bias``.
5. The profile (:mod:`asyncsim.io.profiles`) turns tau/r/v_leak/w_in into per-timestep
   ``beta``, ``alpha``, input gains (folded into the weights) and bias.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import AsyncsimError
from ..network import (
    INPUT,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Population,
    Projection,
    Sparse,
)
from . import _linops
from .profiles import OVERRIDABLE, PROFILES, Profile, get_profile

NEURON_TYPES = ("LIF", "IF", "LI", "I", "CubaLIF", "CubaLI", "Threshold")
OP_TYPES = (
    "Affine",
    "Linear",
    "Scale",
    "Conv1d",
    "Conv2d",
    "SumPool2d",
    "AvgPool2d",
    "Flatten",
    "Delay",
    "Identity",
)
SUPPORTED = ("Input", "Output", "NIRGraph", *NEURON_TYPES, *OP_TYPES[:-1])
NON_SPIKING = ("LI", "I", "CubaLI")
# composing an operator chain into an explicit matrix: refuse beyond this many entries
MAX_COMPOSED = 50_000_000
ASYNCSIM_NIR_FORMAT = "asyncsim-nir"
LOAD_OPTIONS = ("output", "readout", "min_v_mem", "norm_input", *OVERRIDABLE)


# --------------------------------------------------------------------------- helpers
def _type(node: Any) -> str:
    return type(node).__name__


def _what(name: str, node: Any) -> str:
    return f"node {name!r} ({_type(node)})"


def _arr(name: str, node: Any, fld: str, *, allow_inf: bool = False) -> np.ndarray:
    """A numeric parameter of a node as float64, with NaN (and inf) rejected."""
    what = _what(name, node)
    if not hasattr(node, fld):
        raise AsyncsimError(f"{what}: parameter {fld!r} is missing")
    value = getattr(node, fld)
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AsyncsimError(
            f"{what}: parameter {fld} = {value!r:.60} is not numeric; NIR parameters are "
            "arrays of numbers"
        ) from None
    if a.size == 0:
        raise AsyncsimError(f"{what}: parameter {fld} is empty")
    if np.isnan(a).any():
        raise AsyncsimError(f"{what}: parameter {fld} contains NaN; every value must be a number")
    if not allow_inf and np.isinf(a).any():
        raise AsyncsimError(f"{what}: parameter {fld} contains inf; every value must be finite")
    return a


def _ints(name: str, node: Any, fld: str, n: int, *, minimum: int = 0) -> tuple[int, ...]:
    """An int or a length-n sequence of ints (stride, padding, kernel size...)."""
    a = _arr(name, node, fld)
    if a.ndim == 0 or a.size == 1:
        a = np.full(n, float(a.ravel()[0]))
    if a.shape != (n,) or (a != np.round(a)).any() or (a < minimum).any():
        raise AsyncsimError(
            f"{_what(name, node)}: {fld} = {a.tolist()} must be {n} integer(s) >= {minimum}"
        )
    return tuple(int(v) for v in a)


def _shape(s: Any) -> tuple[int, ...] | None:
    if s is None:
        return None
    try:
        a = np.asarray(s).ravel()
        if a.size == 0 or not np.issubdtype(a.dtype, np.number):
            return None
        tup = tuple(int(v) for v in a)
    except (TypeError, ValueError, OverflowError):
        return None
    if any(v <= 0 for v in tup):
        return None
    return tup


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape))


def _asim_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """asyncsim has no 2-D layout: a NIR (C, L) tensor (Conv1d) becomes (C, 1, L)."""
    if len(shape) == 2:
        return (shape[0], 1, shape[1])
    return shape


@dataclass
class _Path:
    """One route ``source -> ops -> target``; ``ops`` are (node name, mask or None)."""

    source: str
    ops: list[tuple[str, np.ndarray | None]]
    delay: int
    back: bool = False


@dataclass(frozen=True)
class _Ends:
    """The projection being built: its name, source, target, per-target input gain and
    delay."""

    name: str
    src: str
    tgt: str
    gain: np.ndarray
    delay: int

    def conv2d(self, weight: np.ndarray, **kw: Any) -> Conv2d:
        """A Conv2d between these ends (``kw``: stride, padding, dilation, groups)."""
        return Conv2d(self.name, self.src, self.tgt, weight=weight, delay=self.delay, **kw)


@dataclass
class _Graph:
    nodes: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # neuron | op | input | output
    types: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    top_outputs: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- flattening
def _flatten(graph: Any) -> _Graph:
    """Flatten nested NIRGraphs; check that every edge names an existing node."""
    g = _Graph()

    def add(prefix: str, sub: Any, top: bool) -> None:
        nodes = getattr(sub, "nodes", None)
        edges = getattr(sub, "edges", None)
        where = "the graph" if top else f"subgraph {prefix[:-1]!r}"
        if not isinstance(nodes, dict):
            raise AsyncsimError(f"{where}: 'nodes' must be a dict of name -> node")
        if not isinstance(edges, (list, tuple)):
            raise AsyncsimError(f"{where}: 'edges' must be a list of (source, target) pairs")
        inner_in: list[str] = []
        inner_out: list[str] = []
        for raw_name, node in nodes.items():
            if not isinstance(raw_name, str) or not raw_name:
                raise AsyncsimError(f"{where}: node name {raw_name!r} must be a non-empty string")
            name = prefix + raw_name
            t = _type(node)
            if name in g.nodes:
                raise AsyncsimError(f"node name {name!r} is used twice after flattening")
            if t == "NIRGraph":
                add(name + ".", node, False)
                continue
            if t not in SUPPORTED:
                raise AsyncsimError(
                    f"{_what(name, node)}: unsupported node type {t!r}; asyncsim reads "
                    f"{', '.join(sorted(set(SUPPORTED) - {'NIRGraph'}))} and nested graphs"
                )
            g.nodes[name] = node
            if t == "Input":
                if top:
                    g.kinds[name] = "input"
                    g.inputs.append(name)
                else:
                    g.kinds[name] = "op"
                    t = "Identity"
                inner_in.append(name)
            elif t == "Output":
                g.kinds[name] = "op"
                if top:
                    g.top_outputs.append(name)
                inner_out.append(name)
                t = "Identity"
            elif t in NEURON_TYPES:
                g.kinds[name] = "neuron"
            else:
                g.kinds[name] = "op"
            g.types[name] = t
        subgraphs = {prefix + k for k, v in nodes.items() if _type(v) == "NIRGraph"}
        for e in edges:
            try:
                a, b = e
            except (TypeError, ValueError):
                raise AsyncsimError(
                    f"{where}: edge {e!r} must be a (source, target) pair"
                ) from None
            if not isinstance(a, str) or not isinstance(b, str):
                raise AsyncsimError(f"{where}: edge {e!r} must name nodes with strings")
            a, b = prefix + a, prefix + b
            a = _port(g, a, subgraphs, "Output", e, where)
            b = _port(g, b, subgraphs, "Input", e, where)
            for end in (a, b):
                if end not in g.nodes:
                    known = ", ".join(repr(k) for k in sorted(g.nodes)[:12])
                    raise AsyncsimError(
                        f"{where}: edge {tuple(e)!r} refers to node {end!r}, which does not "
                        f"exist (nodes: {known}{', ...' if len(g.nodes) > 12 else ''})"
                    )
            g.edges.append((a, b))

    add("", graph, True)
    # edges may be listed before the subgraph they enter was flattened: resolved above
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in g.edges:
        if e in seen:
            g.notes.append(f"duplicate edge {e!r} ignored (NIR edges form a set)")
            continue
        seen.add(e)
        unique.append(e)
    g.edges = unique
    return g


def _port(g: _Graph, name: str, subgraphs: set[str], kind: str, e: Any, where: str) -> str:
    """An edge endpoint naming a subgraph means its (single) Input or Output node."""
    if name not in subgraphs:
        return name
    cands = [
        k
        for k, v in g.nodes.items()
        if k.startswith(name + ".") and _type(v) == kind and k.count(".") == name.count(".") + 1
    ]
    if len(cands) != 1:
        raise AsyncsimError(
            f"{where}: edge {tuple(e)!r} enters subgraph {name!r}, which has "
            f"{len(cands)} {kind} nodes; name the inner node ('{name}.<node>')"
        )
    return cands[0]


# --------------------------------------------------------------------------- dt
def _neuron_taus(g: _Graph) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, tau, gain-defining factor) pairs: (tau, r) for membranes and
    (tau_syn, w_in) for CubaLIF synapses."""
    out = []
    for name, t in g.types.items():
        node = g.nodes[name]
        if t in ("LIF", "LI"):
            out.append((name, _arr(name, node, "tau", allow_inf=True), _arr(name, node, "r")))
        elif t in ("CubaLIF", "CubaLI"):
            out.append((name, _arr(name, node, "tau_mem", allow_inf=True), _arr(name, node, "r")))
            out.append(
                (name, _arr(name, node, "tau_syn", allow_inf=True), _arr(name, node, "w_in"))
            )
    return out


def _consistent(values: list[float]) -> float | None:
    if not values:
        return None
    v = np.asarray(values)
    ref = float(np.median(v))
    if ref > 0 and np.all(np.abs(v - ref) <= 1e-5 * ref):
        return ref
    return None


def _round_dt(dt: float) -> float:
    """Snap an inferred dt to 6 significant digits (float32 files store 1e-4 inexactly)."""
    if dt <= 0 or not math.isfinite(dt):
        return dt
    return float(f"{dt:.6g}")


def infer_dt(g: _Graph, prof: Profile) -> tuple[float, str]:
    """Infer the timestep for profiles without a fixed dt. Returns (dt, explanation)."""
    taus = _neuron_taus(g)
    finite = [(n, t[np.isfinite(t)], k[np.isfinite(t)]) for n, t, k in taus if np.isfinite(t).any()]
    if prof.name == "norse":
        if not finite:
            return 1e-3, ""  # no time constants: dt does not enter any parameter
        tmin = min(float(t.min()) for _, t, _ in finite)
        if tmin < 1e-3:
            return 1e-6, (
                f"smallest tau = {tmin:.3g} s < 1e-3 s: the file was written by Norse >= 1.1, "
                "whose exporter stores tau*dt, so the effective step is dt_cell*dt_export = "
                "1e-3*1e-3 = 1e-6 (pass dt=... if your cell or export dt differed)"
            )
        return 1e-3, (
            f"all tau >= 1e-3 s (smallest {tmin:.3g} s): an older Norse file with tau in "
            "seconds; dt = 1e-3 (Norse default)"
        )
    if prof.name == "rockpool":
        solved: list[float | None] = []
        for _, t, r in finite:
            for ti, ri in zip(*np.broadcast_arrays(t, r), strict=True):
                solved.append(_solve_rockpool_dt(float(ti), float(ri)))
        dt = _consistent([c for c in solved if c is not None])
        if dt is None:
            raise AsyncsimError(
                "profile 'rockpool': cannot solve dt from r = tau*exp(-dt/tau)/dt consistently "
                "for all neurons; pass dt=..."
            )
        return _round_dt(dt), "solved from Rockpool's r = tau*exp(-dt/tau)/dt"
    if prof.name == "spyx":
        spyx_dts = [
            float(ti * (1 - ri))
            for _, t, r in finite
            for ti, ri in zip(*np.broadcast_arrays(t, r), strict=True)
        ]
        dt = _consistent([c for c in spyx_dts if c > 0])
        if dt is None:
            raise AsyncsimError(
                "profile 'spyx': cannot infer dt from r = beta = 1 - dt/tau; pass dt=..."
            )
        return _round_dt(dt), "from Spyx's r = beta = 1 - dt/tau, dt = tau*(1 - r)"
    # generic: r*dt/tau = 1 (snnTorch, SpikingJelly, NIR's unit-gain convention)
    cands: list[float] = []
    for _, t, r in finite:
        tt, rr = np.broadcast_arrays(t, r)
        sel = np.abs(rr - 1.0) > 1e-9
        cands += [float(x) for x in (tt[sel] / rr[sel]) if x > 0]
    for name, t in g.types.items():
        if t in ("IF", "I"):
            r = _arr(name, g.nodes[name], "r")
            sel = np.abs(r - 1.0) > 1e-9
            cands += [float(x) for x in 1.0 / r[sel] if x > 0]
    if cands:
        dt = _consistent(cands)
        if dt is None:
            raise AsyncsimError(
                f"cannot infer dt: r*dt/tau = 1 gives different dt values "
                f"({min(cands):.4g} .. {max(cands):.4g}); pass dt=... or a trainer profile"
            )
        return _round_dt(dt), (
            f"from r = tau/dt (unit input gain, the snnTorch/SpikingJelly convention): "
            f"dt = {_round_dt(dt):.6g}"
        )
    if not finite:
        return 1.0, "no time constants and r = 1: dt = 1 so that the IF/I input gain dt*r = 1"
    tmin = min(float(t.min()) for _, t, _ in finite)
    raise AsyncsimError(
        f"cannot infer dt: every r = 1 and time constants are given (smallest tau = {tmin:.4g}); "
        "pass dt=... (seconds per timestep) or a profile: 'sinabs' (tau in timesteps, dt = 1), "
        "'norse' (dt = 1e-3), 'snntorch'/'spikingjelly' (dt = 1e-4)"
    )


def _solve_rockpool_dt(tau: float, r: float) -> float | None:
    """Solve r = tau*exp(-dt/tau)/dt for dt > 0 (the left side decreases in dt)."""
    if not (tau > 0 and r > 0 and math.isfinite(tau)):
        return None
    lo, hi = 1e-12 * tau, 50.0 * tau

    def f(d: float) -> float:
        return tau * math.exp(-d / tau) / d - r

    if f(lo) < 0 or f(hi) > 0:
        return None
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


# --------------------------------------------------------------------------- structure
def _back_edges(g: _Graph, delay_steps: dict[str, np.ndarray]) -> set[tuple[str, str]]:
    """Edges closing a cycle (DFS from the input, successors in name order), ignoring
    edges that leave a Delay node of >= 1 timestep (those cycles are already delayed)."""
    succ: dict[str, list[str]] = {n: [] for n in g.nodes}
    for a, b in g.edges:
        if a in delay_steps and (delay_steps[a] >= 1).all():
            continue
        succ[a].append(b)
    for n in succ:
        succ[n].sort()
    state = dict.fromkeys(g.nodes, 0)  # 0 new, 1 on stack, 2 done
    back: set[tuple[str, str]] = set()
    roots = g.inputs + sorted(n for n in g.nodes if n not in g.inputs)
    for root in roots:
        if state[root]:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state[nxt] == 1:
                back.add((node, nxt))
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    # a cycle made only of operators would be an algebraic loop: no neuron to delay it
    for a, b in back:
        if g.kinds[a] != "neuron" and g.kinds[b] != "neuron" and not _cycle_has_neuron(g, a, b):
            raise AsyncsimError(
                f"edge ({a!r}, {b!r}) closes a cycle made only of operators (no neuron node): "
                "an algebraic loop cannot be simulated; put a neuron or a Delay in the cycle"
            )
    return back


def _cycle_has_neuron(g: _Graph, a: str, b: str) -> bool:
    """Is there a path b -> ... -> a that passes through a neuron?"""
    succ: dict[str, list[str]] = {n: [] for n in g.nodes}
    for x, y in g.edges:
        succ[x].append(y)
    seen = {(b, g.kinds[b] == "neuron")}
    todo = [(b, g.kinds[b] == "neuron")]
    while todo:
        n, has = todo.pop()
        if n == a and (has or g.kinds[a] == "neuron"):
            return True
        for m in succ[n]:
            st = (m, has or g.kinds[m] == "neuron")
            if st not in seen:
                seen.add(st)
                todo.append(st)
    return False


def _conv_params(name: str, node: Any, nd: int) -> dict[str, Any]:
    w = _arr(name, node, "weight")
    if w.ndim != nd + 2:
        raise AsyncsimError(
            f"{_what(name, node)}: weight must be {nd + 2}-D (C_out, C_in/groups, kernel...), "
            f"got shape {w.shape}"
        )
    groups_raw = _arr(name, node, "groups")
    if groups_raw.size != 1 or groups_raw.ravel()[0] != round(float(groups_raw.ravel()[0])):
        raise AsyncsimError(f"{_what(name, node)}: groups must be one integer")
    groups = int(groups_raw.ravel()[0])
    if groups < 1 or w.shape[0] % groups:
        raise AsyncsimError(
            f"{_what(name, node)}: groups = {groups} must be >= 1 and divide C_out = {w.shape[0]}"
        )
    pad = getattr(node, "padding", 0)
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SUO" and pad.size == 1:
        pad = pad.ravel()[0]
        pad = pad.decode() if isinstance(pad, bytes) else str(pad)
    if isinstance(pad, str):
        if pad.lower() not in ("same", "valid"):
            raise AsyncsimError(
                f"{_what(name, node)}: padding {pad!r} must be integers, 'same' or 'valid'"
            )
        padding: Any = pad.lower()
    else:
        padding = _ints(name, node, "padding", nd)
    return dict(
        weight=w,
        stride=_ints(name, node, "stride", nd, minimum=1),
        dilation=_ints(name, node, "dilation", nd, minimum=1),
        groups=groups,
        padding=padding,
        bias=_arr(name, node, "bias") if getattr(node, "bias", None) is not None else None,
    )


def _pool_params(
    name: str, node: Any, t: str
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], float]:
    """A SumPool2d / AvgPool2d (``t``) node's kernel size, stride and padding (validated), and the
    weight of each tap: 1 for a sum, 1 / window size for an average."""
    k = _ints(name, node, "kernel_size", 2, minimum=1)
    s = _ints(name, node, "stride", 2, minimum=1)
    pd = _ints(name, node, "padding", 2)
    val = 1.0 if t == "SumPool2d" else 1.0 / (k[0] * k[1])
    return k, s, pd, val


def _explicit_matrix(
    apply: Callable[[np.ndarray], np.ndarray], n_src: int, n_tgt: int
) -> np.ndarray:
    """The (n_tgt, n_src) matrix of a linear map, from ``apply`` on chunks of one-hot rows
    (``(batch, n_src) -> (batch, n_tgt)``)."""
    m = np.zeros((n_tgt, n_src))
    chunk = max(1, min(n_src, 2_000_000 // max(n_tgt, 1), 4096))
    for a in range(0, n_src, chunk):
        bsz = min(chunk, n_src - a)
        x = np.zeros((bsz, n_src))
        x[np.arange(bsz), a + np.arange(bsz)] = 1.0
        m[:, a : a + bsz] = apply(x).reshape(bsz, n_tgt).T
    return m


class _Importer:
    """One conversion (state shared by the steps; see the module docstring)."""

    def __init__(self, graph: Any, *, dt: float | None, profile: Any, opts: dict[str, Any]):
        self.raw = graph
        self.opts = dict(opts)
        self.given = set(opts)
        self.warnings: list[str] = []
        self.g = _flatten(graph)
        for n in self.g.notes:
            self.warnings.append(n)
        gmeta = getattr(graph, "metadata", None)
        self.file_meta: dict[str, Any] = gmeta if isinstance(gmeta, dict) else {}
        self.native = str(self.file_meta.get("format", "")) == ASYNCSIM_NIR_FORMAT
        self._choose_profile(profile, dt)

    # ------------------------------------------------------------------ profile and dt
    def _choose_profile(self, profile: Any, dt: float | None) -> None:
        meta = self.file_meta
        how = "argument"
        if profile is None:
            hint = meta.get("asyncsim_profile") or meta.get("profile") or meta.get("source")
            if self.native:
                profile, how = "generic", "asyncsim-written file (exact parameters in metadata)"
            elif isinstance(hint, (str, bytes)):
                hint = hint.decode() if isinstance(hint, bytes) else hint
                if hint.lower() in PROFILES:
                    profile, how = hint.lower(), "file metadata"
            if profile is None:
                profile, how = "generic", "default (no profile given or recorded in the file)"
        overrides = {k: self.opts.pop(k) for k in list(self.opts) if k in OVERRIDABLE}
        # file metadata written by train scripts (e.g. models/digits) records settings that
        # NIR cannot express, such as snnTorch's reset mechanism
        if how == "file metadata":
            for key, opt in (("reset_mechanism", "reset"), ("reset_delay", "reset_delay")):
                if key in meta and opt not in overrides:
                    v = meta[key]
                    v = v.decode() if isinstance(v, bytes) else v
                    overrides[opt] = str(v) if isinstance(v, (str, np.str_)) else bool(v)
        norm = self.opts.pop("norm_input", None)
        if norm is not None and "lif_gain" not in overrides:
            overrides["lif_gain"] = "norm" if bool(norm) else "raw"
        self.profile = get_profile(profile, overrides)
        self.profile_source = how
        prof = self.profile
        if not prof.verified:
            self.warnings.append(
                f"profile {prof.name!r} is not verified against the trainer's forward pass "
                "(see docs/models.md); spikes may differ"
            )
        if prof.name == "snntorch" and prof.reset == "subtract" and not prof.reset_delay:
            self.warnings.append(
                "snnTorch reset_delay=False with reset='subtract' is reproduced exactly only "
                "while a neuron's potential after its reset stays at or below the threshold "
                "(it never exceeds twice the threshold); above that snnTorch subtracts the "
                "threshold once more when deciding the next spike (docs/models.md)"
            )
        # dt
        if dt is not None:
            try:
                dtf = float(dt)
            except (TypeError, ValueError):
                raise AsyncsimError(
                    f"dt = {dt!r} must be a number (seconds per timestep)"
                ) from None
            if not math.isfinite(dtf) or dtf <= 0:
                raise AsyncsimError(
                    f"dt = {dt!r} must be a finite number > 0 (seconds per timestep)"
                )
            self.dt, self.dt_source = dtf, "argument"
        elif self.native and "dt" in meta:
            self.dt, self.dt_source = float(meta["dt"]), "asyncsim file metadata"
        elif prof.dt is not None:
            self.dt, self.dt_source = float(prof.dt), f"profile {prof.name!r}"
        else:
            meta_dt = meta.get("dt")
            if meta_dt is not None and how == "file metadata":
                self.dt, self.dt_source = float(meta_dt), "file metadata"
            else:
                self.dt, why = infer_dt(self.g, prof)
                if why:
                    self.dt_source = f"inferred: {why}"
                    self.warnings.append(
                        f"dt = {self.dt:.6g} s was inferred ({why}); pass dt=... (CLI: --dt) "
                        "to override"
                    )
                else:
                    self.dt_source = f"profile {prof.name!r} default (no time constants: unused)"
        if self.profile_source.startswith("default") and not self.native:
            self.warnings.append(
                "no profile given: using 'generic' (NIR's Euler reading; reset to v_reset, "
                "'>'); pass profile='snntorch' | 'norse' | 'spikingjelly' | 'sinabs' | "
                "'rockpool' | 'spyx' (CLI: --profile) to match the trainer exactly"
            )
        if self.opts.get("min_v_mem") is not None:
            raise AsyncsimError(
                f"min_v_mem = {self.opts['min_v_mem']!r}: clamping the membrane from below "
                "(Sinabs min_v_mem) is not supported by the asyncsim engine; the Sinabs trainer "
                "default is min_v_mem=None"
            )
        self.opts.pop("min_v_mem", None)

    # ------------------------------------------------------------------ shapes
    def _delay_steps(self) -> dict[str, np.ndarray]:
        out = {}
        for name, t in self.g.types.items():
            if t != "Delay":
                continue
            node = self.g.nodes[name]
            d = _arr(name, node, "delay")
            if (d < 0).any():
                raise AsyncsimError(f"{_what(name, node)}: delay must be >= 0 seconds")
            steps = d / self.dt
            whole = np.round(steps)
            if (np.abs(steps - whole) > 1e-6 * np.maximum(1.0, np.abs(whole))).any():
                bad = d.ravel()[np.argmax(np.abs(steps - whole).ravel())]
                raise AsyncsimError(
                    f"{_what(name, node)}: delay {bad:.6g} s is not a whole number of timesteps "
                    f"(dt = {self.dt:.6g} s gives {bad / self.dt:.6g}); asyncsim delays are "
                    "integer timesteps: pass a dt that divides every delay"
                )
            out[name] = whole.astype(np.int64)
        return out

    def _own_shape(self, name: str) -> tuple[int, ...] | None:
        """Shape implied by a node's own parameters (None if it takes its input's)."""
        node = self.g.nodes[name]
        t = self.g.types[name]
        fields = {
            "LIF": ("tau", "r", "v_leak", "v_threshold"),
            "IF": ("r", "v_threshold"),
            "LI": ("tau", "r", "v_leak"),
            "I": ("r",),
            "CubaLIF": ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "w_in"),
            "CubaLI": ("tau_mem", "tau_syn", "r", "v_leak", "w_in"),
            "Threshold": ("threshold",),
            "Delay": ("delay",),
        }.get(t)
        if fields is None:
            return None
        shapes = []
        for f in fields:
            a = _arr(name, node, f, allow_inf=f in ("tau", "tau_mem", "tau_syn", "v_threshold"))
            if a.size > 1:
                shapes.append(a.shape)
        if not shapes:
            return None
        try:
            shp = np.broadcast_shapes(*shapes)
        except ValueError:
            raise AsyncsimError(
                f"{_what(name, node)}: parameter shapes {sorted(set(shapes))} do not match; "
                "all parameters must have one shape"
            ) from None
        return tuple(int(s) for s in shp)

    def _infer_shapes(self) -> None:
        g = self.g
        preds: dict[str, list[str]] = {n: [] for n in g.nodes}
        for a, b in g.edges:
            preds[b].append(a)
        self.preds = preds
        in_shape: dict[str, tuple[int, ...]] = {}
        out_shape: dict[str, tuple[int, ...]] = {}
        for name in g.inputs:
            node = g.nodes[name]
            it = getattr(node, "input_type", None)
            shp = _shape(it.get("input") if isinstance(it, dict) else None)
            if shp is None:
                shp = _shape(getattr(node, "shape", None))
            if shp is None:
                raise AsyncsimError(
                    f"{_what(name, node)}: input shape {it!r:.80} is not a list of positive "
                    "integers"
                )
            in_shape[name] = out_shape[name] = shp
        own = {n: self._own_shape(n) for n in g.nodes if g.kinds[n] != "input"}
        allow_own = False
        while True:
            changed = False
            for name in sorted(g.nodes):
                if name in out_shape:
                    continue
                src = next((p for p in sorted(preds[name]) if p in out_shape), None)
                if src is None and preds[name] and not allow_own:
                    continue  # wait for an input shape (it carries the (C, H, W) layout)
                shp_in = out_shape[src] if src is not None else None
                res = self._node_shapes(name, shp_in, own.get(name))
                if res is not None:
                    in_shape[name], out_shape[name] = res
                    changed = True
                    if allow_own:
                        break
            if changed:
                allow_own = False
            elif not allow_own:
                allow_own = True
            else:
                break
        missing = [n for n in g.nodes if n not in out_shape and g.kinds[n] != "input"]
        if missing:
            raise AsyncsimError(
                f"cannot determine the shape of node(s) {', '.join(map(repr, missing[:5]))}: "
                "they are not connected to the input (check the edges)"
            )
        # every edge must deliver the size its target expects
        for a, b in g.edges:
            if b in g.inputs:
                raise AsyncsimError(f"edge ({a!r}, {b!r}) enters the Input node")
            if _size(out_shape[a]) != _size(in_shape[b]):
                raise AsyncsimError(
                    f"shape mismatch on edge ({a!r}, {b!r}): {_what(a, g.nodes[a])} outputs "
                    f"shape {out_shape[a]} ({_size(out_shape[a])} values) but "
                    f"{_what(b, g.nodes[b])} expects {in_shape[b]} ({_size(in_shape[b])} values)"
                )
        self.in_shape, self.out_shape = in_shape, out_shape

    def _node_shapes(
        self, name: str, shp_in: tuple[int, ...] | None, own: tuple[int, ...] | None
    ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(input shape, output shape) of a node, or None if not yet known."""
        node = self.g.nodes[name]
        t = self.g.types[name]
        what = _what(name, node)
        if t in NEURON_TYPES or t == "Delay":
            if own is not None:
                if shp_in is not None and _size(shp_in) != _size(own):
                    raise AsyncsimError(
                        f"shape mismatch: {what} has parameters of shape {own} "
                        f"({_size(own)} neurons) but its input has shape {shp_in}"
                    )
                if shp_in is not None and len(shp_in) > len(own):
                    return shp_in, shp_in  # same neurons, richer (C, H, W) layout
                return own, own
            return (shp_in, shp_in) if shp_in is not None else None
        if t in ("Affine", "Linear"):
            w = _arr(name, node, "weight")
            if w.ndim != 2:
                raise AsyncsimError(f"{what}: weight must be 2-D (out, in), got shape {w.shape}")
            if t == "Affine":
                b = _arr(name, node, "bias")
                if b.size != w.shape[0]:
                    raise AsyncsimError(
                        f"{what}: bias has {b.size} values but weight has {w.shape[0]} rows"
                    )
            return (w.shape[1],), (w.shape[0],)
        if t == "Scale":
            scale = _arr(name, node, "scale")
            if scale.size > 1:
                if shp_in is not None and _size(shp_in) == scale.size:
                    return shp_in, shp_in
                return scale.shape, scale.shape
            return (shp_in, shp_in) if shp_in is not None else None
        if t in ("Identity", "Flatten"):
            if shp_in is None:
                it = getattr(node, "input_type", None)
                shp_in = _shape(it.get("input") if isinstance(it, dict) else None)
                if shp_in is None:
                    return None
            if t == "Identity":
                return shp_in, shp_in
            return shp_in, self._flatten_shape(name, node, shp_in)
        if t in ("Conv2d", "Conv1d"):
            nd = 2 if t == "Conv2d" else 1
            p = _conv_params(name, node, nd)
            c_in = p["weight"].shape[1] * p["groups"]
            spatial = _shape(getattr(node, "input_shape", None))
            if shp_in is not None and len(shp_in) == nd + 1 and shp_in[0] == c_in:
                xin = shp_in
            elif spatial is not None and len(spatial) == nd:
                xin = (c_in, *spatial)
            elif shp_in is not None and len(shp_in) == nd + 2 and shp_in[0] == 1:
                xin = shp_in[1:]  # a leading batch dimension
            elif shp_in is None:
                return None
            else:
                raise AsyncsimError(
                    f"shape mismatch: {what} expects input (C_in={c_in}, "
                    f"{'H, W' if nd == 2 else 'L'}) but receives shape {shp_in}"
                )
            if shp_in is not None and _size(shp_in) != _size(xin):
                raise AsyncsimError(
                    f"shape mismatch: {what} expects input {xin} but receives shape {shp_in}"
                )
            if xin[0] != c_in:
                raise AsyncsimError(
                    f"shape mismatch: {what} weight expects {c_in} input channels, input has "
                    f"{xin[0]}"
                )
            k = p["weight"].shape[2:]
            pads = self._pads(name, node, p, xin[1:], k)
            out = [xin[0] * 0 + p["weight"].shape[0]]
            for i in range(nd):
                n_out = _linops.conv_out_size(
                    xin[1 + i], pads[i][0], pads[i][1], k[i], p["stride"][i], p["dilation"][i]
                )
                if n_out < 1:
                    raise AsyncsimError(f"{what}: kernel {tuple(k)} does not fit input {xin}")
                out.append(n_out)
            return xin, tuple(out)
        if t in ("SumPool2d", "AvgPool2d"):
            if shp_in is None:
                return None
            if len(shp_in) == 4 and shp_in[0] == 1:
                shp_in = shp_in[1:]
            if len(shp_in) != 3:
                raise AsyncsimError(
                    f"shape mismatch: {what} needs a (C, H, W) input, got shape {shp_in}"
                )
            k, s, pd, _ = _pool_params(name, node, t)
            ho = _linops.conv_out_size(shp_in[1], pd[0], pd[0], k[0], s[0], 1)
            wo = _linops.conv_out_size(shp_in[2], pd[1], pd[1], k[1], s[1], 1)
            if ho < 1 or wo < 1:
                raise AsyncsimError(f"{what}: kernel {k} does not fit input {shp_in}")
            return shp_in, (shp_in[0], ho, wo)
        raise AsyncsimError(f"{what}: unsupported node type")  # pragma: no cover

    def _pads(
        self, name: str, node: Any, p: dict[str, Any], spatial: tuple[int, ...], k: tuple[int, ...]
    ) -> list[tuple[int, int]]:
        pad = p["padding"]
        nd = len(spatial)
        if pad == "valid":
            return [(0, 0)] * nd
        if pad == "same":
            if any(s != 1 for s in p["stride"]):
                raise AsyncsimError(f"{_what(name, node)}: padding='same' requires stride 1")
            return [_linops.same_padding(k[i], p["dilation"][i]) for i in range(nd)]
        return [(pad[i], pad[i]) for i in range(nd)]

    def _flatten_shape(self, name: str, node: Any, shp: tuple[int, ...]) -> tuple[int, ...]:
        try:
            start = int(np.asarray(getattr(node, "start_dim", 0)).ravel()[0])
            end = int(np.asarray(getattr(node, "end_dim", -1)).ravel()[0])
        except (TypeError, ValueError, IndexError):
            raise AsyncsimError(
                f"{_what(name, node)}: start_dim/end_dim must be integers"
            ) from None
        n = len(shp)
        # NIR dims exclude the batch; some exporters write torch's (start_dim - 1)
        s = start + n if start < 0 else start
        e = end + n if end < 0 else end
        if not (0 <= s < n and 0 <= e < n) or s > e:
            return (_size(shp),)
        return (*shp[:s], _size(shp[s : e + 1]), *shp[e + 1 :])

    # ------------------------------------------------------------------ operators
    def _apply(self, name: str, x: np.ndarray) -> np.ndarray:
        """Linear part of operator ``name`` on a batch (B, *in_shape) -> (B, *out_shape)."""
        g = self.g
        t = g.types[name]
        node = g.nodes[name]
        b = x.shape[0]
        shp_in = self.in_shape[name]
        shp_out = self.out_shape[name]
        x = x.reshape((b, *shp_in))
        if t in ("Affine", "Linear"):
            return x.reshape(b, -1) @ _arr(name, node, "weight").T
        if t == "Scale":
            scale = _arr(name, node, "scale")
            scale = scale.reshape(shp_in) if scale.size > 1 else scale.ravel()[0]
            return x * scale
        if t in ("Conv2d", "Conv1d"):
            nd = 2 if t == "Conv2d" else 1
            p = _conv_params(name, node, nd)
            k = p["weight"].shape[2:]
            pads = self._pads(name, node, p, shp_in[1:], k)
            if nd == 1:
                y = _linops.conv2d(
                    x[:, :, None, :],
                    p["weight"][:, :, None, :],
                    (1, p["stride"][0]),
                    (0, 0, *pads[0]),
                    (1, p["dilation"][0]),
                    p["groups"],
                )
                return y[:, :, 0, :]
            return _linops.conv2d(
                x, p["weight"], p["stride"], (*pads[0], *pads[1]), p["dilation"], p["groups"]
            )
        if t in ("SumPool2d", "AvgPool2d"):
            k, s, pd, val = _pool_params(name, node, t)
            c = shp_in[0]
            w = np.full((c, 1, *k), val)
            return _linops.conv2d(x, w, (s[0], s[1]), (pd[0], pd[0], pd[1], pd[1]), (1, 1), c)
        # Flatten, Identity, Delay: reshape only
        return x.reshape((b, *shp_out))

    def _bias(self, name: str) -> np.ndarray | None:
        t = self.g.types[name]
        node = self.g.nodes[name]
        if t == "Affine":
            return _arr(name, node, "bias")
        if t in ("Conv2d", "Conv1d"):
            b = getattr(node, "bias", None)
            if b is None:
                return None
            b = _arr(name, node, "bias")
            c = self.out_shape[name][0]
            if b.size == 1:
                b = np.full(c, float(b.ravel()[0]))
            if b.size != c:
                raise AsyncsimError(
                    f"{_what(name, node)}: bias has {b.size} values, expected C_out = {c}"
                )
            return np.broadcast_to(
                b.reshape((c,) + (1,) * (len(self.out_shape[name]) - 1)), self.out_shape[name]
            )
        return None

    def _const_out(self, name: str, memo: dict[str, np.ndarray]) -> np.ndarray:
        """Constant (input-independent) output of an operator: its bias pushed through."""
        if name in memo:
            return memo[name]
        memo[name] = np.zeros(_size(self.out_shape[name]))  # guards operator-only cycles
        acc = np.zeros(_size(self.in_shape[name]))
        for p in self.preds[name]:
            if self.g.kinds[p] == "op":
                acc = acc + self._const_out(p, memo)
        out = (
            self._apply(name, acc[None])[0].ravel()
            if acc.any()
            else np.zeros(_size(self.out_shape[name]))
        )
        bias = self._bias(name)
        if bias is not None:
            out = out + np.asarray(bias, dtype=np.float64).ravel()
        if self.g.types[name] == "Delay" and out.any():
            raise AsyncsimError(
                f"{_what(name, self.g.nodes[name])}: a constant (bias) input passes through this "
                "Delay; it would arrive only after the delay, but asyncsim applies biases from "
                "timestep 0. Move the bias after the Delay"
            )
        memo[name] = out
        return out

    # ------------------------------------------------------------------ paths
    def _paths_into(self, target: str) -> list[_Path]:
        out: list[_Path] = []

        def walk(
            node: str,
            suffix: list[tuple[str, np.ndarray | None]],
            delay: int,
            back: bool,
            depth: int,
        ) -> None:
            if depth > len(self.g.nodes) + 1:
                raise AsyncsimError(f"operator chain into {target!r} is cyclic")  # pragma: no cover
            for p in sorted(self.preds[node]):
                d = delay + (1 if (p, node) in self.back else 0)
                bk = back or (p, node) in self.back
                kind = self.g.kinds[p]
                if kind in ("input", "neuron"):
                    out.append(_Path(p, list(suffix), d, bk))
                elif self.g.types[p] == "Delay":
                    steps = self.delays[p].ravel()
                    vals = np.unique(steps)
                    if vals.size == 1:
                        walk(p, [(p, None), *suffix], d + int(vals[0]), bk, depth + 1)
                    else:
                        for v in vals:
                            mask = (steps == v).astype(np.float64)
                            walk(p, [(p, mask), *suffix], d + int(v), bk, depth + 1)
                else:
                    walk(p, [(p, None), *suffix], d, bk, depth + 1)

        walk(target, [], 0, False, 0)
        return out

    def _compose(self, path: _Path, target: str) -> np.ndarray:
        """Explicit matrix (n_target, n_source) of a path's linear map, chunk by chunk."""
        n_src = _size(self.out_shape[path.source])
        n_tgt = _size(self.in_shape[target])
        if n_src * n_tgt > MAX_COMPOSED:
            raise AsyncsimError(
                f"the operator chain {' -> '.join(n for n, _ in path.ops)} from {path.source!r} "
                f"to {target!r} would need an explicit {n_tgt} x {n_src} matrix; too large "
                "to compose (put a neuron layer between the operators)"
            )

        def apply(x: np.ndarray) -> np.ndarray:
            for name, mask in path.ops:
                x = self._apply(name, x).reshape(x.shape[0], -1)
                if mask is not None:
                    x = x * mask
            return x

        return _explicit_matrix(apply, n_src, n_tgt)

    # ------------------------------------------------------------------ neurons
    def _leak(self, name: str, tau: np.ndarray, what: str) -> np.ndarray:
        dt = self.dt
        if (tau <= 0).any():
            bad = tau[tau <= 0].ravel()[0]
            raise AsyncsimError(
                f"{_what(name, self.g.nodes[name])}: {what} = {bad!r} must be > 0 (use inf for "
                "no leak)"
            )
        if self.profile.leak == "exact":
            return np.exp(-dt / tau)
        beta = 1.0 - dt / tau
        if (beta < 0).any():
            bad = float(tau[beta < 0].ravel()[0])
            hint = ""
            if self.profile.name in ("generic", "snntorch", "spikingjelly") and bad < 1e-3:
                hint = (
                    "; tau below 1e-3 s suggests a Norse >= 1.1 file (its exporter writes "
                    "tau*dt): try profile='norse'"
                )
            raise AsyncsimError(
                f"{_what(name, self.g.nodes[name])}: Euler leak 1 - dt/{what} = 1 - "
                f"{dt:.6g}/{bad:.6g} = {1 - dt / bad:.4g} is negative: dt must not exceed "
                f"{what}. Pass a smaller dt (e.g. dt={bad:.3g} or less) or leak='exact'{hint}"
            )
        return beta

    def _membrane_gain(
        self, name: str, r: np.ndarray, tau: np.ndarray, beta: np.ndarray
    ) -> np.ndarray:
        rule = self.profile.lif_gain
        if rule == "euler":
            return r * np.where(np.isinf(tau), 0.0, self.dt / np.where(np.isinf(tau), 1.0, tau))
        if rule == "norm":
            return (1.0 - beta) * r
        if rule == "raw":
            return r
        return np.ones_like(r)

    def _population(self, name: str) -> tuple[Population, np.ndarray]:
        """The population for a neuron node and the per-neuron input gain (flat)."""
        node = self.g.nodes[name]
        t = self.g.types[name]
        prof = self.profile
        shape = self.out_shape[name]
        n = _size(shape)

        def full(a: np.ndarray) -> np.ndarray:
            try:
                return np.broadcast_to(a, shape).astype(np.float64).ravel()
            except ValueError:
                return np.broadcast_to(a.reshape(-1), (n,)).astype(np.float64)

        alpha = None
        v_leak = np.zeros(n)
        threshold = np.full(n, np.inf)
        if t in ("LIF", "LI"):
            tau = full(_arr(name, node, "tau", allow_inf=True))
            r = full(_arr(name, node, "r"))
            v_leak = full(_arr(name, node, "v_leak"))
            beta = self._leak(name, tau, "tau")
            gain = self._membrane_gain(name, r, tau, beta)
        elif t in ("IF", "I"):
            r = full(_arr(name, node, "r"))
            beta = np.ones(n)
            gain = r * self.dt if prof.if_gain == "r_dt" else r
        elif t in ("CubaLIF", "CubaLI"):
            tau_m = full(_arr(name, node, "tau_mem", allow_inf=True))
            tau_s = full(_arr(name, node, "tau_syn", allow_inf=True))
            r = full(_arr(name, node, "r"))
            w_in = full(_arr(name, node, "w_in"))
            v_leak = full(_arr(name, node, "v_leak"))
            beta = self._leak(name, tau_m, "tau_mem")
            alpha = self._leak(name, tau_s, "tau_syn")
            gm = self._membrane_gain(name, r, tau_m, beta)
            if prof.syn_gain == "euler":
                gs = w_in * np.where(
                    np.isinf(tau_s), 0.0, self.dt / np.where(np.isinf(tau_s), 1.0, tau_s)
                )
            elif prof.syn_gain == "raw":
                gs = w_in
            else:
                gs = np.ones(n)
            gain = gm * gs
            if prof.name == "snntorch" and prof.reset == "zero" and prof.reset_delay:
                raise AsyncsimError(
                    f"{_what(name, node)}: snnTorch Synaptic with reset_mechanism='zero' and "
                    "reset_delay=True also wipes the input of the step after a spike "
                    "(m = (1-s)(beta m + syn)); the asyncsim engine cannot express that. Use "
                    "reset='subtract' or reset_delay=False"
                )
        else:  # Threshold: a stateless comparison
            beta = np.zeros(n)
            gain = np.ones(n)
        if (
            t == "LIF"
            and prof.name == "snntorch"
            and prof.reset == "zero"
            and prof.reset_delay
            and any(b == name for _, b in self.back)
        ):
            raise AsyncsimError(
                f"{_what(name, node)}: this recurrent layer (snnTorch RLeaky) with "
                "reset_mechanism='zero' and reset_delay=True zeroes its whole next update, "
                "input included (m = (1-s)(beta m + x + W s + b)); the asyncsim engine cannot "
                "express that. Use reset='subtract' or reset_delay=False"
            )
        if t in ("LIF", "IF", "CubaLIF"):
            threshold = full(_arr(name, node, "v_threshold", allow_inf=True))
        elif t == "Threshold":
            threshold = full(_arr(name, node, "threshold", allow_inf=True))
        v_reset = np.zeros(n)
        if prof.use_v_reset and getattr(node, "v_reset", None) is not None and t != "Threshold":
            v_reset = full(_arr(name, node, "v_reset"))
        if prof.v_init == "v_leak":
            v_init = v_leak
        elif prof.v_init == "v_reset":
            v_init = v_reset
        else:
            v_init = np.zeros(n)
        spiking = t not in NON_SPIKING
        if self._float32(name):
            # the trainer's own parameter (beta, alpha, unit gain) was a float32; the file
            # stores a float32 function of it: round the recovered factor back to float32
            beta = _f32(beta)
            # exporters write r = tau/dt (and w_in = tau_syn/dt) so that the gain is 1; in
            # float32 that lands within a few ulps of 1: take it as exactly 1
            gain = np.where(np.abs(gain - 1.0) <= 4 * np.finfo(np.float32).eps, 1.0, _f32(gain))
            if alpha is not None:
                alpha = _f32(alpha)
        bias = (1.0 - beta) * v_leak
        meta = {
            "nir_node": name,
            "nir_type": t,
            "nir_shape": list(shape),
            "input_gain": _summary(gain),
            "float32_parameters": self._float32(name),
        }
        pop = Population(
            name,
            _asim_shape(shape),
            threshold=threshold.reshape(_asim_shape(shape)),
            beta=beta.reshape(_asim_shape(shape)),
            reset=prof.reset if t != "Threshold" else "zero",
            v_reset=v_reset.reshape(_asim_shape(shape)),
            reset_delay=prof.reset_delay and spiking and t != "Threshold",
            bias=bias.reshape(_asim_shape(shape)),
            alpha=None if alpha is None else alpha.reshape(_asim_shape(shape)),
            threshold_op=prof.threshold_op,
            v_init=v_init.reshape(_asim_shape(shape)),
            multi_spike=prof.multi_spike and spiking and t != "Threshold",
            metadata=meta,
        )
        return pop, gain

    def _topo_order(self) -> list[str]:
        """All nodes, sources first (Kahn on the edges that are not delayed back edges;
        ties by name), so populations are listed from input to output."""
        g = self.g
        skip = {
            (a, b)
            for a, b in g.edges
            if (a, b) in self.back or (a in self.delays and (self.delays[a] >= 1).all())
        }
        indeg = dict.fromkeys(g.nodes, 0)
        succ: dict[str, list[str]] = {n: [] for n in g.nodes}
        for a, b in g.edges:
            if (a, b) not in skip:
                indeg[b] += 1
                succ[a].append(b)
        import heapq

        ready = [n for n, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            n = heapq.heappop(ready)
            out.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    heapq.heappush(ready, m)
        out += sorted(n for n in g.nodes if n not in set(out))
        return out

    def _float32(self, name: str) -> bool:
        node = self.g.nodes[name]
        flds = ("tau", "tau_mem", "tau_syn", "r", "w_in")
        return any(
            isinstance(getattr(node, f, None), np.ndarray)
            and getattr(node, f).dtype in (np.float32, np.float16)
            for f in flds
        )

    # ------------------------------------------------------------------ build
    def build(self) -> Network:
        g = self.g
        if len(g.inputs) != 1:
            raise AsyncsimError(
                f"the graph has {len(g.inputs)} Input nodes "
                f"({', '.join(map(repr, g.inputs)) or 'none'}); asyncsim networks have exactly "
                "one input"
            )
        neurons = [n for n, k in g.kinds.items() if k == "neuron"]
        if not neurons:
            raise AsyncsimError("the graph has no neuron nodes (LIF, IF, LI, I, CubaLIF, ...)")
        if INPUT in neurons:
            raise AsyncsimError(f"a neuron node is named {INPUT!r}, which asyncsim reserves")
        self.delays = self._delay_steps()
        self.back = _back_edges(g, self.delays)
        self._infer_shapes()
        neurons = [n for n in self._topo_order() if g.kinds[n] == "neuron"]
        input_shape = self.net_input_shape
        nir_in = self.out_shape[g.inputs[0]]
        if _size(nir_in) == _size(input_shape) and len(nir_in) > len(input_shape):
            self.warnings.append(
                f"input shape {nir_in} has a leading batch dimension; using {input_shape}"
            )
        pops: dict[str, Population] = {}
        gains: dict[str, np.ndarray] = {}
        for name in neurons:
            pops[name], gains[name] = self._population(name)
        if self.native:
            self._apply_native(pops, gains)
        projections: list[Projection] = []
        used: set[str] = set()
        memo: dict[str, np.ndarray] = {}
        for tgt in neurons:
            const = np.zeros(_size(self.in_shape[tgt]))
            for p in self.preds[tgt]:
                if g.kinds[p] == "op":
                    const = const + self._const_out(p, memo)
            if const.any():
                pops[tgt] = _with_constant_input(pops[tgt], gains[tgt] * const)
            for path in self._paths_into(tgt):
                projections.append(self._projection(path, tgt, gains[tgt], pops, used))
        # output and readout
        output, readout_pop = self._output(pops)
        self._check_reachable(readout_pop[0].name if readout_pop else output)
        populations = [pops[n] for n in neurons]
        if readout_pop is not None:
            populations.append(readout_pop[0])
            projections.extend(readout_pop[1])
            output = readout_pop[0].name
        readout = self.opts.pop("readout", None)
        if self.native:
            want = self.file_meta.get("output")
            want = want.decode() if isinstance(want, bytes) else want
            if want in pops and "output" not in opts_given(self):
                output = want
            r = self.file_meta.get("readout")
            if readout is None and r is not None:
                readout = r.decode() if isinstance(r, bytes) else str(r)
        if self.opts:
            raise AsyncsimError(
                f"unknown load option(s) {', '.join(sorted(self.opts))}; known: "
                f"{', '.join(LOAD_OPTIONS)}"
            )
        meta = self._metadata(input_shape, output)
        if self.native and "asyncsim_network" in self.file_meta:
            import json

            raw = self.file_meta["asyncsim_network"]
            try:
                meta = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
            except ValueError:
                pass
        try:
            net = Network(
                input_shape,
                populations,
                projections,
                output=output,
                readout=readout,
                name=str(self.file_meta.get("name", "")) or "nir",
                metadata=meta,
            )
        except AsyncsimError as exc:
            raise AsyncsimError(f"the NIR graph does not form a valid network: {exc}") from None
        return net

    def _check_reachable(self, output: str | None) -> None:
        """The input must drive the output; other unreachable nodes are reported."""
        g = self.g
        succ: dict[str, list[str]] = {n: [] for n in g.nodes}
        for a, b in g.edges:
            succ[a].append(b)
        seen = {g.inputs[0]}
        todo = [g.inputs[0]]
        while todo:
            for m in succ[todo.pop()]:
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        if output is not None and output in g.nodes and output not in seen:
            raise AsyncsimError(
                f"the output population {output!r} is not reachable from the input "
                f"{g.inputs[0]!r}: edges are missing (edges: {len(g.edges)})"
            )
        lost = sorted(n for n in g.nodes if n not in seen and g.kinds[n] == "neuron")
        if lost:
            self.warnings.append(
                f"node(s) {', '.join(map(repr, lost))} are not reachable from the input; they "
                "can only be driven by biases"
            )

    def _apply_native(self, pops: dict[str, Population], gains: dict[str, np.ndarray]) -> None:
        """asyncsim-written NIR: exact engine parameters from the node metadata (the
        weights were written with unit input gain)."""
        import json

        for name, pop in list(pops.items()):
            meta = getattr(self.g.nodes[name], "metadata", None) or {}
            a = meta.get("asyncsim") if isinstance(meta, dict) else None
            if not isinstance(a, dict):
                continue
            gains[name] = np.ones(pop.size)
            kw: dict[str, Any] = {}
            for k in ("threshold", "beta", "v_reset", "bias", "v_init"):
                if k in a:
                    kw[k] = np.asarray(a[k], dtype=np.float64).reshape(pop.shape)
            for k in ("alpha", "syn_gain", "syn_bias"):
                if k in a:
                    kw[k] = np.asarray(a[k], dtype=np.float64).reshape(pop.shape)
            for k in ("reset", "threshold_op"):
                if k in a:
                    v = a[k]
                    kw[k] = v.decode() if isinstance(v, bytes) else str(v)
            for k in ("reset_delay", "refractory", "syn_immediate", "multi_spike"):
                if k in a:
                    kw[k] = bool(np.asarray(a[k]).ravel()[0])
            if "refractory_dropout" in a:
                kw["refractory_dropout"] = float(np.asarray(a["refractory_dropout"]).ravel()[0])
            if "shape" in a:
                shp = tuple(int(s) for s in np.asarray(a["shape"]).ravel())
                if _size(shp) == pop.size:
                    kw = {
                        k: (v.reshape(shp) if isinstance(v, np.ndarray) else v)
                        for k, v in kw.items()
                    }
                    kw["shape"] = shp
            pmeta = dict(pop.metadata, exact_parameters="asyncsim node metadata")
            if "asyncsim_metadata" in meta:
                raw = meta["asyncsim_metadata"]
                try:
                    pmeta = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
                except ValueError:
                    pass
            base = dict(name=pop.name, shape=kw.pop("shape", pop.shape), metadata=pmeta)
            pops[name] = Population(**base, **kw)

    def _projection(
        self,
        path: _Path,
        tgt: str,
        gain: np.ndarray,
        pops: dict[str, Population],
        used: set[str],
    ) -> Projection:
        g = self.g
        src = INPUT if g.kinds[path.source] == "input" else path.source
        core = [
            (n, m)
            for n, m in path.ops
            if g.types[n] not in ("Flatten", "Identity")
            and not (g.types[n] == "Delay" and m is None)
        ]
        base = core[-1][0] if core else f"{path.source}->{tgt}"
        pname = base
        if pname in used or pname in pops or pname == INPUT:
            pname = f"{base}->{tgt}"
        k = 2
        while pname in used or pname in pops:
            pname = f"{base}->{tgt}#{k}"
            k += 1
        used.add(pname)
        delay = path.delay
        tgt_pop = pops[tgt]
        n_tgt = tgt_pop.size
        n_src = _size(self.out_shape[path.source])
        if self.native and len(core) == 1:
            exact = (getattr(g.nodes[core[0][0]], "metadata", None) or {}).get("asyncsim")
            if isinstance(exact, dict) and "name" in exact:
                nm = exact["name"]
                nm = nm.decode() if isinstance(nm, bytes) else str(nm)
                if nm not in used and nm not in pops:
                    used.discard(pname)
                    pname = nm
                    used.add(pname)
            native = self._native_projection(core, pname, src, tgt, delay)
            if native is not None:
                return native
        ends = _Ends(pname, src, tgt, gain, delay)
        if not core:
            if n_src != n_tgt:  # pragma: no cover - caught by the shape check
                raise AsyncsimError(f"edge {path.source!r} -> {tgt!r}: sizes differ")
            return OneToOne(pname, src, tgt, weight=gain.copy(), delay=delay)
        if len(core) == 1 and core[0][1] is None:
            op = core[0][0]
            t = g.types[op]
            node = g.nodes[op]
            if t in ("Affine", "Linear"):
                w = _arr(op, node, "weight")
                return Dense(pname, src, tgt, weight=w * gain[:, None], delay=delay)
            if t == "Scale":
                s = np.broadcast_to(
                    _arr(op, node, "scale").reshape(-1)
                    if _arr(op, node, "scale").size > 1
                    else _arr(op, node, "scale").ravel()[0],
                    (n_tgt,),
                )
                return OneToOne(pname, src, tgt, weight=s * gain, delay=delay)
            conv = self._conv_projection(op, ends, pops)
            if conv is not None:
                return conv
        m = self._compose(path, tgt) * gain[:, None]
        pooled = self._pooled_conv(core, m, ends, pops)
        if pooled is not None:
            return pooled
        nz = np.count_nonzero(m)
        if nz > 0.25 * m.size:
            return Dense(pname, src, tgt, weight=m, delay=delay)
        ti, si = np.nonzero(m)
        return Sparse(
            pname, src, tgt, source_index=si, target_index=ti, weight=m[ti, si], delay=delay
        )

    def _conv_projection(self, op: str, e: _Ends, pops: dict[str, Population]) -> Projection | None:
        """A structured Conv2d projection when the gain is constant per output channel and
        the source/target layouts are the convolution's; else None (compose instead)."""
        g = self.g
        t = g.types[op]
        if t not in ("Conv2d", "Conv1d", "SumPool2d", "AvgPool2d"):
            return None
        shp_in, shp_out = self.in_shape[op], self.out_shape[op]
        c_out = shp_out[0]
        gch = self._channel_gain(e, shp_in, shp_out, pops)
        if gch is None:
            return None
        node = g.nodes[op]
        if t in ("SumPool2d", "AvgPool2d"):
            k, s, pd, val = _pool_params(op, node, t)
            w = np.full((c_out, 1, *k), val) * gch[:, None, None, None]
            return e.conv2d(w, stride=s, padding=pd, groups=c_out)
        nd = 2 if t == "Conv2d" else 1
        p = _conv_params(op, node, nd)
        w = p["weight"] * gch.reshape((-1,) + (1,) * (nd + 1))
        if nd == 1:
            w = w[:, :, None, :]
            stride: Any = (1, p["stride"][0])
            dilation: Any = (1, p["dilation"][0])
            pads = self._pads(op, node, p, shp_in[1:], p["weight"].shape[2:])
            if pads[0][0] != pads[0][1]:
                return None
            padding: Any = (0, pads[0][0])
        else:
            stride, dilation = p["stride"], p["dilation"]
            padding = p["padding"]
        return e.conv2d(w, stride=stride, padding=padding, dilation=dilation, groups=p["groups"])

    def _channel_gain(
        self,
        e: _Ends,
        shp_in: tuple[int, ...],
        shp_out: tuple[int, ...],
        pops: dict[str, Population],
    ) -> np.ndarray | None:
        """The gain per output channel of a convolution from ``e.src`` (NIR shape
        ``shp_in``) to ``e.tgt`` (``shp_out``), or None when a structured Conv2d cannot
        carry it: a gain that varies within a channel, or populations not shaped as the
        convolution's input and output."""
        c_out = shp_out[0]
        gc = e.gain.reshape(c_out, -1)
        actual_src = self.net_input_shape if e.src == INPUT else pops[e.src].dims
        if (
            not np.all(gc == gc[:, :1])
            or tuple(actual_src) != _asim_shape(shp_in)
            or tuple(pops[e.tgt].dims) != _asim_shape(shp_out)
        ):
            return None
        return gc[:, 0]

    def _pooled_conv(
        self,
        core: list[tuple[str, np.ndarray | None]],
        m: np.ndarray,
        e: _Ends,
        pops: dict[str, Population],
    ) -> Conv2d | None:
        """A sum or average pool whose windows tile its input (kernel = stride, no padding)
        followed by a 2-D convolution (dilation 1) is one convolution on the pool's input:
        each kernel tap becomes a block of the pool's size (times the pool's value), and
        stride and padding scale by the pool's stride. A structured Conv2d runs the chain
        several times faster than the sparse matrix it would otherwise compose into.

        Returned only when its weights, expanded to a matrix, equal the composed matrix
        ``m`` exactly (so a mistake here can only cost speed) and none is zero (a zero
        convolution weight is still a synapse: its target would count an update that the
        sparse projection does not); else None."""
        g = self.g
        if len(core) != 2 or any(mk is not None for _, mk in core):
            return None
        pool, conv = core[0][0], core[1][0]
        if g.types[pool] not in ("SumPool2d", "AvgPool2d") or g.types[conv] != "Conv2d":
            return None
        pnode, cnode = g.nodes[pool], g.nodes[conv]
        k, ps, ppd, val = _pool_params(pool, pnode, g.types[pool])
        shp_in = self.in_shape[pool]
        if (
            k != ps
            or any(ppd)
            or len(shp_in) != 3
            or shp_in[1] % k[0]
            or shp_in[2] % k[1]
            or tuple(self.out_shape[pool]) != tuple(self.in_shape[conv])
        ):
            return None
        p = _conv_params(conv, cnode, 2)
        pads = self._pads(conv, cnode, p, self.in_shape[conv][1:], p["weight"].shape[2:])
        if tuple(p["dilation"]) != (1, 1) or any(lo != hi for lo, hi in pads):
            return None
        gch = self._channel_gain(e, shp_in, self.out_shape[conv], pops)
        if gch is None:
            return None
        w = np.repeat(np.repeat(p["weight"], k[0], axis=2), k[1], axis=3) * val
        w = w * gch.reshape(-1, 1, 1, 1)
        stride = (k[0] * p["stride"][0], k[1] * p["stride"][1])
        pad = (k[0] * pads[0][0], k[0] * pads[0][0], k[1] * pads[1][0], k[1] * pads[1][0])
        if not np.all(w != 0):
            return None

        def apply(x: np.ndarray) -> np.ndarray:
            y = _linops.conv2d(x.reshape(-1, *shp_in), w, stride, pad, (1, 1), p["groups"])
            return y.reshape(x.shape[0], -1)

        if not np.array_equal(_explicit_matrix(apply, _size(shp_in), m.shape[0]), m):
            return None
        return e.conv2d(w, stride=stride, padding=(pad[0], pad[2]), groups=p["groups"])

    def _native_projection(
        self, core: list[tuple[str, np.ndarray | None]], pname: str, src: str, tgt: str, delay: int
    ) -> Projection | None:
        if len(core) != 1 or core[0][1] is not None:
            return None
        meta = getattr(self.g.nodes[core[0][0]], "metadata", None) or {}
        a = meta.get("asyncsim")
        if not isinstance(a, dict) or a.get("projection") not in ("Sparse", b"Sparse"):
            return None
        return Sparse(
            pname,
            src,
            tgt,
            source_index=np.asarray(a["source_index"], dtype=np.int64),
            target_index=np.asarray(a["target_index"], dtype=np.int64),
            weight=np.asarray(a["weight"], dtype=np.float64),
            delay=delay,
        )

    @property
    def net_input_shape(self) -> tuple[int, ...]:
        shp = self.out_shape[self.g.inputs[0]]
        if len(shp) >= 2 and shp[0] == 1:
            firsts = [b for a, b in self.g.edges if a == self.g.inputs[0]]
            if all(len(self.in_shape[b]) < len(shp) for b in firsts):
                shp = shp[1:]
        return _asim_shape(shp)

    def _output(
        self, pops: dict[str, Population]
    ) -> tuple[str | None, tuple[Population, list[Projection]] | None]:
        """The output population; an Output fed by operators gets a readout population."""
        g = self.g
        want = self.opts.pop("output", None)
        if want is not None:
            if want in pops:
                return want, None
            if want not in g.top_outputs:
                raise AsyncsimError(
                    f"output {want!r} is neither an Output node ({', '.join(g.top_outputs)}) nor "
                    f"a neuron node ({', '.join(list(pops)[:10])})"
                )
            out_node = want
        elif g.top_outputs:
            out_node = sorted(g.top_outputs)[0]
            if len(g.top_outputs) > 1:
                self.warnings.append(
                    f"several Output nodes ({', '.join(sorted(g.top_outputs))}); using "
                    f"{out_node!r} (pass output=... to choose)"
                )
        else:
            sinks = [n for n in pops if not any(a == n for a, _ in g.edges)]
            if len(sinks) == 1:
                return sinks[0], None
            raise AsyncsimError(
                "the graph has no Output node and several candidate output populations "
                f"({', '.join(sinks) or 'none'}); pass output=..."
            )
        # walk back through identity operators
        node = out_node
        while True:
            ps = self.preds[node]
            if len(ps) == 1 and g.kinds[ps[0]] == "neuron":
                return ps[0], None
            if len(ps) == 1 and g.types[ps[0]] in ("Identity", "Flatten"):
                node = ps[0]
                continue
            break
        if not ps:
            raise AsyncsimError(f"Output node {out_node!r} has no incoming edge")
        # an operator output (e.g. a final Affine): a non-spiking readout of its current
        shape = self.in_shape[out_node]
        name = out_node if out_node not in pops else out_node + "_readout"
        n = _size(shape)
        pop = Population(
            name,
            _asim_shape(shape),
            threshold=np.inf,
            beta=0.0,
            metadata={"nir_node": out_node, "nir_type": "Output", "readout_of": "operator output"},
        )
        self.warnings.append(
            f"Output {out_node!r} is fed by operators, not neurons: added a non-spiking "
            f"readout population {name!r} (beta 0, threshold inf) whose potential is the "
            "operator output at each timestep"
        )
        pops_tmp = dict(pops)
        pops_tmp[name] = pop
        self.in_shape[name] = shape
        self.out_shape[name] = shape
        self.preds[name] = list(self.preds[out_node])
        self.g.kinds[name] = "neuron"
        self.g.types[name] = "LI"
        self.g.nodes.setdefault(name, self.g.nodes[out_node])
        used: set[str] = {p for p in pops}
        projs = []
        const = np.zeros(n)
        memo: dict[str, np.ndarray] = {}
        for p in self.preds[name]:
            if g.kinds[p] == "op":
                const = const + self._const_out(p, memo)
        pop = _with_constant_input(pop, const)
        pops_tmp[name] = pop
        for path in self._paths_into(name):
            projs.append(self._projection(path, name, np.ones(n), pops_tmp, used))
        return None, (pop, projs)

    def _metadata(self, input_shape: tuple[int, ...], output: str | None) -> dict[str, Any]:
        prof = self.profile
        meta: dict[str, Any] = {
            "format": "nir",
            "profile": prof.name,
            "profile_source": self.profile_source,
            "trainer": prof.trainer,
            "verified_profile": prof.verified,
            "dt": self.dt,
            "dt_source": self.dt_source,
            "discretisation": prof.leak,
            "membrane_input_gain": prof.lif_gain,
            "if_input_gain": prof.if_gain,
            "synaptic_input_gain": prof.syn_gain,
            "threshold_op": prof.threshold_op,
            "reset": prof.reset,
            "reset_delay": prof.reset_delay,
            "v_reset_from_file": prof.use_v_reset,
            "multi_spike": prof.multi_spike,
            "v_init": prof.v_init,
            "overridden": list(prof.overridden),
            "profile_notes": prof.notes,
            "input_shape_nir": list(self.out_shape[self.g.inputs[0]]),
            "recurrent_edges": sorted(f"{a} -> {b}" for a, b in self.back),
            "warnings": list(self.warnings),
        }
        if self.native:
            meta["exact_parameters"] = "asyncsim node metadata"
        if self.file_meta:
            meta["file_metadata"] = {
                str(k): _plain(v) for k, v in self.file_meta.items() if k != "asyncsim_network"
            }
        return meta


def opts_given(imp: _Importer) -> set[str]:
    return imp.given


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 64 else f"array{v.shape}"
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _with_constant_input(pop: Population, current: np.ndarray) -> Population:
    """Add a constant input current (layer biases, already multiplied by the input gain).

    It enters like any arriving current: straight into ``v`` (``bias``) for a plain LIF,
    into the synaptic state (``syn_bias``; snnTorch Synaptic, Norse LIFCell, SpikingJelly
    CUBALIF all add the layer bias to the current) when the neuron has one.
    """
    cur = np.asarray(current, dtype=np.float64).reshape(pop.shape)  # type: ignore[arg-type]
    if pop.alpha is not None:
        if not hasattr(pop, "syn_bias"):  # pragma: no cover - engines before syn_bias
            raise AsyncsimError(
                f"population {pop.name!r}: a bias flows into a neuron with a synaptic current; "
                "this asyncsim engine has no syn_bias (upgrade asyncsim)"
            )
        return dataclasses.replace(pop, syn_bias=np.asarray(pop.syn_bias) + cur)
    return dataclasses.replace(pop, bias=np.asarray(pop.bias) + cur)


def _f32(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def _summary(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size and np.all(a == a[0]):
        return float(a[0])
    return {"min": float(a.min()), "max": float(a.max())}


def from_nir(graph: Any, *, dt: float | None = None, profile: Any = None, **opts: Any) -> Network:
    """Convert an in-memory ``nir.NIRGraph`` to a :class:`~asyncsim.Network`.

    Args:
        graph: the NIR graph (``nir.read(path)``).
        dt: seconds per timestep; default from the profile, the file, or inferred.
        profile: a name in :data:`~asyncsim.io.profiles.PROFILES` (default: the one recorded
            in the file's metadata, else ``"generic"``).
        **opts: profile overrides (``reset``, ``reset_delay``, ``threshold_op``,
            ``multi_spike``, ``v_init``, ``leak``, ``lif_gain``, ``if_gain``, ``syn_gain``,
            ``use_v_reset``, ``norm_input``), ``output`` (Output or neuron node name) and
            ``readout``.

    Every choice is recorded in ``Network.metadata``; inferred values are also announced
    with :func:`warnings.warn`. Raises :class:`AsyncsimError` for anything it cannot read
    faithfully.
    """
    try:
        imp = _Importer(graph, dt=dt, profile=profile, opts=opts)
        net = imp.build()
    except AsyncsimError:
        raise
    except RecursionError:
        raise AsyncsimError("the NIR graph is nested too deeply to read") from None
    except (
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        ZeroDivisionError,
    ) as exc:
        raise AsyncsimError(
            f"the NIR graph could not be converted ({type(exc).__name__}: {exc}); the file is "
            "probably malformed (if it loads in its trainer, please report this as an asyncsim "
            "bug)"
        ) from exc
    for w in imp.warnings:
        warnings.warn(w, stacklevel=3)
    return net


__all__ = ["ASYNCSIM_NIR_FORMAT", "LOAD_OPTIONS", "from_nir", "infer_dt"]
