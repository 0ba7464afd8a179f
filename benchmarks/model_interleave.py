"""Would two samples interleaved in one thread hide the momentum heap's latency?

    python benchmarks/model_interleave.py [--timesteps 2000] [--repeats 5]

A model of momentum F = 1 on the reference workload, not the engine: the engine's own
heap (``_heap_pop`` / ``_heap_push`` from ``asyncsim._kernels``, inlined), a burst of 51
first-layer entries per timestep (keys spread over (-2, -1]), and per pop either a
500-wide float32 row added into float64 potentials with the engine's crossing count
followed by 1-2 pushes of second-layer entries (keys in the narrow band (-1.15, -1]), or
a 10-wide readout row. That is the shape counted on the reference engine (about 40 % of
the pops deliver a 500-wide row, ~46 entries pending on average; the script prints its
own mean). Three loops over the same entries:

- ``single``: one sample's queue, drained step by step;
- ``alternate``: two independent samples, one step of each in turn;
- ``pipelined``: two samples, both pops first, then both deliveries (the dependent loads
  of one heap descent next to the other's, the most overlap a two-sample kernel allows).

If the heap's dependent loads were what limits the engine, the two-sample loops would
cost less per step. Prints ns per step (median of ``--repeats``), compile time apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from numba import njit

from asyncsim._kernels import _heap_pop, _heap_push

_MUL = np.uint64(6364136223846793005)
_INC = np.uint64(1442695040888963407)


@njit(inline="always")
def _lcg(r):
    return r * _MUL + _INC


@njit(inline="always")
def _below(r, m):
    """An integer in [0, m) from the high bits of r (multiply-shift, no division)."""
    return int(((r >> np.uint64(32)) * np.uint64(m)) >> np.uint64(32))


@njit(inline="always")
def _key(r, spread):
    """A momentum key in (-1 - spread, -1] from 16 bits of r."""
    return -1.0 - float((r >> np.uint64(11)) & np.uint64(0xFFFF)) / 65536.0 * spread


@njit(inline="always")
def _deliver(w, v, qk, qs, qsrc, qval, n, seq, rng, s):
    """One popped entry: a 500-wide row and 1-2 pushes, or a 10-wide readout row."""
    if s < 500:
        row = w[s]
        nhit = 0
        for j in range(500):
            x = v[j] + row[j]
            v[j] = x
            nhit += x > 1.0
        rng = _lcg(rng)
        m = 1 + int((rng >> np.uint64(33)) & np.uint64(1))
        for _ in range(m):
            rng = _lcg(rng)
            key = _key(rng, 0.15)
            tgt = 500 + _below(rng, 500)
            _heap_push(qk, qs, qsrc, qval, n, key, seq, tgt, 1.0)
            n += 1
            seq += 1
        v[600] += nhit
    else:
        row = w[s - 500]
        hit = 0
        for j in range(10):
            x = v[600 + j] + row[j]
            v[600 + j] = x
            hit += x > 1.0
        v[610] += hit
    return n, seq, rng


@njit(inline="always")
def _step(w, v, qk, qs, qsrc, qval, n, seq, rng):
    s, _ = _heap_pop(qk, qs, qsrc, qval, n)
    return _deliver(w, v, qk, qs, qsrc, qval, n - 1, seq, rng, s)


@njit
def _burst(qk, qs, qsrc, qval, n, seq, rng):
    for _ in range(51):
        rng = _lcg(rng)
        key = _key(rng, 1.0)
        _heap_push(qk, qs, qsrc, qval, n, key, seq, _below(rng, 500), 1.0)
        n += 1
        seq += 1
    return n, seq, rng


@njit
def run_single(w, v, q, timesteps):
    qk, qs, qsrc, qval = q
    n = 0
    seq = 0
    rng = np.uint64(12345)
    steps = 0
    pending = 0
    for _ in range(timesteps):
        n, seq, rng = _burst(qk, qs, qsrc, qval, n, seq, rng)
        while n > 0:
            pending += n
            n, seq, rng = _step(w, v, qk, qs, qsrc, qval, n, seq, rng)
            steps += 1
    return steps, pending / steps


@njit
def run_two(w, va, qa, vb, qb, timesteps, pipelined):
    ka, sa, srca, vala = qa
    kb, sb, srcb, valb = qb
    na = nb = 0
    seqa = seqb = 0
    ra = np.uint64(12345)
    rb = np.uint64(999)
    steps = 0
    for _ in range(timesteps):
        na, seqa, ra = _burst(ka, sa, srca, vala, na, seqa, ra)
        nb, seqb, rb = _burst(kb, sb, srcb, valb, nb, seqb, rb)
        while na > 0 or nb > 0:
            if pipelined and na > 0 and nb > 0:
                xa, _ = _heap_pop(ka, sa, srca, vala, na)
                xb, _ = _heap_pop(kb, sb, srcb, valb, nb)
                na, seqa, ra = _deliver(w, va, ka, sa, srca, vala, na - 1, seqa, ra, xa)
                nb, seqb, rb = _deliver(w, vb, kb, sb, srcb, valb, nb - 1, seqb, rb, xb)
                steps += 2
                continue
            if na > 0:
                na, seqa, ra = _step(w, va, ka, sa, srca, vala, na, seqa, ra)
                steps += 1
            if nb > 0:
                nb, seqb, rb = _step(w, vb, kb, sb, srcb, valb, nb, seqb, rb)
                steps += 1
    return steps


def _queue() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(4096), np.empty(4096, np.int64), np.empty(4096, np.int64), np.empty(4096)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timesteps", type=int, default=2000, help="timesteps per sample")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    w = (np.random.default_rng(0).standard_normal((500, 500)) * 0.01).astype(np.float32)
    va, vb = np.zeros(700), np.zeros(700)
    qa, qb = _queue(), _queue()
    t0 = time.perf_counter()
    run_single(w, va, qa, 2)
    run_two(w, va, qa, vb, qb, 2, False)
    print(f"compile: {time.perf_counter() - t0:.1f} s")
    half = args.timesteps // 2
    loops = {
        "single": lambda: run_single(w, va, qa, args.timesteps)[0],
        "alternate": lambda: run_two(w, va, qa, vb, qb, half, False),
        "pipelined": lambda: run_two(w, va, qa, vb, qb, half, True),
    }
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, fn in loops.items():  # interleaved rounds: drift hits every loop alike
            t0 = time.perf_counter()
            steps = fn()
            times[name].append(1e9 * (time.perf_counter() - t0) / steps)
    print(f"mean entries pending per pop: {run_single(w, va, qa, 200)[1]:.1f}")
    print("| loop | ns per step (median) | vs single |")
    print("|---|---:|---:|")
    base = statistics.median(times["single"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.1f} | {med / base:.3f} |")


if __name__ == "__main__":
    main()
