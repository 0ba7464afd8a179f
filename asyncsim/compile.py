"""Compile a :class:`~asyncsim.network.Network` into flat arrays for the numba kernels.

Connectivity is stored as *segments*: for every source (input channel or neuron) a list
of ``(target, length, weight_offset)`` runs, each delivering
``v[target + k] += value * weights[weight_offset + k]`` for ``k < length`` (a *contiguous*
segment) or ``v[seg_idx[target + k]] += ...`` (an *indexed* segment, CSR-style).
A dense row is one contiguous segment covering the whole target population (a
SIMD-friendly add); a convolution is one contiguous segment per kernel row (or kernel
tap) covering contiguous output channels; the synapses of one source in a sparse or
one-to-one projection form one indexed segment (8 bytes per synapse).
Within a source, immediate contiguous segments come first, then immediate indexed ones,
then delayed ones; within each group, projection order: this is the summation order.

To make convolution segments contiguous, neurons of 3-D populations ``(C, H, W)`` are
stored *channels-last* internally: internal index ``(h * W + w) * C + c``. All public
results are mapped back to the logical (C-order, PyTorch) layout. Neurons are identified
by a *global logical id*: population offset (declaration order) + logical flat index;
ties between spikes generated in the same forward step are broken by this id.

Weights are stored as float32 (what trainers export); membrane state is float64.
Compilation is O(synapses) numpy work, done once per network.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .errors import AsyncsimError
from .network import INPUT, Conv2d, Dense, Network, OneToOne, Projection, Sparse

# population flag bits (kernels test these)
F_REFR = 1  # refractory after a spike for the rest of the timestep
F_SUB = 2  # reset by subtraction (else to v_reset)
F_RDELAY = 4  # reset applied at the start of the next timestep
F_SYN = 8  # has a synaptic current state
F_VDIRECT = 16  # arriving currents change v in the same timestep
F_DRIVEN = 32  # bias or synaptic carry: every neuron is updated at each timestep start
F_MULTI = 64  # emits floor(v / theta) spikes at once (Sinabs MultiSpike)


class NetArrays(NamedTuple):
    """Flat, kernel-facing description of a compiled network (fixed dtypes)."""

    n_in: int
    n_neurons: int
    max_delay: int
    out_pop: int
    theta: np.ndarray  # f8[N] threshold (used for subtraction)
    theta_cmp: np.ndarray  # f8[N] spike iff v > theta_cmp (theta, or just below for >=)
    beta: np.ndarray  # f8[N]
    alpha: np.ndarray  # f8[N]
    syn_gain: np.ndarray  # f8[N]
    v_reset: np.ndarray  # f8[N]
    bias: np.ndarray  # f8[N]
    syn_bias: np.ndarray  # f8[N] constant current into the synaptic state per timestep
    v_init: np.ndarray  # f8[N] potential at the start of a sample
    lid: np.ndarray  # i8[N] global logical id (tie-break order)
    pop_of: np.ndarray  # i8[N]
    pop_start: np.ndarray  # i8[P+1]
    pop_flags: np.ndarray  # i8[P]
    pop_dropout: np.ndarray  # f8[P] refractory dropout
    topo: np.ndarray  # i8[P] populations in topological order (layered mode)
    src_ptr: np.ndarray  # i8[S+1] segments of source s: src_ptr[s] .. src_ptr[s+1]
    src_idx: np.ndarray  # i8[S] first immediate indexed segment of source s
    src_split: np.ndarray  # i8[S] first delayed segment of source s
    seg_tgt: np.ndarray  # i8[G] first target (internal index), or offset into seg_idx
    seg_len: np.ndarray  # i8[G]
    seg_w: np.ndarray  # i8[G] offset into weights
    seg_pop: np.ndarray  # i8[G] target population
    seg_nnz: np.ndarray  # i8[G] nonzero weights in the segment (synaptic ops per delivery)
    seg_delay: np.ndarray  # i8[G] delay in timesteps (0 = immediate)
    seg_kind: np.ndarray  # i8[G] 0 contiguous, 1 indexed
    seg_idx: np.ndarray  # i4[I] target neurons of indexed segments
    weights: np.ndarray  # f4[W]
    max_src_segs: int  # most segments of any source (bounds the touched list per spike)
    src_dense_pop: np.ndarray  # i8[S] target population if the source is "dense" (one
    # whole-population segment, no delayed synapses, no synaptic state), else -1
    pop_theta: np.ndarray  # f8[P] theta_cmp shared by all neurons of p, or NaN if it varies
    src_run_pop: np.ndarray  # i8[S] the population all immediate contiguous segments of s
    # reach if they are partial runs into one population without synaptic state (e.g. the
    # kernel rows of a convolution), else -1
    src_run_nnz: np.ndarray  # i8[S] their nonzero weights in total
    src_sparse_pop: np.ndarray  # i8[S] target population if the source has exactly one
    # segment, immediate and indexed (a CSR row, targets ascending), into a population
    # without synaptic state, else -1


@dataclass
class CompiledNetwork:
    """A network compiled for the engine, plus the maps back to logical indices.

    Attributes:
        network: the source description.
        arrays: the kernel-facing :class:`NetArrays`.
        names: population names (declaration order).
        shapes: population shapes.
        starts: internal index of each population's first neuron (length P + 1).
        to_logical: internal neuron index -> logical flat index within its population.
        to_internal: global logical id (population offset + logical flat index) ->
            internal neuron index.
    """

    network: Network
    arrays: NetArrays
    names: list[str]
    shapes: list[tuple[int, ...]]
    starts: np.ndarray
    to_logical: np.ndarray
    to_internal: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.arrays.n_neurons)

    @property
    def n_inputs(self) -> int:
        return int(self.arrays.n_in)

    @property
    def n_synapses(self) -> int:
        """Nonzero synapses, a shared convolution weight counted once per use."""
        return int(self.arrays.seg_nnz.sum())

    def pop_index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise AsyncsimError(f"no population named {name!r}") from None

    def logical_order(self, p: int) -> np.ndarray:
        """Internal indices of population ``p``'s neurons in logical (C-order) order."""
        return self.to_internal[int(self.starts[p]) : int(self.starts[p + 1])]

    def fan_out(self) -> np.ndarray:
        """Nonzero synapses leaving each source (inputs first, then neurons, internal order)."""
        a = self.arrays
        per_seg = a.seg_nnz
        out = np.zeros(a.n_in + a.n_neurons, dtype=np.int64)
        src_of_seg = np.repeat(np.arange(a.n_in + a.n_neurons), np.diff(a.src_ptr))
        np.add.at(out, src_of_seg, per_seg)
        return out


def _layout(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(to_logical, to_internal) for one population: channels-last for 3-D shapes."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        ident = np.arange(n, dtype=np.int64)
        return ident, ident
    c, h, w = shape
    # internal (h, w, c) -> logical (c, h, w)
    to_logical = np.arange(n, dtype=np.int64).reshape(c, h, w).transpose(1, 2, 0).ravel()
    to_internal = np.empty(n, dtype=np.int64)
    to_internal[to_logical] = np.arange(n, dtype=np.int64)
    return to_logical, to_internal


class _Builder:
    """Accumulates segments and weights over all projections."""

    def __init__(self) -> None:
        self.src: list[np.ndarray] = []
        self.tgt: list[np.ndarray] = []
        self.length: list[np.ndarray] = []
        self.woff: list[np.ndarray] = []
        self.pop: list[np.ndarray] = []
        self.delay: list[np.ndarray] = []
        self.kind: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.idx: list[np.ndarray] = []
        self.nw = 0
        self.nidx = 0

    def add_weights(self, w: np.ndarray) -> int:
        off = self.nw
        w32 = np.ascontiguousarray(w, dtype=np.float32).ravel()
        self.weights.append(w32)
        self.nw += w32.size
        return off

    def add_index(self, targets: np.ndarray) -> int:
        """Append target neuron ids for indexed segments; returns their offset."""
        off = self.nidx
        self.idx.append(np.ascontiguousarray(targets, dtype=np.int32))
        self.nidx += targets.size
        return off

    def add(
        self,
        src: np.ndarray,
        tgt: np.ndarray,
        length: np.ndarray | np.integer,
        woff: np.ndarray,
        pop: int,
        delay: int,
        kind: int = 0,
    ) -> None:
        n = src.size
        self.src.append(src.astype(np.int64))
        self.tgt.append(tgt.astype(np.int64))
        self.length.append(np.broadcast_to(length, (n,)).astype(np.int64))
        self.woff.append(woff.astype(np.int64))
        self.pop.append(np.full(n, pop, dtype=np.int64))
        self.delay.append(np.full(n, delay, dtype=np.int64))
        self.kind.append(np.full(n, kind, dtype=np.int64))


def compile_network(net: Network) -> CompiledNetwork:
    """Compile ``net`` into flat arrays. O(synapses) time and memory."""
    if not isinstance(net, Network):
        raise AsyncsimError(f"expected a Network, got {type(net).__name__}")
    pops = net.populations
    names = [p.name for p in pops]
    shapes = [p.dims for p in pops]
    sizes = np.array([p.size for p in pops], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(starts[-1])
    n_in = net.n_inputs
    index = {name: i for i, name in enumerate(names)}

    to_logical = np.empty(n, dtype=np.int64)
    to_internal = np.empty(n, dtype=np.int64)
    per_pop_internal: list[np.ndarray] = []
    for i, shp in enumerate(shapes):
        tl, ti = _layout(shp)
        a = int(starts[i])
        to_logical[a : a + tl.size] = tl
        to_internal[a : a + ti.size] = a + ti
        per_pop_internal.append(ti)
    lid = starts[np.repeat(np.arange(len(pops)), sizes)] + to_logical  # global logical id

    def neuron_param(attr: str, default: float = 0.0) -> np.ndarray:
        out = np.empty(n, dtype=np.float64)
        for i, p in enumerate(pops):
            val = getattr(p, attr)
            arr = np.full(sizes[i], default) if val is None else np.asarray(val).ravel()
            # logical -> internal order
            out[starts[i] + per_pop_internal[i]] = arr
        return out

    theta = neuron_param("threshold")
    theta_cmp = theta.copy()
    flags = np.zeros(len(pops), dtype=np.int64)
    dropout = np.zeros(len(pops), dtype=np.float64)
    for i, p in enumerate(pops):
        a, b = int(starts[i]), int(starts[i + 1])
        if p.threshold_op == ">=":
            # v >= theta  <=>  v > nextafter(theta, -inf), exactly, in float64
            theta_cmp[a:b] = np.nextafter(theta[a:b], -np.inf)
        f = 0
        if p.refractory:
            f |= F_REFR
        if p.reset == "subtract":
            f |= F_SUB
        if p.reset_delay:
            f |= F_RDELAY
        if p.alpha is not None:
            f |= F_SYN
            if p.syn_immediate:
                f |= F_VDIRECT
            if np.any(np.asarray(p.syn_gain) != 0) or np.any(np.asarray(p.syn_bias) != 0):
                f |= F_DRIVEN
        else:
            f |= F_VDIRECT
        if np.any(np.asarray(p.bias) != 0):
            f |= F_DRIVEN
        if p.multi_spike:
            f |= F_MULTI
        flags[i] = f
        dropout[i] = p.refractory_dropout

    topo = np.array([index[name] for name in net.topological_order()], dtype=np.int64)

    builder = _Builder()
    for pr in net.projections:
        _build_projection(pr, net, builder, index, starts, per_pop_internal, n_in)

    if n >= 2**31:
        raise AsyncsimError(f"{n} neurons: asyncsim supports at most 2**31 - 1 per network")
    fields = (
        builder.src,
        builder.tgt,
        builder.length,
        builder.woff,
        builder.pop,
        builder.delay,
        builder.kind,
    )
    if builder.src:
        seg_src, seg_tgt, seg_len, seg_w, seg_pop, seg_delay, seg_kind = (
            np.concatenate(f) for f in fields
        )
        weights = np.concatenate(builder.weights)
    else:
        seg_src, seg_tgt, seg_len, seg_w, seg_pop, seg_delay, seg_kind = (
            np.zeros(0, np.int64) for _ in fields
        )
        weights = np.zeros(0, np.float32)
    seg_idx = np.concatenate(builder.idx) if builder.idx else np.zeros(0, np.int32)
    # drop empty segments, then order by (source, immediate before delayed, contiguous
    # before indexed); the sort is stable, so each group keeps projection order
    keep = seg_len > 0
    segs = [a[keep] for a in (seg_src, seg_tgt, seg_len, seg_w, seg_pop, seg_delay, seg_kind)]
    order = np.lexsort((segs[6], (segs[5] > 0).astype(np.int64), segs[0]))
    seg_src, seg_tgt, seg_len, seg_w, seg_pop, seg_delay, seg_kind = (a[order] for a in segs)
    n_src = n_in + n
    counts = np.bincount(seg_src, minlength=n_src)
    src_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    immediate = seg_delay == 0
    imm_counts = np.bincount(seg_src[immediate], minlength=n_src)
    imm_contig = np.bincount(seg_src[immediate & (seg_kind == 0)], minlength=n_src)
    src_split = (src_ptr[:-1] + imm_counts).astype(np.int64)
    src_idx = (src_ptr[:-1] + imm_contig).astype(np.int64)

    # nonzero weights per segment, via a prefix sum over the weight array
    nz = np.concatenate([[0], np.cumsum(weights != 0)]).astype(np.int64)
    seg_nnz = nz[seg_w + seg_len] - nz[seg_w]

    # populations whose potential takes arriving currents directly (no synaptic state):
    # the targets of the kernel's fused and run delivery paths
    direct = ((flags & F_SYN) == 0) & ((flags & F_VDIRECT) != 0)
    arrays = NetArrays(
        n_in=int(n_in),
        n_neurons=int(n),
        max_delay=int(seg_delay.max()) if seg_delay.size else 0,
        out_pop=int(index[net.output]),  # type: ignore[index]
        theta=theta,
        theta_cmp=theta_cmp,
        beta=neuron_param("beta", 1.0),
        alpha=neuron_param("alpha", 0.0),
        syn_gain=neuron_param("syn_gain", 0.0),
        v_reset=neuron_param("v_reset"),
        bias=neuron_param("bias"),
        syn_bias=neuron_param("syn_bias"),
        v_init=neuron_param("v_init"),
        lid=lid.astype(np.int64),
        pop_of=np.repeat(np.arange(len(pops), dtype=np.int64), sizes),
        pop_start=starts,
        pop_flags=flags,
        pop_dropout=dropout,
        topo=topo,
        src_ptr=src_ptr,
        src_idx=src_idx,
        src_split=src_split,
        seg_tgt=np.ascontiguousarray(seg_tgt),
        seg_len=np.ascontiguousarray(seg_len),
        seg_w=np.ascontiguousarray(seg_w),
        seg_pop=np.ascontiguousarray(seg_pop),
        seg_nnz=np.ascontiguousarray(seg_nnz),
        seg_delay=np.ascontiguousarray(seg_delay),
        seg_kind=np.ascontiguousarray(seg_kind),
        seg_idx=seg_idx,
        weights=np.ascontiguousarray(weights, dtype=np.float32),
        max_src_segs=int(counts.max()) if counts.size else 0,
        # fully connected rows (one whole-population segment) and sparse rows (one
        # indexed segment): the kernel's fused single-delivery paths
        src_dense_pop=_single_segment_sources(
            src_ptr,
            imm_counts,
            seg_pop,
            (seg_kind == 0) & (seg_len == sizes[seg_pop]) & direct[seg_pop],
        ),
        pop_theta=np.array(
            [
                theta_cmp[a] if b > a and np.all(theta_cmp[a:b] == theta_cmp[a]) else np.nan
                for a, b in itertools.pairwise(starts.tolist())
            ],
            dtype=np.float64,
        ),
        **_run_sources(seg_src, src_idx, seg_len, seg_pop, seg_nnz, sizes, direct),
        src_sparse_pop=_single_segment_sources(
            src_ptr, imm_counts, seg_pop, (seg_kind == 1) & direct[seg_pop]
        ),
    )
    return CompiledNetwork(
        network=net,
        arrays=arrays,
        names=names,
        shapes=shapes,
        starts=starts,
        to_logical=to_logical,
        to_internal=to_internal,
    )


def _single_segment_sources(
    src_ptr: np.ndarray, imm_counts: np.ndarray, seg_pop: np.ndarray, seg_ok: np.ndarray
) -> np.ndarray:
    """For each source, the target population of its segment if it has exactly one
    segment, immediate, for which ``seg_ok`` holds; else -1. ``src_dense_pop`` (a whole
    population without synaptic state) and ``src_sparse_pop`` (an indexed row into one)
    are built with it; such sources take the kernel's fused single-delivery paths."""
    out = np.full(src_ptr.size - 1, -1, dtype=np.int64)
    single = np.flatnonzero((np.diff(src_ptr) == 1) & (imm_counts == 1))
    g = src_ptr[single]
    ok = seg_ok[g]
    out[single[ok]] = seg_pop[g][ok]
    return out


def _run_sources(
    seg_src: np.ndarray,
    src_idx: np.ndarray,
    seg_len: np.ndarray,
    seg_pop: np.ndarray,
    seg_nnz: np.ndarray,
    sizes: np.ndarray,
    direct: np.ndarray,
) -> dict[str, np.ndarray]:
    """``src_run_pop`` and ``src_run_nnz`` (see NetArrays): sources whose contiguous
    immediate segments (``src_ptr[s] .. src_idx[s]``, segments sorted by source) are all
    partial runs into one population that takes currents directly, without synaptic
    state. The kernel delivers them in a loop with no per-segment tests (the rows of a
    convolution are the case)."""
    n_src = src_idx.size
    g = np.flatnonzero(np.arange(seg_src.size) < src_idx[seg_src])
    src_of = seg_src[g]
    p = seg_pop[g]
    ok = (seg_len[g] < sizes[p]) & direct[p]
    first = np.full(n_src, -1, dtype=np.int64)
    first[src_of[::-1]] = p[::-1]  # the population of each source's first such segment
    bad = np.zeros(n_src, dtype=bool)
    np.logical_or.at(bad, src_of, ~ok | (p != first[src_of]))
    run_pop = np.where((first >= 0) & ~bad, first, -1).astype(np.int64)
    nnz = np.bincount(src_of, weights=seg_nnz[g], minlength=n_src).astype(np.int64)
    return {"src_run_pop": run_pop, "src_run_nnz": np.where(run_pop >= 0, nnz, 0)}


def _source_ids(
    source: str,
    n_src: int,
    index: dict[str, int],
    starts: np.ndarray,
    per_pop_internal: list[np.ndarray],
    n_in: int,
) -> np.ndarray:
    """Unified source id for every logical source index (inputs first, then neurons)."""
    if source == INPUT:
        return np.arange(n_src, dtype=np.int64)
    p = index[source]
    return n_in + starts[p] + per_pop_internal[p]


def _build_projection(
    pr: Projection,
    net: Network,
    b: _Builder,
    index: dict[str, int],
    starts: np.ndarray,
    per_pop_internal: list[np.ndarray],
    n_in: int,
) -> None:
    tp = index[pr.target]
    t0 = int(starts[tp])
    t_int = per_pop_internal[tp]
    src_shape = net.source_shape(pr.source)
    n_src = int(np.prod(src_shape))
    sid = _source_ids(pr.source, n_src, index, starts, per_pop_internal, n_in)
    delay = int(getattr(pr, "delay", 0))
    n_tgt = int(t_int.size)

    if isinstance(pr, Dense):
        # rows: source (logical), columns: target (internal order)
        w = np.asarray(pr.weight)[np.argsort(t_int), :].T  # (n_src, n_tgt)
        off = b.add_weights(w)
        b.add(
            sid,
            np.full(n_src, t0),
            np.int64(n_tgt),
            off + np.arange(n_src, dtype=np.int64) * n_tgt,
            tp,
            delay,
        )
    elif isinstance(pr, (Sparse, OneToOne)):
        if isinstance(pr, OneToOne):
            s_idx = np.arange(n_src, dtype=np.int64)
            t_idx = s_idx
            w = np.broadcast_to(np.asarray(pr.weight, dtype=np.float64).ravel(), (n_src,))
        else:
            s_idx, t_idx, w = pr.source_index, pr.target_index, pr.weight
        order = np.lexsort((t_int[t_idx], s_idx))
        s_idx, t_idx, w = s_idx[order], t_idx[order], np.asarray(w)[order]
        off = b.add_weights(w)
        ioff = b.add_index(t0 + t_int[t_idx])
        # one indexed segment per source: its synapses, sorted by target
        first = (
            np.flatnonzero(np.r_[True, s_idx[1:] != s_idx[:-1]])
            if s_idx.size
            else (np.zeros(0, np.int64))
        )
        length = np.diff(np.r_[first, s_idx.size])
        b.add(sid[s_idx[first]], ioff + first, length, off + first, tp, delay, kind=1)
    elif isinstance(pr, Conv2d):
        _build_conv(pr, src_shape, sid, t0, b, tp, delay)
    else:  # pragma: no cover - guarded by Network validation
        raise AsyncsimError(f"{pr.what}: unsupported projection type {type(pr).__name__}")


def _build_conv(
    pr: Conv2d,
    src_shape: tuple[int, ...],
    sid: np.ndarray,
    t0: int,
    b: _Builder,
    tp: int,
    delay: int,
) -> None:
    """Segments of a convolution onto a channels-last target.

    Source (ci, iy, ix) reaches output (co, oy, ox) through tap (ky, kx) iff
    ``iy + top - ky*dh = oy*sh`` and ``ix + left - kx*dw = ox*sw``. For one source and one
    tap, the reachable outputs are the ``C_out / groups`` channels of its group at one
    (oy, ox): contiguous in channels-last order.

    With dilation 1 and one group, more is contiguous: for a source column ix only the taps
    ``kx = r + m*sw`` with residue ``r = (ix + left) mod sw`` are valid, and they reach the
    consecutive columns ``ox = q0 - m`` (``q0 = (ix + left - r) / sw``). Storing the kernel
    row grouped by residue and reversed within each group (so weights run in target
    order), all valid taps of one kernel row form one segment of ``n_taps * C_out``
    contiguous targets: a whole row for stride 1, about ``k / sw`` taps otherwise.
    """
    c_in, h, w = src_shape
    c_out, cig, kh, kw = pr.weight.shape
    _, ho, wo = pr.output_shape(src_shape)
    g = pr.groups
    cog = c_out // g
    top, _bottom, left, _right = pr.padding_lrtb((h, w))
    sh, sw = pr.stride
    dh, dw = pr.dilation
    merge = dw == 1 and g == 1
    # kernel-row tap order in storage: residue groups r = 0..sw-1 (merge) or all taps
    # reversed (per-tap segments); tap_pos[kx] = storage position of tap kx in its row
    if merge:
        order = [kx for r in range(sw) for kx in range(kw)[r::sw][::-1]]
    else:
        order = list(range(kw))[::-1]
    tap_pos = np.empty(kw, dtype=np.int64)
    tap_pos[order] = np.arange(kw)
    # weights, layout (ci, ky, position, co_in_group)
    wt = np.empty((c_in, kh, kw, cog))
    wsrc = np.asarray(pr.weight)
    for c in range(c_in):
        gi = c // cig
        wt[c] = wsrc[gi * cog : (gi + 1) * cog, c - gi * cig][:, :, order].transpose(1, 2, 0)
    off = b.add_weights(wt)

    ci, iy, ix = (
        a.ravel() for a in np.meshgrid(np.arange(c_in), np.arange(h), np.arange(w), indexing="ij")
    )
    co0 = (ci // cig) * cog  # first output channel of the source's group
    row0 = off + (ci * kh) * kw * cog  # weights of kernel row 0 of the source's channel
    for ky in range(kh):
        oy_num = iy + top - ky * dh
        vy = (oy_num >= 0) & (oy_num % sh == 0) & (oy_num // sh < ho)
        oy = oy_num // sh
        wrow = row0 + ky * kw * cog
        if merge:
            r = (ix + left) % sw
            q0 = (ix + left - r) // sw
            n_r = (kw - 1 - r) // sw + 1  # taps with residue r
            m_lo = np.maximum(q0 - wo + 1, 0)
            m_hi = np.minimum(n_r - 1, q0)
            ok = vy & (m_lo <= m_hi) & (r < kw)
            tgt = t0 + (oy * wo + (q0 - m_hi)) * c_out
            length = (m_hi - m_lo + 1) * c_out
            # tap m_hi (largest m, leftmost column) is stored first in its residue group
            woff = wrow + tap_pos[np.minimum(r + m_hi * sw, kw - 1)] * cog
            b.add(sid[ok], tgt[ok], length[ok], woff[ok], tp, delay)
        else:
            for kx in range(kw):
                ox_num = ix + left - kx * dw
                ok = vy & (ox_num >= 0) & (ox_num % sw == 0) & (ox_num // sw < wo)
                ox = ox_num // sw
                tgt = t0 + (oy * wo + ox) * c_out + co0
                woff = wrow + tap_pos[kx] * cog
                b.add(sid[ok], tgt[ok], np.int64(cog), woff[ok], tp, delay)
