"""The public simulator: validates options and inputs, allocates, calls the kernels.

>>> sim = Simulator(net, policy="momentum", group_size=1, seed=0)   # doctest: +SKIP
>>> res = sim.run(frames, labels)                                  # doctest: +SKIP
>>> res.accuracy, res.spikes_per_sample()                          # doctest: +SKIP

Determinism: sample ``i`` draws its random numbers (random policy, momentum jitter,
refractory and input dropout) from its own stream, seeded with
``SeedSequence([seed, sample_ids[i]])``. Results therefore do not depend on how many
samples run together, in which order, or on how many threads run them; to reproduce
sample 17 of a big run alone, pass ``sample_ids=[17]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import _kernels as K
from .compile import CompiledNetwork, compile_network
from .errors import AsyncsimError
from .network import Network
from .policies import (
    INF_GROUP,
    STOP_DRAIN,
    Policy,
    StopRule,
    format_group_size,
    parse_group_size,
    parse_input_mode,
)
from .result import EVENT_DTYPE, Result, decide

ProgressFn = Callable[[int, int], None]


def _sample_seed(seed: int, sample_id: int) -> int:
    return int(np.random.SeedSequence([seed, sample_id]).generate_state(1, np.uint64)[0])


class Simulator:
    """Run a network spike by spike under one scheduling policy.

    Args:
        network: a :class:`~asyncsim.Network` or an already compiled network.
        policy: ``"fifo"``, ``"momentum"``, ``"random"`` or ``"layered"``.
        group_size: forward group size F (spikes delivered per forward step), an int >= 1
            or ``"inf"``. Ignored by ``layered``.
        seed: non-negative integer seeding every random choice.
        stop: ``"drain"``, ``"output"``, ``"output:K"`` or ``"steps:N"``.
        input_mode: ``"prioritised"`` (all input events of a frame are delivered before any
            network spike) or ``"queued"`` (inputs compete with network spikes for F).
        jitter: momentum tie-breaking noise lambda (reference default 1e-6; ours 0, so ties
            resolve by arrival order).
        output_in_group: reference-compatibility switch: spikes of neurons without
            outgoing synapses (the output layer) are queued and take forward-group slots.
        input_dropout: probability that a nonzero input entry of a frame is dropped.
        record_events: keep every spike as (timestep, step, population, index).
        reactivity: count currents received before each spike (small extra cost).
        threads: worker threads over samples (default: all cores).
    """

    def __init__(
        self,
        network: Network | CompiledNetwork,
        policy: str | Policy = "fifo",
        group_size: int | float | str = 1,
        seed: int = 0,
        stop: str | StopRule = "drain",
        input_mode: str = "prioritised",
        jitter: float = 0.0,
        output_in_group: bool = False,
        input_dropout: float = 0.0,
        record_events: bool = False,
        reactivity: bool = True,
        threads: int | None = None,
    ) -> None:
        if isinstance(network, Network):
            network = compile_network(network)
        if not isinstance(network, CompiledNetwork):
            raise AsyncsimError(
                f"network must be an asyncsim Network or CompiledNetwork, got "
                f"{type(network).__name__}; load a file with asyncsim.load(path)"
            )
        self.compiled = network
        self.policy = Policy.parse(policy)
        self.group_size = parse_group_size(group_size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise AsyncsimError(f"seed {seed!r} must be a non-negative integer")
        self.seed = int(seed)
        self.stop = StopRule.parse(stop)
        self.queued_input = parse_input_mode(input_mode)
        if self.policy == Policy.LAYERED:
            if self.stop.kind != STOP_DRAIN:
                raise AsyncsimError(
                    f"stop rule '{self.stop}' applies to asynchronous policies; the layered "
                    "baseline always evaluates every layer once per timestep (use 'drain')"
                )
            if self.queued_input:
                raise AsyncsimError(
                    "input_mode 'queued' applies to asynchronous policies; layered execution "
                    "integrates the whole input frame first (use 'prioritised')"
                )
        jitter = float(jitter)
        if not np.isfinite(jitter) or jitter < 0:
            raise AsyncsimError(f"jitter {jitter!r} must be a finite number >= 0")
        self.jitter = jitter
        p = float(input_dropout)
        if not 0.0 <= p <= 1.0:
            raise AsyncsimError(f"input_dropout {input_dropout!r} must be in [0, 1]")
        self.input_dropout = p
        self.output_in_group = bool(output_in_group)
        self.record_events = bool(record_events)
        self.reactivity = bool(reactivity)
        if threads is None:
            threads = os.cpu_count() or 1
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise AsyncsimError(f"threads {threads!r} must be an integer >= 1")
        self.threads = int(threads)
        self._params = K.Params(
            policy=int(self.policy),
            group_size=int(self.group_size),
            queued_input=self.queued_input,
            stop_kind=int(self.stop.kind),
            stop_value=int(self.stop.value),
            jitter=self.jitter,
            queue_sinks=self.output_in_group,
            record_events=self.record_events,
            reactivity=self.reactivity,
            input_dropout=self.input_dropout,
        )

    # ------------------------------------------------------------------ options
    def options(self) -> dict[str, Any]:
        """The run options as plain values (recorded in every result)."""
        return dict(
            policy=self.policy.label,
            group_size=format_group_size(self.group_size),
            seed=self.seed,
            stop=str(self.stop),
            input_mode="queued" if self.queued_input else "prioritised",
            jitter=self.jitter,
            output_in_group=self.output_in_group,
            input_dropout=self.input_dropout,
        )

    @property
    def network(self) -> Network:
        return self.compiled.network

    # ------------------------------------------------------------------ inputs
    def _frames(self, inputs: Any) -> np.ndarray:
        """Validate and view inputs as (S, T, n_in) without copying the data."""
        net = self.compiled.network
        try:
            arr = np.asarray(inputs)
        except Exception as exc:  # ragged lists and the like
            raise AsyncsimError(f"inputs could not be read as an array: {exc}") from None
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise AsyncsimError(
                f"inputs have dtype {arr.dtype}; give numbers (event counts or currents)"
            )
        shape = tuple(net.input_shape)  # type: ignore[arg-type]
        n_in = self.compiled.n_inputs
        expected = f"(samples, timesteps, {', '.join(map(str, shape))})"
        if arr.ndim < 3:
            raise AsyncsimError(
                f"inputs shape {arr.shape}: expected {expected}; for one sample use inputs[None]"
            )
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise AsyncsimError(
                f"inputs shape {arr.shape} is empty: need at least one sample and one timestep"
            )
        frame = arr.shape[2:]
        if frame != shape and not (len(frame) == 1 and frame[0] == n_in):
            raise AsyncsimError(
                f"inputs shape {arr.shape}: each frame has shape {frame} "
                f"({int(np.prod(frame))} values) but the network input is {shape} "
                f"({n_in} values); expected {expected}"
            )
        arr = arr.reshape(arr.shape[0], arr.shape[1], n_in)
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise AsyncsimError("inputs contain NaN or inf; every value must be finite")
        return arr

    def _labels(self, labels: Any, n: int) -> np.ndarray | None:
        if labels is None:
            return None
        lab = np.asarray(labels)
        if lab.ndim != 1 or lab.shape[0] != n:
            raise AsyncsimError(f"labels shape {lab.shape} must be ({n},), one per sample")
        if lab.size and not np.issubdtype(lab.dtype, np.integer):
            if not np.all(np.mod(lab, 1) == 0):
                raise AsyncsimError("labels must be integer class indices")
        lab = lab.astype(np.int64)
        k = self._n_out()
        if lab.size and (lab.min() < 0 or lab.max() >= k):
            bad = lab[(lab < 0) | (lab >= k)][0]
            raise AsyncsimError(
                f"label {bad} is outside [0, {k}): the output population "
                f"{self.compiled.network.output!r} has {k} neurons"
            )
        return lab

    def _n_out(self) -> int:
        a = self.compiled.arrays
        return int(a.pop_start[a.out_pop + 1] - a.pop_start[a.out_pop])

    def _sample_ids(self, sample_ids: Any, n: int) -> np.ndarray:
        if sample_ids is None:
            return np.arange(n, dtype=np.int64)
        ids = np.asarray(sample_ids)
        if ids.shape != (n,) or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise AsyncsimError(f"sample_ids must be {n} integers, got shape {ids.shape}")
        if ids.size and ids.min() < 0:
            raise AsyncsimError("sample_ids must be >= 0")
        return ids.astype(np.int64)

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Any,
        labels: Any = None,
        sample_ids: Any = None,
        progress: ProgressFn | None = None,
    ) -> Result:
        """Simulate every sample.

        Args:
            inputs: frames shaped ``(samples, timesteps, *input_shape)`` (or with each
                frame flattened) of event counts or input currents.
            labels: optional class per sample (enables accuracy and correct-class latency).
            sample_ids: optional ids choosing each sample's random stream (default 0..S-1).
            progress: optional callback ``(done, total)`` called after each sample.
        """
        frames = self._frames(inputs)
        n_s, n_t, _ = frames.shape
        lab = self._labels(labels, n_s)
        ids = self._sample_ids(sample_ids, n_s)
        a = self.compiled.arrays
        out = K.new_record(a, n_t, n_s)
        ctrs = np.zeros((n_s, K.N_CTR), np.int64)
        events: list[np.ndarray | None] = [None] * n_s
        seeds = np.array([_sample_seed(self.seed, int(i)) for i in ids], dtype=np.uint64)
        labels_arr = np.full(n_s, -1, np.int64) if lab is None else lab

        if self.record_events:
            # one kernel call per sample: each sample has its own event log
            def one(s: int) -> None:
                rec = K.Record(*(arr[s] for arr in out))
                st, _q, ev = self._run_sample(
                    np.ascontiguousarray(frames[s], dtype=np.float64),
                    int(labels_arr[s]),
                    int(ids[s]),
                    rec,
                )
                ctrs[s] = st.ctr
                events[s] = self._events(ev[: st.ctr[K.C_NEV]])

            self._map(one, list(range(n_s)), progress)
        else:
            # batches of samples per kernel call (per-call overhead ~0.5 ms otherwise);
            # the first batch is one sample, run alone to compile or load the engine
            size = _batch_size(n_s, self.threads, n_t * self.compiled.n_inputs)
            bounds = (
                [0, *range(1, n_s, size), n_s] if self.threads > 1 else [*range(0, n_s, size), n_s]
            )

            def batch(i: int) -> None:
                lo, hi = bounds[i], bounds[i + 1]
                rec = K.Record(*(arr[lo:hi] for arr in out))
                K.run_batch(
                    a,
                    self._params,
                    np.ascontiguousarray(frames[lo:hi], dtype=np.float64),
                    labels_arr[lo:hi],
                    seeds[lo:hi],
                    K.new_state(a, 0),
                    rec,
                    ctrs[lo:hi],
                )

            units = list(range(len(bounds) - 1))
            self._map(batch, units, progress, weights=[bounds[u + 1] - bounds[u] for u in units])
        return self._result(out, ctrs, events, lab, ids)

    def _run_sample(
        self,
        frames: np.ndarray,
        label: int,
        sample_id: int,
        rec: K.Record,
        state: tuple[K.SampleState, K.Queue, np.ndarray] | None = None,
    ) -> tuple[K.SampleState, K.Queue, np.ndarray]:
        a = self.compiled.arrays
        if state is None:
            st = K.new_state(a, _sample_seed(self.seed, sample_id))
            q = K.new_queue()
            ev = np.empty((256 if self.record_events else 0, 4), np.int64)
        else:
            st, q, ev = state
        q, ev = K.run_chunk(a, self._params, frames, label, st, q, ev, rec)
        return st, q, ev

    def _map(
        self,
        fn: Callable[[int], None],
        units: list[int],
        progress: ProgressFn | None,
        weights: list[int] | None = None,
    ) -> None:
        """Run ``fn(u)`` for every unit, in ``self.threads`` threads; ``progress`` gets
        (samples done, samples total), a unit standing for ``weights[u]`` samples."""
        w = weights or [1] * len(units)
        total = sum(w)
        done = 0
        if self.threads == 1 or len(units) == 1:
            for u in units:
                fn(u)
                done += w[u]
                if progress is not None:
                    progress(done, total)
            return
        # compile (or load from the cache) once before fanning out
        fn(units[0])
        done = w[units[0]]
        if progress is not None:
            progress(done, total)
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for u, _ in zip(units[1:], pool.map(fn, units[1:]), strict=True):
                done += w[u]
                if progress is not None:
                    progress(done, total)

    def _events(self, ev: np.ndarray) -> np.ndarray:
        c = self.compiled
        out = np.empty(ev.shape[0], dtype=EVENT_DTYPE)
        out["timestep"] = ev[:, 0]
        out["step"] = ev[:, 1]
        j = ev[:, 2]
        out["population"] = c.arrays.pop_of[j]
        out["index"] = c.to_logical[j]
        out["count"] = ev[:, 3]
        return out

    def _result(
        self,
        out: K.Record,
        ctrs: np.ndarray,
        events: list[np.ndarray | None],
        labels: np.ndarray | None,
        ids: np.ndarray,
    ) -> Result:
        c = self.compiled
        net = c.network
        a = c.arrays
        # output neurons back to logical order (a 3-D output population is channels-last)
        op = a.out_pop
        perm = c.logical_order(op) - a.pop_start[op]
        if np.array_equal(perm, np.arange(perm.size)):
            # 1-D output: already in logical order (a gather of (S, T, K) per run cost
            # ~0.6 ms per sample at K = 500, a quarter of the simulation itself)
            out_spikes, out_v = out.out_spikes, out.out_v
        else:
            out_spikes = np.take(out.out_spikes, perm, axis=2)
            out_v = np.take(out.out_v, perm, axis=2)
        first_output = ctrs[:, K.C_FIRST_OUT : K.C_FIRST_OUT + 4].copy()
        first_correct = ctrs[:, K.C_FIRST_COR : K.C_FIRST_COR + 4].copy()
        stable = ctrs[:, K.C_STABLE : K.C_STABLE + 4].copy()
        readout = str(net.readout)
        if readout == "spikes":
            preds = decide(out_spikes.sum(axis=1))
            if labels is not None:
                stable[preds != labels] = -1
            else:
                stable[:] = -1
        else:
            per_t = _readout_scores(out_v, readout)
            decisions = decide(per_t)  # (S, T)
            preds = decisions[:, -1]
            stable = (
                _stable_points(decisions, labels, out)
                if labels is not None
                else (np.full((len(preds), 4), -1, np.int64))
            )
            # latency to a spike means nothing for a non-spiking readout
            first_output[:] = -1
            first_correct[:] = -1
        if labels is None:
            first_correct[:] = -1
        return Result(
            population_names=list(c.names),
            population_sizes=[int(np.prod(s)) for s in c.shapes],
            output=str(net.output),
            readout=readout,
            options=self.options(),
            sample_ids=ids,
            spikes=out.spikes,
            synops=out.synops,
            input_synops=out.input_synops,
            neuron_updates=out.updates,
            forward_steps=out.steps,
            peak_queue=out.peak_queue,
            output_spikes=out_spikes,
            output_potentials=out_v,
            latency_first=out.lat_first,
            latency_correct=out.lat_correct
            if labels is not None
            else np.full_like(out.lat_correct, -1),
            first_output=first_output,
            first_correct=first_correct,
            stable_correct=stable,
            reactivity=out.react,
            predictions=preds,
            labels=labels,
            events=events if self.record_events else None,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ streaming
    def stream(
        self,
        chunks: Iterable[Any],
        label: int = -1,
        sample_id: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Run one long sample fed as successive chunks of frames ``(T_chunk, *input_shape)``.

        Memory stays flat in the sequence length: state is carried between chunks and
        only each chunk's per-timestep counters are yielded (as a dict of arrays).
        """
        state = None
        for chunk in chunks:
            frames = self._frames(np.asarray(chunk)[None])[0]
            rec = K.new_record(self.compiled.arrays, frames.shape[0])
            state = self._run_sample(
                np.ascontiguousarray(frames, dtype=np.float64), label, sample_id, rec, state
            )
            if self.record_events:
                # the event log is per chunk when streaming
                st, _q, ev = state
                yield {**rec._asdict(), "events": self._events(ev[: st.ctr[K.C_NEV]])}
                st.ctr[K.C_NEV] = 0
            else:
                yield rec._asdict()


def _batch_size(n_samples: int, threads: int, values_per_sample: int) -> int:
    """Samples per kernel call: enough to amortise the call, small enough to balance the
    threads (8 batches per thread) and to keep each converted batch under ~64 MB."""
    by_threads = -(-n_samples // (8 * threads))
    by_memory = max(1, (64 << 20) // (8 * max(values_per_sample, 1)))
    return max(1, min(by_threads, by_memory, 256))


def _readout_scores(out_v: np.ndarray, readout: str) -> np.ndarray:
    """Per-timestep decision scores (S, T, K) for a non-spiking readout."""
    if readout == "sum":
        return np.cumsum(out_v, axis=1)
    if readout == "max":
        return np.maximum.accumulate(out_v, axis=1)
    return out_v  # "last"


def _stable_points(decisions: np.ndarray, labels: np.ndarray, out: K.Record) -> np.ndarray:
    """(timestep, spikes, steps, synops) at the end of the timestep from which the
    per-timestep decision is correct until the end; -1 if the final one is wrong."""
    n_s, _n_t = decisions.shape
    ok = decisions == labels[:, None]
    res = np.full((n_s, 4), -1, np.int64)
    cum_spk = np.cumsum(out.spikes.sum(axis=2), axis=1)
    cum_steps = np.cumsum(out.steps, axis=1)
    cum_syn = np.cumsum(out.synops.sum(axis=2) + out.input_synops.sum(axis=2), axis=1)
    for s in range(n_s):
        if not ok[s, -1]:
            continue
        wrong = np.flatnonzero(~ok[s])
        t = int(wrong[-1] + 1) if wrong.size else 0
        res[s] = (t, cum_spk[s, t], cum_steps[s, t], cum_syn[s, t])
    return res


__all__ = ["INF_GROUP", "Simulator"]
