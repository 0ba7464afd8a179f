"""numba kernels of the event engine. Private: no validation here, inputs are trusted.

Everything in this module takes flat arrays (grouped in NamedTuples with fixed dtypes) and
writes into output arrays; there are no Python objects, closures or jitclasses, so the
on-disk cache (``cache=True``) is reused by every process. The public entry point is
:func:`run_chunk`, which advances *one sample* by a chunk of timesteps and can be called
again with the same state to continue (streaming). It releases the GIL, so samples run in
parallel threads.

Cost model (N neurons, G segments, F group size): per timestep O(N) for the leak plus,
per delivered spike, O(segment lengths) for the adds and O(log Q) for the queue
(binary heap, Q pending) under fifo/momentum, O(1) under random. Threshold evaluation
visits only neurons that received current in the forward step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

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
N_CTR = 24


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
    n = net.n_neurons
    n_out = int(net.pop_start[net.out_pop + 1] - net.pop_start[net.out_pop])
    ctr = np.zeros(N_CTR, dtype=np.int64)
    ctr[C_FIRST_OUT:C_CORRECT] = -1
    return SampleState(
        v=net.v_init.copy(),
        syn=np.zeros(n),
        hold_v=np.zeros(n),
        hold_syn=np.zeros(n),
        refr_ts=np.full(n, NEVER, dtype=np.int64),
        spike_ts=np.full(n, NEVER, dtype=np.int64),
        mark=np.full(n, -1, dtype=np.int64),
        recv=np.zeros(n, dtype=np.int64),
        pop_full=np.full(net.pop_start.size - 1, -1, dtype=np.int64),
        ring=np.zeros(net.max_delay * n),
        out_cum=np.zeros(n_out, dtype=np.int64),
        rng=np.array([seed], dtype=np.uint64),
        ctr=ctr,
    )


def new_record(net: NetArrays, t: int) -> Record:
    p = net.pop_start.size - 1
    n_out = int(net.pop_start[net.out_pop + 1] - net.pop_start[net.out_pop])
    return Record(
        spikes=np.zeros((t, p), np.int64),
        synops=np.zeros((t, p), np.int64),
        input_synops=np.zeros((t, p), np.int64),
        updates=np.zeros((t, p), np.int64),
        steps=np.zeros(t, np.int64),
        peak_queue=np.zeros(t, np.int64),
        out_spikes=np.zeros((t, n_out), np.int64),
        out_v=np.zeros((t, n_out)),
        lat_first=np.full((t, 3), -1, np.int64),
        lat_correct=np.full((t, 3), -1, np.int64),
        react=np.zeros(p, np.int64),
    )


# --------------------------------------------------------------------------- random
@njit(cache=True, nogil=True)
def _next_u64(rng):
    """splitmix64 (Steele et al. 2014): one 64-bit draw, state in rng[0]."""
    rng[0] = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _uniform(rng):
    """Uniform float in [0, 1) with 53 random bits."""
    return float(_next_u64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True)
def _randint(rng, n):
    """Uniform integer in [0, n)."""
    return int(_uniform(rng) * n)


def uniform_stream(seed: int, count: int) -> np.ndarray:
    """``count`` draws of :func:`_uniform` from ``seed`` (used by tests and the reference)."""
    rng = np.array([seed], dtype=np.uint64)
    return np.array([_uniform(rng) for _ in range(count)])


# --------------------------------------------------------------------------- heap
@njit(cache=True, nogil=True)
def _less(qk, qs, i, j):
    return qk[i] < qk[j] or (qk[i] == qk[j] and qs[i] < qs[j])


@njit(cache=True, nogil=True)
def _swap(qk, qs, qsrc, qval, i, j):
    qk[i], qk[j] = qk[j], qk[i]
    qs[i], qs[j] = qs[j], qs[i]
    qsrc[i], qsrc[j] = qsrc[j], qsrc[i]
    qval[i], qval[j] = qval[j], qval[i]


@njit(cache=True, nogil=True)
def _sift_down(qk, qs, qsrc, qval, i, n):
    while True:
        l = 2 * i + 1
        if l >= n:
            return
        m = l
        r = l + 1
        if r < n and _less(qk, qs, r, l):
            m = r
        if _less(qk, qs, m, i):
            _swap(qk, qs, qsrc, qval, i, m)
            i = m
        else:
            return


@njit(cache=True, nogil=True)
def _heap_push(qk, qs, qsrc, qval, n, key, seq, src, val):
    """Insert at position n (capacity ensured by the caller); O(log n)."""
    qk[n] = key
    qs[n] = seq
    qsrc[n] = src
    qval[n] = val
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if _less(qk, qs, i, parent):
            _swap(qk, qs, qsrc, qval, i, parent)
            i = parent
        else:
            break


@njit(cache=True, nogil=True)
def _heap_pop(qk, qs, qsrc, qval, n):
    """Remove the smallest (key, seq) entry of a heap of size n; O(log n)."""
    src = qsrc[0]
    val = qval[0]
    last = n - 1
    if last > 0:
        qk[0] = qk[last]
        qs[0] = qs[last]
        qsrc[0] = qsrc[last]
        qval[0] = qval[last]
        _sift_down(qk, qs, qsrc, qval, 0, last)
    return src, val


class Queue(NamedTuple):
    """Pending entries (binary heap on (key, seq) for fifo/momentum, a plain pool for
    random). ``src`` is a unified source id (inputs first), ``val`` the delivered count."""

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
    refl: np.ndarray  # i8[N] refractory neurons of this timestep
    nref_pop: np.ndarray  # i8[P] refractory neurons per population in this timestep
    ts_start: np.ndarray  # i8[cap] touched runs of this step (partial populations)
    ts_len: np.ndarray
    ts_pop: np.ndarray
    k: np.ndarray  # i8[3] counters


K_TOUCH = 0  # touched runs in this step
K_NEW = 1  # spikes generated in this step
K_REFL = 2  # refractory neurons in this timestep


def new_queue(capacity: int = 64) -> Queue:
    return Queue(
        np.empty(capacity),
        np.empty(capacity, np.int64),
        np.empty(capacity, np.int64),
        np.empty(capacity),
    )


@njit(cache=True, nogil=True)
def _grown(a, need):
    b = np.empty(max(need, 2 * a.shape[0] + 16), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _reserve_queue(q, need):
    """The queue with room for ``need`` entries (amortised O(1))."""
    if need <= q.key.shape[0]:
        return q
    return Queue(_grown(q.key, need), _grown(q.seq, need), _grown(q.src, need), _grown(q.val, need))


@njit(cache=True, nogil=True)
def _reserve_touch(sc, extra):
    """Scratch with room for ``extra`` more touched runs in this step."""
    need = sc.k[K_TOUCH] + extra
    if need <= sc.ts_start.shape[0]:
        return sc
    return Scratch(
        sc.newspk,
        sc.ncount,
        sc.vspk,
        sc.keys,
        sc.refl,
        sc.nref_pop,
        _grown(sc.ts_start, need),
        _grown(sc.ts_len, need),
        _grown(sc.ts_pop, need),
        sc.k,
    )


@njit(cache=True, nogil=True)
def _grow_ev(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty((max(need, 2 * a.shape[0] + 64), a.shape[1]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


# --------------------------------------------------------------------------- delivery
@njit(cache=True, nogil=True)
def _deliver(net, st, sc, s, val, t, stepid, row, track, reactivity):
    """Deliver source ``s`` (unified id) with count/value ``val`` to all its targets.

    Immediate segments add ``val * w`` to v (and/or the synaptic state) at once; delayed
    segments add into the ring slot of timestep ``t + delay``. Touched targets are
    registered for threshold evaluation: a whole population with one stamp, partial runs
    in the touched list (capacity reserved by the caller). Synaptic operations (nonzero
    synapses, times the count for network spikes) are added to ``row`` by target
    population and returned. O(total segment length).
    """
    v = st.v
    syn = st.syn
    w = net.weights
    ops = 0
    mult = 1
    if s >= net.n_in:
        mult = int(val)  # a network event of count n is n spikes
    g1 = net.src_split[s]
    for g in range(net.src_ptr[s], g1):
        tg = net.seg_tgt[g]
        ln = net.seg_len[g]
        w0 = net.seg_w[g]
        p = net.seg_pop[g]
        fl = net.pop_flags[p]
        nnz = net.seg_nnz[g] * mult
        row[p] += nnz
        ops += nnz
        if fl & F_SYN:
            for k in range(ln):
                syn[tg + k] += val * w[w0 + k]
        if fl & F_VDIRECT:
            if val == 1.0:
                for k in range(ln):
                    v[tg + k] += w[w0 + k]
            else:
                for k in range(ln):
                    v[tg + k] += val * w[w0 + k]
            if track:
                if ln == net.pop_start[p + 1] - net.pop_start[p]:
                    st.pop_full[p] = stepid
                else:
                    i = sc.k[K_TOUCH]
                    sc.ts_start[i] = tg
                    sc.ts_len[i] = ln
                    sc.ts_pop[i] = p
                    sc.k[K_TOUCH] = i + 1
        if reactivity:
            recv = st.recv
            for k in range(ln):
                recv[tg + k] += 1
    g2 = net.src_ptr[s + 1]
    if g1 < g2:
        n = net.n_neurons
        ring = st.ring
        for g in range(g1, g2):
            tg = net.seg_tgt[g]
            w0 = net.seg_w[g]
            base = ((t + net.seg_delay[g]) % net.max_delay) * n
            nnz = net.seg_nnz[g] * mult
            row[net.seg_pop[g]] += nnz
            ops += nnz
            for k in range(net.seg_len[g]):
                ring[base + tg + k] += val * w[w0 + k]
    return ops


# --------------------------------------------------------------------------- spikes
@njit(cache=True, nogil=True)
def _fire(net, st, sc, j, t, allow_dropout):
    """Neuron j crossed threshold: count, reset, refractoriness, bookkeeping."""
    v = st.v
    vs = v[j]
    p = net.pop_of[j]
    fl = net.pop_flags[p]
    cnt = 1
    if fl & F_MULTI:
        cnt = max(1, int(np.floor(vs / net.theta[j])))
    if not (fl & F_RDELAY):
        if fl & F_SUB:
            v[j] = vs - cnt * net.theta[j]
        else:
            v[j] = net.v_reset[j]
    st.spike_ts[j] = t
    refr = (fl & F_REFR) != 0
    if refr and allow_dropout and net.pop_dropout[p] > 0.0:
        if _uniform(st.rng) < net.pop_dropout[p]:
            refr = False
    if refr:
        st.refr_ts[j] = t
        st.hold_v[j] = v[j]
        st.hold_syn[j] = st.syn[j]
        r = sc.k[K_REFL]
        sc.refl[r] = j
        sc.k[K_REFL] = r + 1
        sc.nref_pop[p] += 1
    i = sc.k[K_NEW]
    sc.newspk[i] = j
    sc.ncount[i] = cnt
    sc.vspk[i] = vs
    sc.k[K_NEW] = i + 1


@njit(cache=True, nogil=True)
def _evaluate(net, st, sc, t, stepid, upd_row):
    """Threshold test of every neuron touched in forward step ``stepid``, each once.

    Whole populations (stamped in ``pop_full``) are scanned; partial runs are deduplicated
    with the per-neuron ``mark`` stamp. Refractory neurons are skipped (their potential
    absorbed currents but is restored at the timestep end). O(touched neurons).
    """
    v = st.v
    th = net.theta_cmp
    refr_ts = st.refr_ts
    for p in range(net.pop_start.shape[0] - 1):
        if st.pop_full[p] == stepid:
            a = net.pop_start[p]
            b = net.pop_start[p + 1]
            upd_row[p] += (b - a) - sc.nref_pop[p]
            for j in range(a, b):
                if v[j] > th[j] and refr_ts[j] != t:
                    _fire(net, st, sc, j, t, True)
    mark = st.mark
    for i in range(sc.k[K_TOUCH]):
        p = sc.ts_pop[i]
        if st.pop_full[p] == stepid:
            continue
        a = sc.ts_start[i]
        for j in range(a, a + sc.ts_len[i]):
            if mark[j] != stepid:
                mark[j] = stepid
                if refr_ts[j] != t:
                    upd_row[p] += 1
                    if v[j] > th[j]:
                        _fire(net, st, sc, j, t, True)


@njit(cache=True, nogil=True)
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
            v[j] = vj + net.bias[j]
        if fl & F_DRIVEN:
            st.pop_full[p] = stepid


@njit(cache=True, nogil=True)
def _inject_delayed(net, st, sc, t):
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
                i = sc.k[K_TOUCH]
                sc.ts_start[i] = j
                sc.ts_len[i] = 1
                sc.ts_pop[i] = net.pop_of[j]
                sc.k[K_TOUCH] = i + 1


@njit(cache=True, nogil=True)
def _decision(out_cum):
    """Unique argmax of the accumulated output counts, -1 on a tie or no spikes."""
    best = -1
    bestv = 0
    tie = False
    for k in range(out_cum.shape[0]):
        c = out_cum[k]
        if c > bestv:
            bestv = c
            best = k
            tie = False
        elif c == bestv and c > 0:
            tie = True
    if tie:
        return -1
    return best


@njit(cache=True, nogil=True)
def _push(q, qn, policy, key, seq, src, val):
    if policy == P_RANDOM:
        q.src[qn] = src
        q.val[qn] = val
    else:
        _heap_push(q.key, q.seq, q.src, q.val, qn, key, seq, src, val)


@njit(cache=True, nogil=True)
def _pop(q, qn, policy, rng):
    """Remove the next entry: uniform pick (random) or heap minimum (fifo, momentum)."""
    if policy == P_RANDOM:
        i = _randint(rng, qn)
        s = q.src[i]
        val = q.val[i]
        q.src[i] = q.src[qn - 1]
        q.val[i] = q.val[qn - 1]
        return s, val
    return _heap_pop(q.key, q.seq, q.src, q.val, qn)


# --------------------------------------------------------------------------- main loop
@njit(cache=True, nogil=True)
def run_chunk(net, prm, frames, label, st, q, ev, rec):
    """Advance one sample by ``frames.shape[0]`` timesteps.

    ``frames``: f8[T, n_in] input values (counts or currents) per timestep.
    ``label``: class index for latency-to-correct bookkeeping, or -1.
    ``st``, ``q``, ``ev``: state carried between chunks; the queue and the event log
    (rows: timestep, step, neuron, count) grow when needed, so they are returned.
    ``rec``: per-timestep outputs for this chunk (zeroed / -1 initialised by the caller).
    Returns ``(q, ev)``.
    """
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
    sc = Scratch(
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.zeros(npop, np.int64),
        np.empty(64, np.int64),
        np.empty(64, np.int64),
        np.empty(64, np.int64),
        np.zeros(3, np.int64),
    )
    qn = ctr[C_QN]
    seq = ctr[C_SEQ]
    stepid = ctr[C_STEPID]
    nev = ctr[C_NEV]

    for ti in range(frames.shape[0]):
        t = ctr[C_T]
        x = frames[ti]
        syn_row = rec.synops[ti]
        in_row = rec.input_synops[ti]
        upd_row = rec.updates[ti]
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
        if policy == P_MOMENTUM and qn > 0:
            # v_spike is cleared at every timestep start: carried spikes rank as v = 0
            for i in range(qn):
                if q.src[i] >= n_in:
                    q.key[i] = 0.0
            for i in range(qn // 2 - 1, -1, -1):
                _sift_down(q.key, q.seq, q.src, q.val, i, qn)

        # ---- 2. injection: delayed currents due now, then the input frame
        sc.k[K_TOUCH] = 0
        if net.max_delay > 0:
            sc = _reserve_touch(sc, n)
            _inject_delayed(net, st, sc, t)
        if queued_input:
            q = _reserve_queue(q, qn + n_in)
        for c in range(n_in):
            xc = x[c]
            if xc == 0.0:
                continue
            if prm.input_dropout > 0.0 and _uniform(st.rng) < prm.input_dropout:
                continue
            if queued_input:
                key = -np.inf if policy == P_MOMENTUM else 0.0
                _push(q, qn, policy, key, seq, c, xc)
                seq += 1
                qn += 1
            else:
                sc = _reserve_touch(sc, net.src_ptr[c + 1] - net.src_ptr[c])
                synops_ts += _deliver(net, st, sc, c, xc, t, stepid, in_row, True, prm.reactivity)
        peak = max(peak, qn)

        # ---- 3. forward steps
        step = 0
        while True:
            step += 1
            if step > 1:
                stepid += 1
                sc.k[K_TOUCH] = 0
            sc.k[K_NEW] = 0
            if layered:
                # one population per step, in topological order: it has received all its
                # currents of this timestep, so every neuron is evaluated once
                p = net.topo[step - 1]
                upd_row[p] += net.pop_start[p + 1] - net.pop_start[p]
                for j in range(net.pop_start[p], net.pop_start[p + 1]):
                    if v[j] > net.theta_cmp[j]:
                        _fire(net, st, sc, j, t, False)
            else:
                if step > 1:
                    for _ in range(min(prm.group_size, qn)):
                        s, val = _pop(q, qn, policy, st.rng)
                        qn -= 1
                        sc = _reserve_touch(sc, net.src_ptr[s + 1] - net.src_ptr[s])
                        row = in_row if s < n_in else syn_row
                        synops_ts += _deliver(
                            net, st, sc, s, val, t, stepid, row, True, prm.reactivity
                        )
                _evaluate(net, st, sc, t, stepid, upd_row)

            # ---- emit this step's spikes in order of global logical id
            nnew = sc.k[K_NEW]
            if nnew > 0:
                for i in range(nnew):
                    sc.keys[i] = net.lid[sc.newspk[i]]
                order = np.argsort(sc.keys[:nnew], kind="mergesort")
                if prm.record_events:
                    ev = _grow_ev(ev, nev + nnew)
                if not layered:
                    q = _reserve_queue(q, qn + nnew)
                n_out_step = 0
                correct_step = False
                for oi in range(nnew):
                    i = order[oi]
                    j = sc.newspk[i]
                    cnt = sc.ncount[i]
                    p = net.pop_of[j]
                    rec.spikes[ti, p] += cnt
                    spikes_ts += cnt
                    if prm.reactivity:
                        rec.react[p] += st.recv[j] * cnt
                    if prm.record_events:
                        ev[nev, 0] = t
                        ev[nev, 1] = step
                        ev[nev, 2] = j
                        ev[nev, 3] = cnt
                        nev += 1
                    if p == out_pop:
                        k = j - out_a
                        rec.out_spikes[ti, k] += cnt
                        st.out_cum[k] += cnt
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
                            _push(q, qn, policy, key, seq, s, float(cnt))
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
                        st.out_cum,
                        label,
                        t,
                        ctr[C_SPK] + spikes_ts,
                        ctr[C_STEPS] + step,
                        ctr[C_SYN] + synops_ts,
                        correct_step,
                    )
                if layered:
                    # deliver this population's spikes before the next one evaluates
                    for oi in range(nnew):
                        i = order[oi]
                        synops_ts += _deliver(
                            net,
                            st,
                            sc,
                            n_in + sc.newspk[i],
                            float(sc.ncount[i]),
                            t,
                            stepid,
                            syn_row,
                            False,
                            prm.reactivity,
                        )

            # ---- does the timestep end here?
            if layered:
                if step >= npop:
                    break
                continue
            if prm.stop_kind == STOP_OUTPUT and first_out_step >= 0:
                if step - first_out_step >= prm.stop_value:
                    break
            if prm.stop_kind == STOP_STEPS and step >= prm.stop_value:
                break
            if qn == 0:
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

    ctr[C_QN] = qn
    ctr[C_SEQ] = seq
    ctr[C_STEPID] = stepid
    ctr[C_NEV] = nev
    return q, ev


@njit(cache=True, nogil=True)
def _sample_points(ctr, out_cum, label, t, spikes, steps, synops, correct_step):
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
        ok = _decision(out_cum) == label
        if ok and ctr[C_CORRECT] != 1:
            ctr[C_STABLE] = t
            ctr[C_STABLE + 1] = spikes
            ctr[C_STABLE + 2] = steps
            ctr[C_STABLE + 3] = synops
        ctr[C_CORRECT] = 1 if ok else 0
