"""numba kernels of the event engine. Private: no validation here, inputs are trusted.

Everything in this module takes flat arrays (grouped in NamedTuples with fixed dtypes) and
writes into output arrays; there are no Python objects, closures or jitclasses, so the
on-disk cache (``cache=True``) is reused by every process. The public entry point is
:func:`run_chunk`, which advances *one sample* by a chunk of timesteps and can be called
again with the same state to continue (streaming). It releases the GIL, so samples run in
parallel threads.

Cost model (N neurons, G segments, F group size): per timestep O(N) for the leak plus,
per delivered spike, O(segment lengths) for the adds and O(log Q) for the queue
(binary heap, Q pending) under momentum, O(1) under fifo (sliding array) and random.
Threshold evaluation visits only neurons that received current in the forward step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from .compile import (
    F_DRIVEN,
    F_MULTI,
    F_RDELAY,
    F_REFR,
    F_SUB,
    F_SYN,
    F_VDIRECT,
    NetArrays,
)

P_FIFO = 0
P_MOMENTUM = 1
P_RANDOM = 2
P_LAYERED = 3

STOP_DRAIN = 0
STOP_OUTPUT = 1
STOP_STEPS = 2

NEVER = -(2**62)

# Helpers that never allocate are compiled without numba's reference counting: they are
# called for every forward step (or delivered spike), and with NRT every call would
# incref/decref each array of the NamedTuples it receives (measured: ~0.4 us per call,
# more than the work itself). Only run_chunk and the rare grow functions allocate.
_hot = njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
# ... and the per-event ones are inlined (numba IR level) into the event loop, so their
# NamedTuple arguments (hundreds of scalars once flattened) are never passed at all.
_inline = njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]

# counters kept in SampleState.ctr
C_T = 0  # next global timestep index
C_STEPID = 1  # global forward-step stamp
C_SEQ = 2  # queue arrival counter
C_QN = 3  # pending entries
C_NEV = 4  # recorded events
C_SPK = 5  # cumulative network spikes
C_STEPS = 6  # cumulative forward steps
C_SYN = 7  # cumulative synaptic operations (network + input)
C_FIRST_OUT = 8  # 4 slots: timestep, spikes, steps, synops at the first output spike
C_FIRST_COR = 12  # 4 slots: same at the first spike of the correct class
C_STABLE = 16  # 4 slots: same at the start of the final correct streak
C_CORRECT = 20  # 1 if the running decision is correct
C_RTI = 21  # resume point: frame index within the chunk
C_PHASE = 22  # resume point: 0 = timestep start, 1 = between forward steps
C_RSTEP = 23  # resume point: forward steps done in this timestep
C_RFIRST = 24  # resume point: step of the first output spike of this timestep
C_RSPK = 25  # resume point: spikes of this timestep so far
C_RSYN = 26  # resume point: synaptic operations of this timestep so far
C_RPEAK = 27  # resume point: peak queue length of this timestep so far
C_NEED_Q = 28  # capacities requested by _advance at a safe point
C_NEED_T = 29
C_NEED_EV = 30
C_QHEAD = 31  # fifo: first pending entry
C_NEED_B = 32  # capacity of the delivery list requested at a safe point
# the running decision over the output counts, kept up to date per output spike (O(1);
# recounting every output neuron after every step with output spikes cost O(outputs))
C_DBEST = 33  # an output neuron with the highest count (the decision unless tied)
C_DTOP = 34  # that count (0: no output spike yet, no decision)
C_DTIE = 35  # 1 if another output neuron has the same count (no decision)
N_CTR = 36


class Params(NamedTuple):
    """Run options for the kernel (validated by :class:`asyncsim.Simulator`)."""

    policy: int
    group_size: int
    queued_input: bool
    stop_kind: int
    stop_value: int
    jitter: float
    queue_sinks: bool
    record_events: bool
    reactivity: bool
    input_dropout: float


class SampleState(NamedTuple):
    """Everything one sample carries from one timestep (or chunk) to the next."""

    v: np.ndarray  # f8[N] membrane potential
    syn: np.ndarray  # f8[N] synaptic current state
    hold_v: np.ndarray  # f8[N] potential of a refractory neuron (restored at timestep end)
    hold_syn: np.ndarray  # f8[N]
    refr_ts: np.ndarray  # i8[N] timestep in which the neuron is refractory
    spike_ts: np.ndarray  # i8[N] timestep of its latest spike
    mark: np.ndarray  # i8[N] forward-step stamp (evaluated in this step)
    tmark: np.ndarray  # u1[N] 1: received current through a partial run in this step
    # (cleared by the step's evaluation)
    recv: np.ndarray  # i8[N] currents received in this timestep (reactivity)
    pop_full: np.ndarray  # i8[P] forward-step stamp: whole population touched
    ring: np.ndarray  # f8[max_delay * N] currents due at future timesteps
    out_cum: np.ndarray  # i8[n_out] accumulated output spike counts
    rng: np.ndarray  # u8[1] splitmix64 state
    ctr: np.ndarray  # i8[N_CTR]


class Record(NamedTuple):
    """Per-timestep outputs of one chunk of one sample (row = timestep in the chunk)."""

    spikes: np.ndarray  # i8[T, P]
    synops: np.ndarray  # i8[T, P] network spike deliveries, by target population
    input_synops: np.ndarray  # i8[T, P] input deliveries, by target population
    updates: np.ndarray  # i8[T, P] neuron updates (integrations) by population
    steps: np.ndarray  # i8[T] forward steps
    peak_queue: np.ndarray  # i8[T]
    out_spikes: np.ndarray  # i8[T, n_out]
    out_v: np.ndarray  # f8[T, n_out] output potentials at the end of each timestep
    lat_first: np.ndarray  # i8[T, 3] (spikes, steps, synops) in the timestep to 1st output
    lat_correct: np.ndarray  # i8[T, 3] same to the first spike of the label neuron
    react: np.ndarray  # i8[P] sum over spikes of currents received before firing


def new_state(net: NetArrays, seed: int) -> SampleState:
    """A fresh sample state (allocated here, initialised by :func:`_reset_state`)."""
    n = net.n_neurons
    n_out = int(net.pop_start[net.out_pop + 1] - net.pop_start[net.out_pop])
    st = SampleState(
        v=np.empty(n),
        syn=np.empty(n),
        hold_v=np.empty(n),
        hold_syn=np.empty(n),
        refr_ts=np.empty(n, dtype=np.int64),
        spike_ts=np.empty(n, dtype=np.int64),
        mark=np.empty(n, dtype=np.int64),
        tmark=np.empty(n, dtype=np.uint8),
        recv=np.empty(n, dtype=np.int64),
        pop_full=np.empty(net.pop_start.size - 1, dtype=np.int64),
        ring=np.empty(net.max_delay * n),
        out_cum=np.empty(n_out, dtype=np.int64),
        rng=np.empty(1, dtype=np.uint64),
        ctr=np.empty(N_CTR, dtype=np.int64),
    )
    _reset_state(net, st, np.uint64(seed))
    return st


@njit(cache=True, nogil=True)
def _reset_state(net, st, seed):
    """Initial state of a sample: potentials v_init, everything else empty."""
    st.v[:] = net.v_init
    st.syn[:] = 0.0
    st.hold_v[:] = 0.0
    st.hold_syn[:] = 0.0
    st.refr_ts[:] = NEVER
    st.spike_ts[:] = NEVER
    st.mark[:] = -1
    st.tmark[:] = 0
    st.recv[:] = 0
    st.pop_full[:] = -1
    st.ring[:] = 0.0
    st.out_cum[:] = 0
    st.rng[0] = seed
    st.ctr[:] = 0
    st.ctr[C_FIRST_OUT:C_CORRECT] = -1


def new_record(net: NetArrays, t: int, samples: int | None = None) -> Record:
    """Zeroed (-1 for latencies) output arrays for ``t`` timesteps, with a leading samples
    axis when ``samples`` is given (the batch layout of :func:`run_batch`)."""
    p = net.pop_start.size - 1
    n_out = int(net.pop_start[net.out_pop + 1] - net.pop_start[net.out_pop])
    lead = () if samples is None else (samples,)
    return Record(
        spikes=np.zeros((*lead, t, p), np.int64),
        synops=np.zeros((*lead, t, p), np.int64),
        input_synops=np.zeros((*lead, t, p), np.int64),
        updates=np.zeros((*lead, t, p), np.int64),
        steps=np.zeros((*lead, t), np.int64),
        peak_queue=np.zeros((*lead, t), np.int64),
        out_spikes=np.zeros((*lead, t, n_out), np.int64),
        out_v=np.zeros((*lead, t, n_out)),
        lat_first=np.full((*lead, t, 3), -1, np.int64),
        lat_correct=np.full((*lead, t, 3), -1, np.int64),
        react=np.zeros((*lead, p), np.int64),
    )


# --------------------------------------------------------------------------- random
@_inline
def _next_u64(rng):
    """splitmix64 (Steele et al. 2014): one 64-bit draw, state in rng[0]."""
    rng[0] = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_inline
def _uniform(rng):
    """Uniform float in [0, 1) with 53 random bits."""
    return float(_next_u64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@_inline
def _randint(rng, n):
    """Uniform integer in [0, n) for n < 2**32: the high 32 bits of a draw, scaled by an
    integer multiply (Lemire 2019; bias below n / 2**32). Both this and ``int(u * n)``
    for the 53-bit float ``u`` of the same draw are floor(n * x / 2**64) up to truncation,
    so they pick the same index except with probability below n / 2**32; this one keeps
    the float conversion off the critical path of every random pick."""
    return int(((_next_u64(rng) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


# --------------------------------------------------------------------------- heap
@_inline
def _less(qk, qs, i, j):
    return qk[i] < qk[j] or (qk[i] == qk[j] and qs[i] < qs[j])


# Unsigned constants for unsigned index arithmetic (heap, queue, per-step delivery): an
# unsigned index carries no negative-index wraparound test (a shift, an and with the array
# length reloaded from the stack), which the profile of the momentum pop showed at every
# heap level. (A uint64 plus a plain int literal would be typed float64 by numba.)
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)


@_inline
def _sift_down(qk, qs, qsrc, qval, i, n):
    """Move entry i down to its place in a heap of size n (a hole moves instead of
    swapping, so each level costs one copy); O(log n)."""
    i = np.uint64(i)
    n = np.uint64(n)
    key = qk[i]
    sq = qs[i]
    src = qsrc[i]
    val = qval[i]
    while True:
        m = _U2 * i + _U1
        if m >= n:
            break
        r = m + _U1
        if r < n and _less(qk, qs, r, m):
            m = r
        if qk[m] < key or (qk[m] == key and qs[m] < sq):
            qk[i] = qk[m]
            qs[i] = qs[m]
            qsrc[i] = qsrc[m]
            qval[i] = qval[m]
            i = m
        else:
            break
    qk[i] = key
    qs[i] = sq
    qsrc[i] = src
    qval[i] = val


@_inline
def _heapify(qk, qs, qsrc, qval, n):
    """Make ``[0, n)`` a heap (Floyd: sift down every internal node, last first); O(n)."""
    for i in range(n // 2 - 1, -1, -1):
        _sift_down(qk, qs, qsrc, qval, i, n)


@_inline
def _heap_push(qk, qs, qsrc, qval, n, key, seq, src, val):
    """Insert into a heap of size n (capacity ensured by the caller); O(log n)."""
    i = np.uint64(n)
    while i > _U0:
        parent = (i - _U1) >> _U1
        if key < qk[parent] or (key == qk[parent] and seq < qs[parent]):
            qk[i] = qk[parent]
            qs[i] = qs[parent]
            qsrc[i] = qsrc[parent]
            qval[i] = qval[parent]
            i = parent
        else:
            break
    qk[i] = key
    qs[i] = seq
    qsrc[i] = src
    qval[i] = val


@_inline
def _heap_pop(qk, qs, qsrc, qval, n):
    """Remove the smallest (key, seq) entry of a heap of size n; O(log n).

    Bottom-up (Wegener): the hole left at the root descends to a leaf along the smaller
    children (one comparison per level, computed without a branch), then the last entry
    rises from there, which is rarely more than a level. Entries are distinct in (key,
    seq), so every valid heap pops the same sequence as the textbook sift-down."""
    src = qsrc[0]
    val = qval[0]
    last = np.uint64(n - 1)
    if last > _U0:
        i = _U0
        while True:
            m = _U2 * i + _U1
            if m >= last:
                break
            r = m + _U1
            if r < last:
                m += np.uint64((qk[r] < qk[m]) | ((qk[r] == qk[m]) & (qs[r] < qs[m])))
            qk[i] = qk[m]
            qs[i] = qs[m]
            qsrc[i] = qsrc[m]
            qval[i] = qval[m]
            i = m
        # the last entry rises from the hole at i: a push into the heap prefix [0, i)
        _heap_push(qk, qs, qsrc, qval, i, qk[last], qs[last], qsrc[last], qval[last])
    return src, val


class Queue(NamedTuple):
    """Pending entries. ``src`` is a unified source id (inputs first), ``val`` the
    delivered count. momentum: a binary heap on (key, seq) in ``[0, n)``; fifo: arrival
    order in ``[head, head + n)`` (a heap whose keys are all equal is a FIFO, so this is
    the same order at O(1) per operation); random: an unordered pool in ``[0, n)``."""

    key: np.ndarray  # f8
    seq: np.ndarray  # i8
    src: np.ndarray  # i8
    val: np.ndarray  # f8


class Scratch(NamedTuple):
    """Per-chunk work arrays. ``k`` holds the small counters (see K_*)."""

    newspk: np.ndarray  # i8[N] neurons that crossed threshold in this step
    ncount: np.ndarray  # i8[N] their spike counts (1 unless multi_spike)
    vspk: np.ndarray  # f8[N] their potential at the spike (momentum key)
    keys: np.ndarray  # i8[N] sort keys (global logical id)
    order: np.ndarray  # i8[N] positions of this step's spikes in key order
    refl: np.ndarray  # i8[N] refractory neurons of this timestep
    nref_pop: np.ndarray  # i8[P] refractory neurons per population in this timestep
    pop_recv: np.ndarray  # i8[P] whole-population deliveries in this timestep (reactivity)
    ts_start: np.ndarray  # i8[cap] touched runs of this step (partial populations)
    ts_len: np.ndarray
    ts_pop: np.ndarray
    ts_kind: np.ndarray  # 0: neurons ts_start..+len; 1 (unflagged), 2 (flagged in tmark):
    # neurons seg_idx[ts_start..+len]
    k: np.ndarray  # i8[3] counters
    bsrc: np.ndarray  # i8[cap >= n_in + N] sources to deliver in order (fused delivery)
    bval: np.ndarray  # f8[cap] their counts / values
    box: np.ndarray  # i8[P, 6] per population: step stamp, lowest and highest+1 neuron
    # reached by flagged partial runs (in ``tmark``: contiguous, or indexed in a step with
    # several sources) in that step, their total length; the stamp of the latest step in
    # which a run source (convolution) reached it: its runs are flagged but not listed, so
    # the box must be scanned; and of the latest step in which an unflagged indexed run
    # (one source in the step) reached it


K_TOUCH = 0  # touched runs in this step
K_NEW = 1  # spikes generated in this step
K_REFL = 2  # refractory neurons in this timestep


@njit(cache=True, nogil=True)
def new_queue():
    """An empty queue with room for 64 entries (it grows on demand)."""
    return Queue(np.empty(64), np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64))


@njit(cache=True, nogil=True)
def _grown(a, need):
    b = np.empty(max(need, 2 * a.shape[0] + 16), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _grow_queue(q, need):
    """A copy of the queue with room for ``need`` entries (capacity doubles)."""
    return Queue(_grown(q.key, need), _grown(q.seq, need), _grown(q.src, need), _grown(q.val, need))


@njit(cache=True, nogil=True)
def _grow_lists(sc, need_touch, need_list):
    """Scratch whose touched list and delivery list hold at least ``need_touch`` runs and
    ``need_list`` sources (each capacity doubles when it grows)."""
    ts_start, ts_len, ts_pop, ts_kind = sc.ts_start, sc.ts_len, sc.ts_pop, sc.ts_kind
    if need_touch > ts_start.shape[0]:
        ts_start = _grown(ts_start, need_touch)
        ts_len = _grown(ts_len, need_touch)
        ts_pop = _grown(ts_pop, need_touch)
        ts_kind = _grown(ts_kind, need_touch)
    bsrc, bval = sc.bsrc, sc.bval
    if need_list > bsrc.shape[0]:
        bsrc = _grown(bsrc, need_list)
        bval = _grown(bval, need_list)
    return Scratch(
        newspk=sc.newspk,
        ncount=sc.ncount,
        vspk=sc.vspk,
        keys=sc.keys,
        order=sc.order,
        refl=sc.refl,
        nref_pop=sc.nref_pop,
        pop_recv=sc.pop_recv,
        ts_start=ts_start,
        ts_len=ts_len,
        ts_pop=ts_pop,
        ts_kind=ts_kind,
        k=sc.k,
        bsrc=bsrc,
        bval=bval,
        box=sc.box,
    )


@njit(cache=True, nogil=True)
def _grow_ev(a, need):
    b = np.empty((max(need, 2 * a.shape[0] + 64), a.shape[1]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


# --------------------------------------------------------------------------- delivery
@_inline
def _touch(sc, start, length, p, kind):
    """Register a run of neurons that received current in this step (capacity reserved)."""
    i = sc.k[K_TOUCH]
    iu = np.uint64(i)
    sc.ts_start[iu] = start
    sc.ts_len[iu] = length
    sc.ts_pop[iu] = p
    sc.ts_kind[iu] = kind
    sc.k[K_TOUCH] = i + 1


@_inline
def _touch_run(st, sc, start, length, p, stepid):
    """Register contiguous neurons [start, start + length) of population p: in the touched
    list, flagged in ``tmark`` (one byte per neuron: cheap to write for long runs; the
    evaluation clears it), and inside p's bounding box for this step (so evaluation can
    scan the box instead of the list when the runs overlap densely)."""
    _touch(sc, start, length, p, 0)
    _flag(st, start, length)
    _box_add(sc, p, start, start + length, length, stepid)


@_inline
def _flag(st, start, length):
    """The ``tmark`` flags of neurons [start, start + length)."""
    tm = st.tmark
    lo = np.uint64(start)
    for k in range(np.uint64(length)):
        tm[lo + k] |= 1  # not a plain fill: LLVM would make it a memset call


@_inline
def _box_add(sc, p, lo, hi, length, stepid):
    """Grow population p's bounding box of this step to cover runs in [lo, hi) of total
    length ``length``."""
    bx = sc.box
    pu = np.uint64(p)
    if bx[pu, 0] != stepid:
        bx[pu, 0] = stepid
        bx[pu, 1] = lo
        bx[pu, 2] = hi
        bx[pu, 3] = length
    else:
        bx[pu, 1] = min(bx[pu, 1], lo)
        bx[pu, 2] = max(bx[pu, 2], hi)
        bx[pu, 3] += length


@_inline
def _received(st, tg, ln):
    """Reactivity: neurons [tg, tg + ln) received one current each."""
    recv = st.recv
    for k in range(ln):
        recv[tg + k] += 1


@_inline
def _deliver(net, st, sc, s, val, t, stepid, row, track, reactivity):
    """Deliver source ``s`` (unified id) with count/value ``val`` to all its targets.

    Immediate segments add ``val * w`` to v (and/or the synaptic state) at once; delayed
    segments add into the ring slot of timestep ``t + delay``. Touched targets are
    registered for threshold evaluation (``track`` > 0): a whole population with one
    stamp, partial runs in the touched list (capacity reserved by the caller), except the
    runs of a run source (convolution) when ``track == 2`` (several sources in the step):
    those are only flagged, and their population's bounding box is marked to be scanned
    (many sources in one step cover it densely; one source is cheaper to evaluate from the
    list). Indexed (sparse) runs are always listed, and flagged too when ``track == 2`` (so
    the box scan can take them when they cover it densely). Synaptic operations
    (nonzero synapses, times the count for network spikes) are added to ``row`` by target
    population and returned. O(total segment length).

    Performance notes (measured in benchmarks/, see docs/performance.md): the add loops
    index with unsigned integers (no negative-index wraparound test, so LLVM vectorises
    them), create no array views (views in branchy code cost refcount calls), and are not
    nested in more than one branch; ``val * w`` is exact for ``val == 1``.
    """
    w = net.weights
    v = st.v
    ops = 0
    mult = 1
    if s >= net.n_in:
        mult = int(val)  # a network event of count n is n spikes
    g_idx = net.src_idx[s]
    g0 = net.src_ptr[s]
    rp = net.src_run_pop[s]
    if rp >= 0:
        # partial runs into one population (convolution rows): no per-segment tests
        nnz = net.src_run_nnz[s] * mult
        row[rp] += nnz
        ops += nnz
        lo = net.n_neurons
        hi = 0
        tot = 0
        for g in range(np.uint64(g0), np.uint64(g_idx)):
            a = net.seg_tgt[g]
            b = net.seg_len[g]
            tg = np.uint64(a)
            ln = np.uint64(b)
            w0 = np.uint64(net.seg_w[g])
            for k in range(ln):
                v[tg + k] += val * w[w0 + k]
            if reactivity:
                _received(st, tg, ln)
            if track:
                if track == 1:
                    _touch(sc, a, b, rp, 0)
                _flag(st, a, b)
                lo = min(lo, a)  # signed: min of a uint64 and an int64 is a float
                hi = max(hi, a + b)
                tot += b
        if track:
            _box_add(sc, rp, lo, hi, tot, stepid)
            if track == 2:
                sc.box[rp, 4] = stepid  # flagged, not listed: the box will be scanned
        if net.src_ptr[s + 1] == g_idx:
            return ops  # runs only (every convolution source): no other segments
        g0 = g_idx  # nothing left for the general loop
    # contiguous segments: vectorised adds (unsigned g: no negative-index wraparound)
    for g in range(np.uint64(g0), np.uint64(g_idx)):
        tg = np.uint64(net.seg_tgt[g])
        ln = np.uint64(net.seg_len[g])
        w0 = np.uint64(net.seg_w[g])
        p = net.seg_pop[g]
        pu = np.uint64(p)
        fl = net.pop_flags[pu]
        nnz = net.seg_nnz[g] * mult
        row[pu] += nnz
        ops += nnz
        if fl & F_VDIRECT:
            for k in range(ln):
                v[tg + k] += val * w[w0 + k]
        if fl & F_SYN:
            syn = st.syn
            for k in range(ln):
                syn[tg + k] += val * w[w0 + k]
        whole = net.seg_len[g] == net.pop_start[pu + _U1] - net.pop_start[pu]
        if track and (fl & F_VDIRECT):
            if whole:
                st.pop_full[pu] = stepid
            else:
                _touch_run(st, sc, net.seg_tgt[g], net.seg_len[g], p, stepid)
        if reactivity:
            if whole:
                sc.pop_recv[pu] += 1  # every neuron of p received this current
            else:
                _received(st, tg, ln)
    g1 = net.src_split[s]
    idx = net.seg_idx
    for g in range(g_idx, g1):  # indexed (sparse) segments: scattered adds
        i0 = np.uint64(net.seg_tgt[g])
        ln = np.uint64(net.seg_len[g])
        w0 = np.uint64(net.seg_w[g])
        p = net.seg_pop[g]
        fl = net.pop_flags[p]
        nnz = net.seg_nnz[g] * mult
        row[p] += nnz
        ops += nnz
        if fl & F_VDIRECT:
            for k in range(ln):
                v[idx[i0 + k]] += val * w[w0 + k]
            if track:
                # listed as kind 1 (one source in this step) or 2 (several)
                _touch(sc, net.seg_tgt[g], net.seg_len[g], p, track)
                if track == 2:
                    # several sources: also flagged like contiguous runs, so targets that
                    # cover their bounding box densely are evaluated by scanning it (as
                    # for convolutions); a run's targets are ascending, so its first and
                    # last bound it
                    tm = st.tmark
                    for k in range(ln):
                        tm[idx[i0 + k]] = 1
                    _box_add(sc, p, idx[i0], idx[i0 + ln - _U1] + 1, net.seg_len[g], stepid)
                else:
                    # one source: not flagged, evaluated from the list; if its contiguous
                    # runs make p's box dense, the box scan stamps ``mark``
                    sc.box[p, 5] = stepid
        if fl & F_SYN:
            syn = st.syn
            for k in range(ln):
                syn[idx[i0 + k]] += val * w[w0 + k]
        if reactivity:
            recv = st.recv
            for k in range(ln):
                recv[idx[i0 + k]] += 1
    g2 = net.src_ptr[s + 1]
    if g1 < g2:
        n = net.n_neurons
        ring = st.ring
        for g in range(g1, g2):
            base = np.uint64(((t + net.seg_delay[g]) % net.max_delay) * n)
            tg = np.uint64(net.seg_tgt[g])
            w0 = np.uint64(net.seg_w[g])
            ln = np.uint64(net.seg_len[g])
            nnz = net.seg_nnz[g] * mult
            row[net.seg_pop[g]] += nnz
            ops += nnz
            if net.seg_kind[g] == 0:
                for k in range(ln):
                    ring[base + tg + k] += val * w[w0 + k]
            else:
                for k in range(ln):
                    ring[base + np.uint64(idx[tg + k])] += val * w[w0 + k]
    return ops


@_inline
def _deliver_list(net, st, sc, nb, t, stepid, in_row, net_row, track, reactivity):
    """Deliver sources ``sc.bsrc[:nb]`` (values ``sc.bval``) in order; returns synaptic ops.

    Runs of up to four consecutive *dense* sources (one whole-population segment, same
    target population, no synaptic state, no delayed synapses) are added in one pass:
    ``v = v + a*w1 + b*w2 + ...`` evaluates left to right, exactly like sequential
    deliveries, while reading and writing ``v`` once per run instead of once per source
    (runs of 8 were measured: no further gain).
    Every other source goes through :func:`_deliver` (``track``: register touched runs
    for evaluation; layered mode evaluates whole populations and does not need them; the
    runs of convolution sources are listed only when the list has one source).
    """
    ops = 0
    i = 0
    mode = 0
    if track:
        mode = 1 if nb == 1 else 2
    while i < nb:
        s0 = sc.bsrc[i]
        p = net.src_dense_pop[s0]
        run = 1
        if p >= 0:
            while run < 4 and i + run < nb and net.src_dense_pop[sc.bsrc[i + run]] == p:
                run += 1
        row = in_row if s0 < net.n_in else net_row
        if run == 1:
            ops += _deliver(net, st, sc, s0, sc.bval[i], t, stepid, row, mode, reactivity)
            i += 1
            continue
        ops += _deliver_dense_run(net, st, sc, i, run, p, stepid, row, reactivity)
        i += run
    return ops


@_inline
def _deliver_dense_run(net, st, sc, i, run, p, stepid, row, reactivity):
    """Fused delivery of ``run`` (2..4) dense sources sc.bsrc[i:i+run] into population p."""
    w = net.weights
    v = st.v
    tg = np.uint64(net.pop_start[p])
    ln = np.uint64(net.pop_start[p + 1] - net.pop_start[p])
    ops = 0
    for r in range(run):
        s = sc.bsrc[i + r]
        mult = int(sc.bval[i + r]) if s >= net.n_in else 1
        nnz = net.seg_nnz[net.src_ptr[s]] * mult
        row[p] += nnz
        ops += nnz
    a = sc.bval[i]
    b = sc.bval[i + 1]
    wa = np.uint64(net.seg_w[net.src_ptr[sc.bsrc[i]]])
    wb = np.uint64(net.seg_w[net.src_ptr[sc.bsrc[i + 1]]])
    if run == 2:
        for k in range(ln):
            v[tg + k] = v[tg + k] + a * w[wa + k] + b * w[wb + k]
    else:
        c = sc.bval[i + 2]
        wc = np.uint64(net.seg_w[net.src_ptr[sc.bsrc[i + 2]]])
        if run == 3:
            for k in range(ln):
                v[tg + k] = v[tg + k] + a * w[wa + k] + b * w[wb + k] + c * w[wc + k]
        else:
            d = sc.bval[i + 3]
            wd = np.uint64(net.seg_w[net.src_ptr[sc.bsrc[i + 3]]])
            if a == 1.0 and b == 1.0 and c == 1.0 and d == 1.0:
                # four single spikes (the common case): 1.0 * w is w, so the products
                # can go (4 of the loop's 13 instructions per 4 neurons)
                for k in range(ln):
                    v[tg + k] = v[tg + k] + w[wa + k] + w[wb + k] + w[wc + k] + w[wd + k]
            else:
                for k in range(ln):
                    v[tg + k] = (
                        v[tg + k] + a * w[wa + k] + b * w[wb + k] + c * w[wc + k] + d * w[wd + k]
                    )
    st.pop_full[p] = stepid
    if reactivity:
        sc.pop_recv[p] += run
    return ops


@_inline
def _deliver_one_and_fire(net, st, sc, s, val, p, t, row, upd_row, reactivity):
    """The only delivery of a forward step, from a dense source into population p: add,
    and evaluate in the same pass. Each block of 64 neurons is added while counting its
    threshold crossings; a block with a crossing builds their bit mask, fired in ascending
    neuron order (as a scan would). A population of at most 16 neurons (a readout) is
    added in one scalar pass that builds the mask directly. Equivalent to _deliver +
    _evaluate when nothing else was delivered in the step. Returns synaptic operations.
    (Unsigned indices: no negative-index wraparound tests on the per-step path.)"""
    g = np.uint64(net.src_ptr[np.uint64(s)])
    pu = np.uint64(p)
    w = net.weights
    v = st.v
    th = net.theta_cmp
    a = net.pop_start[pu]
    ln = net.pop_start[pu + _U1] - a
    w0 = net.seg_w[g]
    mult = int(val) if s >= net.n_in else 1
    nnz = net.seg_nnz[g] * mult
    row[pu] += nnz
    upd_row[pu] += ln - sc.nref_pop[pu]  # refractory neurons (v = -inf) ignore the current
    if reactivity:
        sc.pop_recv[pu] += 1
    # a single spike (1.0 * w is w) into a population with one threshold: no products,
    # no per-neuron threshold loads
    tu = net.pop_theta[pu]
    fast = val == 1.0 and tu == tu
    if fast and ln <= 16:
        # a small population (a readout): one scalar pass, no vector loop or reduction
        lo = np.uint64(a)
        wlo = np.uint64(w0)
        mask = np.uint64(0)
        for k in range(np.uint64(ln)):
            x = v[lo + k] + w[wlo + k]
            v[lo + k] = x
            mask |= np.uint64(x > tu) << k
        _fire_mask(net, st, sc, a, mask, t, True)
        return nnz
    for b0 in range(0, ln, 64):
        lo = np.uint64(a + b0)
        wlo = np.uint64(w0 + b0)
        m = np.uint64(min(64, ln - b0))
        mask = np.uint64(0)
        if fast:
            # count the crossings (one vector subtract per 4 neurons), not OR them:
            # an OR of booleans is packed to bytes lane by lane (3 instructions)
            nhit = 0
            for k in range(m):
                x = v[lo + k] + w[wlo + k]
                v[lo + k] = x
                nhit += x > tu
            if nhit:
                for k in range(m):
                    mask |= np.uint64(v[lo + k] > tu) << k
        else:
            for k in range(m):
                x = v[lo + k] + val * w[wlo + k]
                v[lo + k] = x
                mask |= np.uint64(x > th[lo + k]) << k
        _fire_mask(net, st, sc, a + b0, mask, t, True)
    return nnz


@_inline
def _deliver_sparse_and_fire(net, st, sc, s, val, p, t, row, upd_row, reactivity):
    """The only delivery of a forward step, from a source whose one segment is a sparse
    row (``src_sparse_pop``) into population p: each target is added to and, after its
    last add (repeated targets are adjacent: a row's targets are ascending), tested and
    fired at once, in ascending order. Equivalent to _deliver + _evaluate's list pass for
    such a step, without the touched list and the ``mark`` stamps. Returns synaptic ops."""
    g = np.uint64(net.src_ptr[np.uint64(s)])
    pu = np.uint64(p)
    w = net.weights
    v = st.v
    th = net.theta_cmp
    idx = net.seg_idx
    recv = st.recv
    i0 = np.uint64(net.seg_tgt[g])
    ln = np.uint64(net.seg_len[g])
    w0 = np.uint64(net.seg_w[g])
    mult = int(val) if s >= net.n_in else 1
    nnz = net.seg_nnz[g] * mult
    row[pu] += nnz
    upd = 0
    last = ln - _U1
    for k in range(ln):
        j = np.uint64(idx[i0 + k])
        x = v[j] + val * w[w0 + k]
        v[j] = x
        if reactivity:
            recv[j] += 1
        if k < last and np.uint64(idx[i0 + k + _U1]) == j:
            continue  # j is added to again: evaluated after its last add
        # refractory neurons hold v = -inf (and count no update)
        if x > -np.inf:
            upd += 1
            if x > th[j]:
                _fire(net, st, sc, int(j), t, True)
    upd_row[pu] += upd
    return nnz


@_inline
def _fire_mask(net, st, sc, base, mask, t, asynchronous):
    """Fire neurons ``base + k`` for every set bit k of ``mask``, in ascending order.

    The masks are built by vectorised passes (one bit per neuron of a block of 64:
    ``mask |= (v > theta) << k``), so the rare crossings are found without re-reading
    the block; firing a neuron changes only its own state, so the other bits stay
    valid."""
    while mask:
        k = trailing_zeros(mask)
        mask &= mask - np.uint64(1)
        _fire(net, st, sc, base + int(k), t, asynchronous)


# --------------------------------------------------------------------------- spikes
@_inline
def _fire(net, st, sc, j, t, asynchronous):
    """Neuron j crossed threshold: count, reset, refractoriness, bookkeeping.

    Refractoriness only matters asynchronously: in layered mode a population receives no
    current after its single evaluation in a timestep, so nothing needs to be held."""
    # unsigned indices: no negative-index wraparound tests (j, p and the counters are
    # never negative)
    ju = np.uint64(j)
    v = st.v
    vs = v[ju]
    p = np.uint64(net.pop_of[ju])
    fl = net.pop_flags[p]
    cnt = 1
    if fl & F_MULTI:
        cnt = max(1, int(np.floor(vs / net.theta[ju])))
    if not (fl & F_RDELAY):
        if fl & F_SUB:
            v[ju] = vs - cnt * net.theta[ju]
        else:
            v[ju] = net.v_reset[ju]
    st.spike_ts[ju] = t
    refr = asynchronous and (fl & F_REFR) != 0
    if refr and net.pop_dropout[p] > 0.0:
        if _uniform(st.rng) < net.pop_dropout[p]:
            refr = False
    if refr:
        # hold the post-spike state; -inf absorbs every current until the timestep end
        st.refr_ts[ju] = t
        st.hold_v[ju] = v[ju]
        st.hold_syn[ju] = st.syn[ju]
        v[ju] = -np.inf
        r = sc.k[K_REFL]
        sc.refl[np.uint64(r)] = j
        sc.k[K_REFL] = r + 1
        sc.nref_pop[p] += 1
    i = sc.k[K_NEW]
    iu = np.uint64(i)
    sc.newspk[iu] = j
    sc.ncount[iu] = cnt
    sc.vspk[iu] = vs
    sc.k[K_NEW] = i + 1


@_inline
def _evaluate(net, st, sc, t, stepid, upd_row):
    """Threshold test of every neuron touched in forward step ``stepid``, each once.

    Whole populations (stamped in ``pop_full``) are scanned, and so is the bounding box of
    a population's partial runs when they cover it densely (flags in ``tmark``); other
    partial runs are evaluated from the list, deduplicated with the per-neuron ``mark``
    stamp. Refractory neurons are skipped (their potential
    absorbed currents but is restored at the timestep end). O(touched neurons).
    """
    v = st.v
    th = net.theta_cmp
    for p in range(net.pop_start.shape[0] - 1):
        if st.pop_full[p] == stepid:
            upd_row[p] += (net.pop_start[p + 1] - net.pop_start[p]) - sc.nref_pop[p]
            _scan(net, st, sc, p, t, True)
            if sc.box[p, 0] == stepid:
                _clear_tmark(st, sc.box[p, 1], sc.box[p, 2])
        elif sc.box[p, 0] == stepid and (
            sc.box[p, 4] == stepid or sc.box[p, 2] - sc.box[p, 1] <= 4 * sc.box[p, 3]
        ):
            # partial runs cover their bounding box densely, or come from a run source
            # (not listed): scan the box
            _scan_box(net, st, sc, p, sc.box[p, 1], sc.box[p, 2], t, stepid, upd_row)
            sc.box[p, 3] = -1  # done: the list pass skips p's runs
    mark = st.mark
    tm = st.tmark
    idx = net.seg_idx
    for i in range(sc.k[K_TOUCH]):
        p = sc.ts_pop[i]
        if st.pop_full[p] == stepid:
            continue
        kind = sc.ts_kind[i]
        if kind != 1 and sc.box[p, 0] == stepid and sc.box[p, 3] < 0:
            continue  # flagged targets, and p's box was scanned
        indexed = kind != 0
        a = sc.ts_start[i]
        for r in range(a, a + sc.ts_len[i]):
            j = idx[r] if indexed else r
            if kind == 2:
                tm[j] = 0
            if mark[j] != stepid:
                mark[j] = stepid
                # refractory neurons hold v = -inf (and count no update)
                if v[j] > -np.inf:
                    upd_row[p] += 1
                    if v[j] > th[j]:
                        _fire(net, st, sc, j, t, True)
        if not indexed:
            _clear_tmark(st, a, a + sc.ts_len[i])


@_inline
def _clear_tmark(st, lo, hi):
    """Clear the contiguous-run flags of neurons [lo, hi) after their evaluation."""
    tm = st.tmark
    for k in range(np.uint64(lo), np.uint64(hi)):
        tm[k] = 0


@_inline
def _scan_box(net, st, sc, p, lo, hi, t, stepid, upd_row):
    """Evaluate the neurons of [lo, hi) flagged in ``tmark`` in this step, in blocks of 64:
    a vectorised pass counts the touched non-refractory neurons (updates) and ORs their
    threshold tests; only a block with a crossing (rare) builds the bit mask of crossings,
    fired in ascending order. The flags are cleared at the end, and the list pass skips p's
    flagged entries. Unflagged indexed runs (kind 1) reached p in this step too when
    ``box[p, 5]`` is this step: the scanned neurons are then stamped in ``mark``, so the list
    pass does not evaluate them again."""
    v = st.v
    th = net.theta_cmp
    tm = st.tmark
    mark = st.mark
    tu = net.pop_theta[p]
    # one threshold and no refractory neuron (v = -inf) in p: the plainest pass
    plain = tu == tu and sc.nref_pop[p] == 0
    stamp = sc.box[p, 5] == stepid
    for base in range(lo, hi, 64):
        b0 = np.uint64(base)
        m = np.uint64(min(64, hi - base))
        upd = 0
        hit = False
        if stamp:
            for k in range(m):
                mark[b0 + k] = stepid if tm[b0 + k] != 0 else mark[b0 + k]
        if plain:
            for k in range(m):
                touched = tm[b0 + k]
                upd += touched
                hit |= (touched != 0) & (v[b0 + k] > tu)
        else:
            for k in range(m):
                touched = tm[b0 + k] != 0
                x = v[b0 + k]
                upd += touched & (x > -np.inf)
                hit |= touched & (x > th[b0 + k])
        upd_row[p] += upd
        if hit:
            mask = np.uint64(0)
            for k in range(m):
                mask |= np.uint64((tm[b0 + k] != 0) & (v[b0 + k] > th[b0 + k])) << k
            _fire_mask(net, st, sc, base, mask, t, True)
    _clear_tmark(st, lo, hi)


@_inline
def _scan(net, st, sc, p, t, asynchronous):
    """Fire every neuron of population p above threshold, in ascending order: a vectorised
    pass per block of 64 builds a bit mask of the (rare) crossings. Refractory neurons hold
    v = -inf, so they never count."""
    v = st.v
    th = net.theta_cmp
    a = net.pop_start[p]
    b = net.pop_start[p + 1]
    tu = net.pop_theta[p]
    for base in range(a, b, 64):
        b0 = np.uint64(base)
        m = np.uint64(min(64, b - base))
        mask = np.uint64(0)
        if tu == tu:  # one threshold for the population
            for k in range(m):
                mask |= np.uint64(v[b0 + k] > tu) << k
        else:
            for k in range(m):
                mask |= np.uint64(v[b0 + k] > th[b0 + k]) << k
        _fire_mask(net, st, sc, base, mask, t, asynchronous)


@_inline
def _timestep_start(net, st, t, stepid):
    """Leak, synaptic decay, delayed reset and bias for every neuron (O(N)); populations
    with a bias or synaptic carry are stamped as touched (they are all updated)."""
    v = st.v
    syn = st.syn
    for p in range(net.pop_start.shape[0] - 1):
        fl = net.pop_flags[p]
        rd = (fl & F_RDELAY) != 0
        sub = (fl & F_SUB) != 0
        hs = (fl & F_SYN) != 0
        if not rd and not hs:
            # plain LIF: v = beta * v + bias, vectorised (same operations and order)
            lo = np.uint64(net.pop_start[p])
            beta = net.beta
            bias = net.bias
            for k in range(np.uint64(net.pop_start[p + 1] - net.pop_start[p])):
                v[lo + k] = beta[lo + k] * v[lo + k] + bias[lo + k]
        else:
            for j in range(net.pop_start[p], net.pop_start[p + 1]):
                vj = v[j]
                fired = rd and st.spike_ts[j] == t - 1
                if fired and not sub:
                    vj = net.v_reset[j]
                vj = net.beta[j] * vj
                if hs:
                    vj += net.syn_gain[j] * syn[j]
                    syn[j] = net.alpha[j] * syn[j]
                if fired and sub:
                    vj -= net.theta[j]
                vj = vj + net.bias[j]
                if hs:
                    # syn_bias arrives like a current: into syn, and into v if immediate
                    sb = net.syn_bias[j]
                    syn[j] += sb
                    if fl & F_VDIRECT:
                        vj += sb
                v[j] = vj
        if fl & F_DRIVEN:
            st.pop_full[p] = stepid


@_inline
def _inject_delayed(net, st, sc, t, stepid):
    """Integrate the currents that delayed projections scheduled for timestep t."""
    n = net.n_neurons
    base = (t % net.max_delay) * n
    ring = st.ring
    for j in range(n):
        c = ring[base + j]
        if c != 0.0:
            ring[base + j] = 0.0
            fl = net.pop_flags[net.pop_of[j]]
            if fl & F_SYN:
                st.syn[j] += c
            if fl & F_VDIRECT:
                st.v[j] += c
                _touch_run(st, sc, j, 1, net.pop_of[j], stepid)


@_inline
def _sort_by_key(keys, order, n):
    """order[:n] = positions of keys[:n] in increasing key order (keys are distinct).
    O(n) when already sorted (spikes found by a scan of a 1-D population), else insertion
    sort below 32 and heap sort above; in place, no allocation."""
    for i in range(n):
        order[i] = i
    ascending = True
    for i in range(1, n):
        if keys[i] < keys[i - 1]:
            ascending = False
            break
    if ascending:
        return  # the usual case: a scan finds spikes in id order
    if n < 32:
        for i in range(1, n):
            o = order[i]
            k = keys[o]
            j = i - 1
            while j >= 0 and keys[order[j]] > k:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = o
        return
    # heap sort on order[:n] by keys
    for start in range(n // 2 - 1, -1, -1):
        _sift_keys(keys, order, start, n)
    for end in range(n - 1, 0, -1):
        order[0], order[end] = order[end], order[0]
        _sift_keys(keys, order, 0, end)


@_inline
def _sift_keys(keys, order, i, n):
    while True:
        c = 2 * i + 1
        if c >= n:
            return
        if c + 1 < n and keys[order[c + 1]] > keys[order[c]]:
            c += 1
        if keys[order[c]] > keys[order[i]]:
            order[i], order[c] = order[c], order[i]
            i = c
        else:
            return


@_inline
def _push(q, head, qn, policy, key, seq, src, val):
    """Append an entry (capacity ``head + qn + 1`` ensured by the caller)."""
    if policy == P_MOMENTUM:
        _heap_push(q.key, q.seq, q.src, q.val, qn, key, seq, src, val)
    else:
        tail = np.uint64(head + qn)
        q.src[tail] = src
        q.val[tail] = val


@_inline
def _pop(q, head, qn, policy, rng):
    """Remove the next entry: oldest (fifo), heap minimum (momentum) or a uniform pick
    (random). Returns (source, value, new head)."""
    if policy == P_FIFO:
        h = np.uint64(head)
        return q.src[h], q.val[h], head + 1
    if policy == P_RANDOM:
        i = np.uint64(_randint(rng, qn))
        last = np.uint64(qn - 1)
        s = q.src[i]
        val = q.val[i]
        q.src[i] = q.src[last]
        q.val[i] = q.val[last]
        return s, val, head
    s, val = _heap_pop(q.key, q.seq, q.src, q.val, qn)
    return s, val, head


@_inline
def _compact(q, head, qn):
    """Move the fifo's pending entries to the front of the arrays (amortised O(1))."""
    for i in range(qn):
        q.src[i] = q.src[head + i]
        q.val[i] = q.val[head + i]


@_inline
def _emit(net, prm, st, sc, q, ev, rec, ti, step, label, head, synops_ts, state):
    """Account for and queue the spikes of forward step ``step`` (``sc.k[K_NEW] > 0``) in
    order of global logical id: counts, event log, output spikes and latencies, and (not
    layered) one queue entry per spike of a neuron with targets. Returns the updated
    ``state = (qn, seq, nev, spikes_ts, first_out_step, peak)``."""
    qn, seq, nev, spikes_ts, first_out_step, peak = state
    t = st.ctr[C_T]
    layered = prm.policy == P_LAYERED
    nnew = sc.k[K_NEW]
    n_in = net.n_in
    out_pop = net.out_pop
    out_a = net.pop_start[out_pop]
    policy = prm.policy
    record = prm.record_events
    ctr = st.ctr
    if nnew == 1:
        sc.order[0] = 0
    else:
        for i in range(nnew):
            sc.keys[i] = net.lid[sc.newspk[i]]
        _sort_by_key(sc.keys, sc.order, nnew)
    n_out_step = 0
    correct_step = False
    for oi in range(nnew):
        i = sc.order[oi]
        j = sc.newspk[i]
        cnt = sc.ncount[i]
        p = net.pop_of[j]
        rec.spikes[ti, p] += cnt
        spikes_ts += cnt
        if prm.reactivity:
            rec.react[p] += (st.recv[j] + sc.pop_recv[p]) * cnt
        if record:
            ev[nev, 0] = t
            ev[nev, 1] = step
            ev[nev, 2] = j
            ev[nev, 3] = cnt
            nev += 1
        if p == out_pop:
            k = j - out_a
            rec.out_spikes[ti, k] += cnt
            c = st.out_cum[k] + cnt
            st.out_cum[k] = c
            # counts only grow: k takes the lead, or ties it (k was below the leader)
            if c > ctr[C_DTOP]:
                ctr[C_DTOP] = c
                ctr[C_DBEST] = k
                ctr[C_DTIE] = 0
            elif c == ctr[C_DTOP]:
                ctr[C_DTIE] = 1
            n_out_step += cnt
            if k == label:
                correct_step = True
        if not layered:
            s = n_in + j
            if prm.queue_sinks or net.src_ptr[s + 1] > net.src_ptr[s]:
                key = 0.0
                if policy == P_MOMENTUM:
                    key = -sc.vspk[i]
                    if prm.jitter > 0.0:
                        key -= prm.jitter * _uniform(st.rng)
                _push(q, head, qn, policy, key, seq, s, float(cnt))
                seq += 1
                qn += 1
    peak = max(peak, qn)
    if layered:
        peak = max(peak, nnew)
    if n_out_step > 0:
        if first_out_step < 0:
            first_out_step = step
            rec.lat_first[ti, 0] = spikes_ts
            rec.lat_first[ti, 1] = step
            rec.lat_first[ti, 2] = synops_ts
        if correct_step and rec.lat_correct[ti, 0] < 0:
            rec.lat_correct[ti, 0] = spikes_ts
            rec.lat_correct[ti, 1] = step
            rec.lat_correct[ti, 2] = synops_ts
        _sample_points(
            ctr,
            label,
            t,
            ctr[C_SPK] + spikes_ts,
            ctr[C_STEPS] + step,
            ctr[C_SYN] + synops_ts,
            correct_step,
        )
    return qn, seq, nev, spikes_ts, first_out_step, peak


# --------------------------------------------------------------------------- main loop
DONE = 0
NEED_ROOM = 1


@njit(cache=True, nogil=True)
def run_chunk(net, prm, frames, label, st, q, ev, rec):
    """Advance one sample by ``frames.shape[0]`` timesteps.

    ``frames``: f8[T, n_in] input values (counts or currents) per timestep.
    ``label``: class index for latency-to-correct bookkeeping, or -1.
    ``st``, ``q``, ``ev``: state carried between chunks; the queue and the event log
    (rows: timestep, step, neuron, count) grow when needed, so they are returned.
    ``rec``: per-timestep outputs for this chunk (zeroed / -1 initialised by the caller).
    Returns ``(q, ev)``.

    This wrapper owns every allocation; the simulation itself runs in :func:`_advance`,
    compiled without reference counting and with its helpers inlined. ``_advance`` stops
    at a safe point (timestep start, or between forward steps) whenever the next step
    could outgrow a buffer; the wrapper grows it and ``_advance`` resumes where it stopped.
    """
    n = net.n_neurons
    npop = net.pop_start.shape[0] - 1
    # injection touches at most every neuron once (delayed currents) plus every input
    # segment; forward steps are checked at each safe point
    cap_touch = n + net.src_ptr[net.n_in] + 64
    sc = Scratch(
        newspk=np.empty(n, np.int64),
        ncount=np.empty(n, np.int64),
        vspk=np.empty(n),
        keys=np.empty(n, np.int64),
        order=np.empty(n, np.int64),
        refl=np.empty(n, np.int64),
        nref_pop=np.zeros(npop, np.int64),
        pop_recv=np.zeros(npop, np.int64),
        ts_start=np.empty(cap_touch, np.int64),
        ts_len=np.empty(cap_touch, np.int64),
        ts_pop=np.empty(cap_touch, np.int64),
        ts_kind=np.empty(cap_touch, np.int64),
        k=np.zeros(3, np.int64),
        bsrc=np.empty(net.n_in + n, np.int64),
        bval=np.empty(net.n_in + n),
        box=np.full((npop, 6), -1, np.int64),
    )
    ctr = st.ctr
    ctr[C_RTI] = 0
    ctr[C_PHASE] = 0
    while True:
        status = _advance(net, prm, frames, label, st, q, ev, rec, sc)
        if status == DONE:
            break
        if ctr[C_NEED_Q] > q.key.shape[0]:
            q = _grow_queue(q, ctr[C_NEED_Q])
        if ctr[C_NEED_T] > sc.ts_start.shape[0] or ctr[C_NEED_B] > sc.bsrc.shape[0]:
            sc = _grow_lists(sc, ctr[C_NEED_T], ctr[C_NEED_B])
        if ctr[C_NEED_EV] > ev.shape[0]:
            ev = _grow_ev(ev, ctr[C_NEED_EV])
    return q, ev


@_inline
def _timestep_ends(prm, step, first_out_step, qn):
    """The stop rule after forward step ``step`` of an asynchronous timestep: k steps after
    the first output spike (output:k), n steps (steps:n), or an empty queue."""
    if prm.stop_kind == STOP_OUTPUT and first_out_step >= 0:
        if step - first_out_step >= prm.stop_value:
            return True
    if prm.stop_kind == STOP_STEPS and step >= prm.stop_value:
        return True
    return qn == 0


@_inline
def _step_room(net, prm, sc, q, ev, head, qn, nev):
    """Room for the next forward step: compacts the fifo when its tail would run out,
    then returns ``(head, fits, need_q, need_t, need_b, need_ev)``: ``fits`` is False when
    a buffer is smaller than the step's worst case (at most N new spikes, min(F, pending)
    deliveries and their segments)."""
    n = net.n_neurons
    need_t = 0
    need_b = 0
    if prm.policy != P_LAYERED:
        need_b = min(prm.group_size, qn)
        need_t = need_b * net.max_src_segs
    if head > 0 and head + qn + n > q.key.shape[0]:
        _compact(q, head, qn)
        head = 0
    need_q = head + qn + n
    need_ev = nev + n if prm.record_events else 0
    fits = (
        need_t <= sc.ts_start.shape[0]
        and need_b <= sc.bsrc.shape[0]
        and need_q <= q.key.shape[0]
        and need_ev <= ev.shape[0]
    )
    return head, fits, need_q, need_t, need_b, need_ev


@_inline
def _save_steps(ctr, qn, head, seq, stepid, nev, step, first_out_step, spikes_ts, synops_ts, peak):
    """Store the event loop's step state in its resume slots of ``ctr``."""
    ctr[C_QN] = qn
    ctr[C_QHEAD] = head
    ctr[C_SEQ] = seq
    ctr[C_STEPID] = stepid
    ctr[C_NEV] = nev
    ctr[C_RSTEP] = step
    ctr[C_RFIRST] = first_out_step
    ctr[C_RSPK] = spikes_ts
    ctr[C_RSYN] = synops_ts
    ctr[C_RPEAK] = peak


@_inline
def _load_steps(ctr):
    """The step state saved by :func:`_save_steps`."""
    return (
        ctr[C_QN],
        ctr[C_QHEAD],
        ctr[C_SEQ],
        ctr[C_STEPID],
        ctr[C_NEV],
        ctr[C_RSTEP],
        ctr[C_RFIRST],
        ctr[C_RSPK],
        ctr[C_RSYN],
        ctr[C_RPEAK],
    )


@_hot
def _run_async(net, prm, label, st, q, ev, rec, sc, ti, t):
    """The forward steps of timestep ``t`` under an asynchronous policy, from the resume
    point in ``st.ctr``: step 1 evaluates what the injection delivered; each later step
    takes min(F, pending) entries from the queue in the policy's order and delivers them
    (one dense row: add and threshold test fused; a group: as one list, dense rows into
    one population fused), evaluates the touched neurons and queues their spikes.

    A separate function from :func:`_advance` with far fewer live values, so the per-step
    bookkeeping stays in registers (measured: most of an F = 1 step's cost is bookkeeping,
    not synaptic work); it also keeps one inlined copy of the step's delivery, evaluation
    and emission (numba's IR inlining copies a callee at every call site, and those copies
    dominate the first compile). State comes from and goes back to ``st.ctr`` (resume
    slots). Returns 1 when the timestep ended, 0 when a buffer may be too small for the next
    step (the caller's safe point grows it and calls again).
    """
    ctr = st.ctr
    qn, head, seq, stepid, nev, step, first_out_step, spikes_ts, synops_ts, peak = _load_steps(ctr)
    syn_row = rec.synops[ti]
    in_row = rec.input_synops[ti]
    upd_row = rec.updates[ti]
    ended = 0
    while True:
        if step > 0:
            if _timestep_ends(prm, step, first_out_step, qn):
                ended = 1
                break
            head, fits, _, _, _, _ = _step_room(net, prm, sc, q, ev, head, qn, nev)
            if not fits:
                break  # a buffer may be too small: the caller's safe point grows it
            stepid += 1
            sc.k[K_TOUCH] = 0
        step += 1
        sc.k[K_NEW] = 0
        evaluated = False
        if step > 1:
            # take min(F, pending) entries in delivery order (the list has room: checked
            # by _step_room)
            ng = min(prm.group_size, qn)
            for i in range(ng):
                s, val, head = _pop(q, head, qn, prm.policy, st.rng)
                qn -= 1
                sc.bsrc[i] = s
                sc.bval[i] = val
            s = sc.bsrc[0]
            p = net.src_dense_pop[np.uint64(s)] if ng == 1 else -1
            if p >= 0:
                # the step's only delivery is a dense row into one population: add and
                # evaluate in one pass (nothing else can touch a neuron in this step)
                row = in_row if s < net.n_in else syn_row
                synops_ts += _deliver_one_and_fire(
                    net, st, sc, s, sc.bval[0], p, t, row, upd_row, prm.reactivity
                )
                evaluated = True
            elif ng == 1 and net.src_sparse_pop[np.uint64(s)] >= 0:
                # the step's only delivery is a sparse row into one population: add and
                # evaluate each target in one pass, as for a dense row
                row = in_row if s < net.n_in else syn_row
                synops_ts += _deliver_sparse_and_fire(
                    net,
                    st,
                    sc,
                    s,
                    sc.bval[0],
                    net.src_sparse_pop[np.uint64(s)],
                    t,
                    row,
                    upd_row,
                    prm.reactivity,
                )
                evaluated = True
            else:
                # anything else as a list: dense rows into one population fused
                synops_ts += _deliver_list(
                    net, st, sc, ng, t, stepid, in_row, syn_row, True, prm.reactivity
                )
        if not evaluated:
            _evaluate(net, st, sc, t, stepid, upd_row)
        if sc.k[K_NEW] > 0:
            state = (qn, seq, nev, spikes_ts, first_out_step, peak)
            qn, seq, nev, spikes_ts, first_out_step, peak = _emit(
                net, prm, st, sc, q, ev, rec, ti, step, label, head, synops_ts, state
            )
    _save_steps(ctr, qn, head, seq, stepid, nev, step, first_out_step, spikes_ts, synops_ts, peak)
    return ended


@_hot
def _advance(net, prm, frames, label, st, q, ev, rec, sc):
    """The event loop: timesteps of ``frames`` from the resume point in ``st.ctr``.

    Returns DONE, or NEED_ROOM with the required capacities in ``ctr[C_NEED_*]`` (the
    position is saved in ``ctr`` so the next call continues exactly there)."""
    n = net.n_neurons
    n_in = net.n_in
    npop = net.pop_start.shape[0] - 1
    out_pop = net.out_pop
    out_a = net.pop_start[out_pop]
    out_b = net.pop_start[out_pop + 1]
    ctr = st.ctr
    v = st.v
    policy = prm.policy
    layered = policy == P_LAYERED
    queued_input = prm.queued_input and not layered
    record = prm.record_events
    qn = ctr[C_QN]
    head = ctr[C_QHEAD]
    seq = ctr[C_SEQ]
    stepid = ctr[C_STEPID]
    nev = ctr[C_NEV]
    ti = ctr[C_RTI]
    phase = ctr[C_PHASE]
    status = DONE
    step = 0
    spikes_ts = 0
    synops_ts = 0
    first_out_step = -1
    peak = 0

    while ti < frames.shape[0]:
        t = ctr[C_T]
        syn_row = rec.synops[ti]
        in_row = rec.input_synops[ti]
        upd_row = rec.updates[ti]

        if phase == 0:
            # ---- safe point: room for queued input and the spikes of forward step 1
            if head > 0:
                _compact(q, head, qn)
                head = 0
            need_q = qn + n_in + n if queued_input else qn + n
            need_ev = nev + n if record else 0
            if need_q > q.key.shape[0] or need_ev > ev.shape[0]:
                ctr[C_NEED_Q] = need_q
                ctr[C_NEED_T] = 0
                ctr[C_NEED_B] = 0
                ctr[C_NEED_EV] = need_ev
                status = NEED_ROOM
                break
            sc.k[K_REFL] = 0
            sc.nref_pop[:] = 0
            spikes_ts = 0
            synops_ts = 0
            first_out_step = -1
            peak = qn

            # ---- 1. timestep start
            stepid += 1
            _timestep_start(net, st, t, stepid)
            if prm.reactivity:
                st.recv[:] = 0
                sc.pop_recv[:] = 0
            if policy == P_MOMENTUM and qn > 0:
                # v_spike is cleared at every timestep start: carried spikes rank as v = 0
                for i in range(qn):
                    if q.src[i] >= n_in:
                        q.key[i] = 0.0
                _heapify(q.key, q.seq, q.src, q.val, qn)

            # ---- 2. injection: delayed currents due now, then the input frame
            sc.k[K_TOUCH] = 0
            if net.max_delay > 0:
                _inject_delayed(net, st, sc, t, stepid)
            x = frames[ti]
            nb = 0
            if not queued_input and prm.input_dropout <= 0.0:
                # nonzero channels in channel order: a vectorised bit mask per block of 64
                bsrc = sc.bsrc
                bval = sc.bval
                for base in range(0, n_in, 64):
                    b0 = np.uint64(base)
                    mask = np.uint64(0)
                    for k in range(np.uint64(min(64, n_in - base))):
                        mask |= np.uint64(x[b0 + k] != 0.0) << k
                    while mask:
                        c = base + int(trailing_zeros(mask))
                        mask &= mask - np.uint64(1)
                        bsrc[nb] = c
                        bval[nb] = x[c]
                        nb += 1
            else:
                # queued input or input dropout: channel by channel
                for c in range(n_in):
                    xc = x[c]
                    if xc == 0.0:
                        continue
                    if prm.input_dropout > 0.0 and _uniform(st.rng) < prm.input_dropout:
                        continue
                    if queued_input:
                        key = -np.inf if policy == P_MOMENTUM else 0.0
                        _push(q, head, qn, policy, key, seq, c, xc)
                        seq += 1
                        qn += 1
                    else:
                        sc.bsrc[nb] = c
                        sc.bval[nb] = xc
                        nb += 1
            # (the list of nb input sources is delivered at the top of the forward loop)
            peak = max(peak, qn)
            step = 0
            phase = 1
        else:
            nb = 0
            step = ctr[C_RSTEP]
            first_out_step = ctr[C_RFIRST]
            spikes_ts = ctr[C_RSPK]
            synops_ts = ctr[C_RSYN]
            peak = ctr[C_RPEAK]

        # ---- 3. forward steps
        while True:
            if nb > 0:
                # the one delivery of a source list in this function: the input frame
                # (forward step 1) or, layered, the spikes of the population just
                # evaluated. Channel / id order; dense rows into one population fused
                # (same summation order); layered mode evaluates whole populations, so
                # nothing is tracked
                synops_ts += _deliver_list(
                    net, st, sc, nb, t, stepid, in_row, syn_row, not layered, prm.reactivity
                )
                nb = 0
            # the step state in its resume slots: _run_async starts from there, and a
            # safe point that returns NEED_ROOM resumes from there
            _save_steps(
                ctr, qn, head, seq, stepid, nev, step, first_out_step, spikes_ts, synops_ts, peak
            )
            if not layered:
                # asynchronous steps run in _run_async until the timestep ends or a
                # buffer may need to grow (then the safe point below handles it)
                ended = _run_async(net, prm, label, st, q, ev, rec, sc, ti, t)
                qn, head, seq, stepid, nev, step, first_out_step, spikes_ts, synops_ts, peak = (
                    _load_steps(ctr)
                )
                if ended:
                    break
            elif step >= npop:
                break
            # ---- safe point before forward step step + 1
            head, fits, need_q, need_t, need_b, need_ev = _step_room(
                net, prm, sc, q, ev, head, qn, nev
            )
            if not fits:
                ctr[C_NEED_Q] = need_q
                ctr[C_NEED_T] = need_t
                ctr[C_NEED_B] = need_b
                ctr[C_NEED_EV] = need_ev
                ctr[C_QHEAD] = head  # the only state _step_room changes (fifo compaction)
                status = NEED_ROOM
                break
            if not layered:
                continue  # room after all: _run_async goes on
            # ---- layered forward step: one population, in topological order; it has
            # received all its currents of this timestep, so every neuron is evaluated
            # once, and its spikes (in id order) are delivered before the next one
            if step > 0:
                stepid += 1
                sc.k[K_TOUCH] = 0
            step += 1
            sc.k[K_NEW] = 0
            p = net.topo[step - 1]
            upd_row[p] += net.pop_start[p + 1] - net.pop_start[p]
            _scan(net, st, sc, p, t, False)
            nnew = sc.k[K_NEW]
            if nnew > 0:
                state = (qn, seq, nev, spikes_ts, first_out_step, peak)
                qn, seq, nev, spikes_ts, first_out_step, peak = _emit(
                    net, prm, st, sc, q, ev, rec, ti, step, label, head, synops_ts, state
                )
                for oi in range(nnew):
                    i = sc.order[oi]
                    sc.bsrc[oi] = n_in + sc.newspk[i]
                    sc.bval[oi] = float(sc.ncount[i])
                nb = nnew
        if status == NEED_ROOM:
            break

        # ---- timestep end: refractory neurons ignored everything after their spike
        for i in range(sc.k[K_REFL]):
            j = sc.refl[i]
            v[j] = st.hold_v[j]
            st.syn[j] = st.hold_syn[j]
        for k in range(out_b - out_a):
            rec.out_v[ti, k] = v[out_a + k]
        rec.steps[ti] = step
        rec.peak_queue[ti] = peak
        ctr[C_SPK] += spikes_ts
        ctr[C_STEPS] += step
        ctr[C_SYN] += synops_ts
        ctr[C_T] = t + 1
        ti += 1
        phase = 0

    ctr[C_QN] = qn
    ctr[C_QHEAD] = head
    ctr[C_SEQ] = seq
    ctr[C_STEPID] = stepid
    ctr[C_NEV] = nev
    ctr[C_RTI] = ti
    ctr[C_PHASE] = phase
    return status


@njit(cache=True, nogil=True)
def run_batch(net, prm, frames, labels, seeds, st, rec, ctrs):
    """Run samples ``frames[b]`` (f8[B, T, n_in]) one after the other, reusing one state.

    ``rec`` holds batch arrays (leading axis B); ``ctrs[b]`` receives each sample's
    counters. One call per batch keeps Python and argument-unboxing overhead off the
    per-sample path (no events are recorded here: use :func:`run_chunk` for that).
    """
    q = new_queue()
    ev = np.empty((0, 4), np.int64)
    for b in range(frames.shape[0]):
        _reset_state(net, st, seeds[b])
        r = Record(
            rec.spikes[b],
            rec.synops[b],
            rec.input_synops[b],
            rec.updates[b],
            rec.steps[b],
            rec.peak_queue[b],
            rec.out_spikes[b],
            rec.out_v[b],
            rec.lat_first[b],
            rec.lat_correct[b],
            rec.react[b],
        )
        q, ev = run_chunk(net, prm, frames[b], labels[b], st, q, ev, r)
        ctrs[b, :] = st.ctr


@_inline
def _sample_points(ctr, label, t, spikes, steps, synops, correct_step):
    """Sample-level latency points after a forward step with output spikes."""
    if ctr[C_FIRST_OUT] < 0:
        ctr[C_FIRST_OUT] = t
        ctr[C_FIRST_OUT + 1] = spikes
        ctr[C_FIRST_OUT + 2] = steps
        ctr[C_FIRST_OUT + 3] = synops
    if correct_step and ctr[C_FIRST_COR] < 0:
        ctr[C_FIRST_COR] = t
        ctr[C_FIRST_COR + 1] = spikes
        ctr[C_FIRST_COR + 2] = steps
        ctr[C_FIRST_COR + 3] = synops
    if label >= 0:
        ok = ctr[C_DTOP] > 0 and ctr[C_DTIE] == 0 and ctr[C_DBEST] == label
        if ok and ctr[C_CORRECT] != 1:
            ctr[C_STABLE] = t
            ctr[C_STABLE + 1] = spikes
            ctr[C_STABLE + 2] = steps
            ctr[C_STABLE + 3] = synops
        ctr[C_CORRECT] = 1 if ok else 0
