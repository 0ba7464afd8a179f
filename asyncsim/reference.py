"""A slow, plain-Python reference engine: the executable specification.

It reads the :class:`~asyncsim.network.Network` description directly (naive loops over
dense, sparse and convolution weights; no compiled arrays, no channels-last layout, no
refractory hold trick, no touched-segment bookkeeping) and follows ``docs/semantics.md``
step by step with a :mod:`heapq` queue of ``(key, seq)`` entries. The numba engine must
produce the same spike sequence and the same potentials for fifo, momentum and layered,
and the same statistics for random (its generator is Python's :mod:`random`, so random
runs are statistically, not bitwise, comparable).

Neurons are identified by their global logical id (population offset in declaration
order + flat C-order index), as in the public results. Cost: O(synapses) Python work per
delivered spike and O(N) per forward step; use it on networks of tens of neurons.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import numpy as np

from .network import INPUT, Conv2d, Dense, Network, OneToOne, Sparse
from .policies import STOP_OUTPUT, STOP_STEPS, Policy, StopRule, parse_group_size


@dataclass
class RefResult:
    """What the reference engine records for one sample."""

    events: list[tuple[int, int, int, int]] = field(default_factory=list)  # t, step, gid, n
    potentials: list[list[float]] = field(default_factory=list)  # per timestep, all gids
    steps: list[int] = field(default_factory=list)
    spikes: list[list[int]] = field(default_factory=list)  # per timestep, per population
    synops: list[list[int]] = field(default_factory=list)
    input_synops: list[list[int]] = field(default_factory=list)
    updates: list[list[int]] = field(default_factory=list)
    lat_first: list[tuple[int, int, int]] = field(default_factory=list)
    peak_queue: list[int] = field(default_factory=list)


def _f32(x: float) -> float:
    return float(np.float32(x))


class ReferenceEngine:
    """Reference simulator for one network and one set of run options."""

    def __init__(
        self,
        net: Network,
        policy: str | Policy = "fifo",
        group_size: int | str | float = 1,
        stop: str = "drain",
        queued_input: bool = False,
        output_in_group: bool = False,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.net = net
        self.policy = Policy.parse(policy)
        self.f = parse_group_size(group_size)
        self.stop = StopRule.parse(stop)
        self.queued_input = queued_input
        self.output_in_group = output_in_group
        self.jitter = jitter
        self.rng = random.Random(seed)
        pops = net.populations
        self.offset: dict[str, int] = {}
        gid = 0
        self.pop_of: list[int] = []
        for i, p in enumerate(pops):
            self.offset[p.name] = gid
            gid += p.size
            self.pop_of += [i] * p.size
        self.n = gid
        self.n_in = net.n_inputs

        def flat(attr: str, default: float) -> list[float]:
            out: list[float] = []
            for p in pops:
                val = getattr(p, attr)
                out += [default] * p.size if val is None else [float(x) for x in val.ravel()]
            return out

        self.theta = flat("threshold", 0.0)
        self.beta = flat("beta", 1.0)
        self.alpha = flat("alpha", 0.0)
        self.syn_gain = flat("syn_gain", 0.0)
        self.v_reset = flat("v_reset", 0.0)
        self.bias = flat("bias", 0.0)
        self.syn_bias = flat("syn_bias", 0.0)
        self.v_init = flat("v_init", 0.0)
        self.has_syn = [p.alpha is not None for p in pops]
        self.v_direct = [p.alpha is None or p.syn_immediate for p in pops]
        self.driven = [
            bool(np.any(p.bias != 0))
            or (p.alpha is not None and bool(np.any(p.syn_gain != 0) or np.any(p.syn_bias != 0)))
            for p in pops
        ]
        self.pops = pops
        # synapses[source] = list of (target gid, weight, delay, target population)
        # source: ("in", channel) or ("n", gid); projection order = summation order
        self.synapses: dict[tuple[str, int], list[tuple[int, float, int, int]]] = {}
        # summation order within one source: contiguous projections (dense, convolution)
        # before sparse / one-to-one ones, each group in projection order (as compiled)
        ordered = [pr for pr in net.projections if not isinstance(pr, (Sparse, OneToOne))]
        ordered += [pr for pr in net.projections if isinstance(pr, (Sparse, OneToOne))]
        for pr in ordered:
            self._add_projection(pr)
        self.topo = [
            next(i for i, p in enumerate(pops) if p.name == name)
            for name in net.topological_order()
        ]
        self.out_pop = next(i for i, p in enumerate(pops) if p.name == net.output)

    # ------------------------------------------------------------------ wiring
    def _src_key(self, source: str, index: int) -> tuple[str, int]:
        if source == INPUT:
            return ("in", index)
        return ("n", self.offset[source] + index)

    def _connect(self, pr, s: int, t: int, w: float) -> None:
        tp = next(i for i, p in enumerate(self.pops) if p.name == pr.target)
        key = self._src_key(pr.source, s)
        self.synapses.setdefault(key, []).append(
            (self.offset[pr.target] + t, _f32(w), int(pr.delay), tp)
        )

    def _add_projection(self, pr) -> None:
        if isinstance(pr, Dense):
            n_tgt, n_src = pr.weight.shape
            for s in range(n_src):
                for t in range(n_tgt):
                    self._connect(pr, s, t, pr.weight[t, s])
        elif isinstance(pr, Sparse):
            for s, t, w in zip(pr.source_index, pr.target_index, pr.weight, strict=True):
                self._connect(pr, int(s), int(t), w)
        elif isinstance(pr, OneToOne):
            n = self.net.population(pr.target).size
            w = np.broadcast_to(pr.weight.ravel(), (n,))
            for i in range(n):
                self._connect(pr, i, i, w[i])
        elif isinstance(pr, Conv2d):
            c_in, h, wd = self.net.source_shape(pr.source)
            c_out, cig, kh, kw = pr.weight.shape
            _, ho, wo = pr.output_shape((c_in, h, wd))
            top, _, left, _ = pr.padding_lrtb((h, wd))
            cog = c_out // pr.groups
            # enumerate per source so the per-source order is by (ky, kx), like the engine
            pairs: list[tuple[int, int, int, float]] = []
            for co in range(c_out):
                gi = co // cog
                for cl in range(cig):
                    ci = gi * cig + cl
                    for oy in range(ho):
                        for ox in range(wo):
                            for ky in range(kh):
                                iy = oy * pr.stride[0] - top + ky * pr.dilation[0]
                                if not 0 <= iy < h:
                                    continue
                                for kx in range(kw):
                                    ix = ox * pr.stride[1] - left + kx * pr.dilation[1]
                                    if not 0 <= ix < wd:
                                        continue
                                    s = (ci * h + iy) * wd + ix
                                    t = (co * ho + oy) * wo + ox
                                    pairs.append((s, t, ky, float(pr.weight[co, cl, ky, kx])))
            for s, t, _ky, w in sorted(pairs, key=lambda q: q[0]):
                self._connect(pr, s, t, w)
        else:  # pragma: no cover
            raise TypeError(type(pr))

    # ------------------------------------------------------------------ running
    def run(self, frames: np.ndarray, label: int = -1) -> RefResult:
        """Simulate one sample; ``frames`` shaped (T, *input_shape)."""
        frames = np.asarray(frames, dtype=np.float64).reshape(len(frames), self.n_in)
        run = _SampleRun(self)
        for t in range(len(frames)):
            run.timestep(t, frames[t])
        return run.res

    def _has_fanout(self, g: int) -> bool:
        return bool(self.synapses.get(("n", g)))


class _SampleRun:
    """State of one sample in the reference engine (plain lists and dicts)."""

    def __init__(self, eng: ReferenceEngine) -> None:
        self.e = eng
        n = eng.n
        self.v = list(eng.v_init)
        self.syn = [0.0] * n
        self.refractory_in = [-(2**62)] * n  # timestep in which the neuron is refractory
        self.spiked_in = [-(2**62)] * n
        self.ring: dict[int, dict[int, float]] = {}  # timestep -> gid -> summed current
        self.queue: list[tuple[float, int, tuple[str, int], float]] = []  # heap
        self.pool: list[tuple[tuple[str, int], float]] = []  # random policy
        self.seq = 0
        self.res = RefResult()
        self.t = 0
        self.touched: set[int] = set()

    def pending(self) -> int:
        return len(self.pool) if self.e.policy == Policy.RANDOM else len(self.queue)

    def deliver(self, src: tuple[str, int], val: float, count_row: list[int]) -> int:
        """Add ``val * w`` to every target of ``src``; returns synaptic operations."""
        e, t = self.e, self.t
        ops = 0
        spikes = int(val) if src[0] == "n" else 1  # a network event of count n = n spikes
        for g, w, d, tp in e.synapses.get(src, []):
            if w != 0.0:
                count_row[tp] += spikes
                ops += spikes
            if d > 0:
                slot = self.ring.setdefault(t + d, {})
                slot[g] = slot.get(g, 0.0) + val * w
                continue
            if self.refractory_in[g] == t:
                continue  # a refractory neuron ignores current for the rest of the timestep
            if e.has_syn[tp]:
                self.syn[g] += val * w
            if e.v_direct[tp]:
                self.v[g] += val * w
                self.touched.add(g)
        return ops

    def above(self, g: int) -> bool:
        pop = self.e.pops[self.e.pop_of[g]]
        if pop.threshold_op == ">=":
            return self.v[g] >= self.e.theta[g]
        return self.v[g] > self.e.theta[g]

    def fire(self, g: int) -> tuple[int, int, float]:
        """Spike of neuron g: returns (g, spike count, potential at the spike)."""
        e = self.e
        pop = e.pops[e.pop_of[g]]
        vs = self.v[g]
        count = max(1, math.floor(vs / e.theta[g])) if pop.multi_spike else 1
        if not pop.reset_delay:
            if pop.reset == "subtract":
                self.v[g] = vs - count * e.theta[g]
            else:
                self.v[g] = e.v_reset[g]
        self.spiked_in[g] = self.t
        if pop.refractory:
            self.refractory_in[g] = self.t
        return g, count, vs

    def push(self, src: tuple[str, int], val: float, key: float) -> None:
        if self.e.policy == Policy.RANDOM:
            self.pool.append((src, val))
        else:
            heapq.heappush(self.queue, (key, self.seq, src, val))
        self.seq += 1

    def pop(self) -> tuple[tuple[str, int], float]:
        if self.e.policy == Policy.RANDOM:
            return self.pool.pop(self.e.rng.randrange(len(self.pool)))
        _, _, src, val = heapq.heappop(self.queue)
        return src, val

    def timestep(self, t: int, x: np.ndarray) -> None:
        e = self.e
        self.t = t
        n, npop = e.n, len(e.pops)
        v, syn = self.v, self.syn
        layered = e.policy == Policy.LAYERED
        spikes = [0] * npop
        synops = [0] * npop
        in_synops = [0] * npop
        updates = [0] * npop
        spikes_ts = 0
        synops_ts = 0
        lat_first = (-1, -1, -1)
        first_out_step = -1
        peak = self.pending()

        # 1. timestep start: delayed reset, leak, synaptic state, bias
        for g in range(n):
            p = e.pop_of[g]
            pop = e.pops[p]
            fired = pop.reset_delay and self.spiked_in[g] == t - 1
            x_g = v[g]
            if fired and pop.reset == "zero":
                x_g = e.v_reset[g]
            x_g = e.beta[g] * x_g
            if e.has_syn[p]:
                x_g += e.syn_gain[g] * syn[g]
                syn[g] = e.alpha[g] * syn[g]
            if fired and pop.reset == "subtract":
                x_g -= e.theta[g]
            x_g = x_g + e.bias[g]
            if e.has_syn[p]:  # a constant current into the synaptic state
                syn[g] += e.syn_bias[g]
                if e.v_direct[p]:
                    x_g += e.syn_bias[g]
            v[g] = x_g
        self.touched = {g for g in range(n) if e.driven[e.pop_of[g]]}
        if e.policy == Policy.MOMENTUM and self.queue:
            # v_spike is cleared at the timestep start: carried spikes rank as v = 0
            self.queue = [
                (0.0 if src[0] == "n" else k, s, src, val) for (k, s, src, val) in self.queue
            ]
            heapq.heapify(self.queue)

        # 2. injection: delayed currents due now, then the input frame
        for g, c in sorted(self.ring.pop(t, {}).items()):
            p = e.pop_of[g]
            if e.has_syn[p]:
                syn[g] += c
            if e.v_direct[p]:
                v[g] += c
                self.touched.add(g)
        for c in range(e.n_in):
            xc = float(x[c])
            if xc == 0.0:
                continue
            if e.queued_input and not layered:
                self.push(("in", c), xc, -np.inf if e.policy == Policy.MOMENTUM else 0.0)
            else:
                synops_ts += self.deliver(("in", c), xc, in_synops)
        peak = max(peak, self.pending())

        # 3. forward steps
        step = 0
        while True:
            step += 1
            new: list[tuple[int, int, float]] = []
            if layered:
                p = e.topo[step - 1]
                a = e.offset[e.pops[p].name]
                updates[p] += e.pops[p].size
                for g in range(a, a + e.pops[p].size):
                    if self.above(g):
                        new.append(self.fire(g))
            else:
                if step > 1:
                    self.touched = set()
                    for _ in range(min(e.f, self.pending())):
                        src, val = self.pop()
                        row = in_synops if src[0] == "in" else synops
                        synops_ts += self.deliver(src, val, row)
                for g in sorted(self.touched):
                    if self.refractory_in[g] == t:
                        continue
                    updates[e.pop_of[g]] += 1
                    if self.above(g):
                        new.append(self.fire(g))
            new.sort()
            n_out = 0
            for g, count, vs in new:
                p = e.pop_of[g]
                spikes[p] += count
                spikes_ts += count
                self.res.events.append((t, step, g, count))
                if p == e.out_pop:
                    n_out += count
                if layered or (not e.output_in_group and not e._has_fanout(g)):
                    continue
                key = -vs if e.policy == Policy.MOMENTUM else 0.0
                if e.policy == Policy.MOMENTUM and e.jitter > 0:
                    key -= e.jitter * e.rng.random()
                self.push(("n", g), float(count), key)
            peak = max(peak, self.pending(), len(new) if layered else 0)
            if n_out and first_out_step < 0:
                first_out_step = step
                lat_first = (spikes_ts, step, synops_ts)
            if layered:
                for g, count, _ in new:
                    synops_ts += self.deliver(("n", g), float(count), synops)
                if step >= npop:
                    break
                continue
            if e.stop.kind == STOP_OUTPUT and first_out_step >= 0:
                if step - first_out_step >= e.stop.value:
                    break
            if e.stop.kind == STOP_STEPS and step >= e.stop.value:
                break
            if self.pending() == 0:
                break
        r = self.res
        r.potentials.append(list(v))
        r.steps.append(step)
        r.spikes.append(spikes)
        r.synops.append(synops)
        r.input_synops.append(in_synops)
        r.updates.append(updates)
        r.lat_first.append(lat_first)
        r.peak_queue.append(peak)
