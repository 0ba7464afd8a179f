"""Engine throughput on this machine: a random fully connected LIF network.

>>> rows = benchmark(timesteps=50, samples=8)          # doctest: +SKIP
>>> print(format_bench(rows))                          # doctest: +SKIP

The network is ``784-500-500-10`` (configurable) fully connected LIF (threshold 1,
beta 0.9, reset to zero) with random weights scaled to about 10 % activity per layer;
input frames are Bernoulli(``rate``) spikes. Both are seeded, so every machine runs the
same workload; with the defaults it is the reference workload of
``benchmarks/bench_engine.py``.

Times are wall-clock medians over ``repeats`` runs of all samples. Compilation is
reported apart: ``compile_s`` is :func:`asyncsim.compile_network` (numpy), ``warmup_s``
the first kernel call in this process (loading numba's on-disk cache, or compiling on the
very first use, ~25 s). ``synops_per_s`` counts every synaptic event (network and input
deliveries) per second. Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write
from .compile import compile_network
from .errors import AsyncsimError
from .network import Dense, Network, Population, Projection
from .policies import format_group_size, parse_group_size
from .simulator import Simulator

DEFAULT_SIZES = (784, 500, 500, 10)
DEFAULT_POLICIES = ("layered", "fifo", "momentum", "random")
DEFAULT_GROUP_SIZES: tuple[int | str, ...] = (1, "inf")


def bench_network(sizes: Sequence[int] = DEFAULT_SIZES, seed: int = 0) -> Network:
    """The random fully connected benchmark network (``sizes[0]`` inputs).

    Weights are ``N(0, std^2)`` with ``std = 0.10 * sqrt(784 / n_src)`` for the first
    projection and ``0.11 * sqrt(500 / n_src)`` for the others, drawn in order from
    ``default_rng(seed)``: for the default sizes this is exactly the reference workload of
    ``benchmarks/bench_engine.py`` (about 10 % activity per layer).
    """
    rng = np.random.default_rng(seed)
    n_pops = len(sizes) - 1
    pops: list[Population] = []
    projs: list[Projection] = []
    src = "input"
    for i, (n_src, n_tgt) in enumerate(itertools.pairwise(sizes)):
        name = "out" if i == n_pops - 1 else f"h{i + 1}"
        pops.append(Population(name, int(n_tgt), threshold=1.0, beta=0.9))
        std = 0.10 * np.sqrt(784 / n_src) if i == 0 else 0.11 * np.sqrt(500 / n_src)
        projs.append(Dense(f"fc{i + 1}", src, name, rng.normal(0.0, std, (int(n_tgt), int(n_src)))))
        src = name
    return Network(int(sizes[0]), pops, projs, name="fc-" + "-".join(map(str, sizes)))


def bench_inputs(
    samples: int, timesteps: int, n_inputs: int, rate: float = 0.1, seed: int = 1
) -> np.ndarray:
    """Bernoulli(``rate``) spike frames ``(samples, timesteps, n_inputs)`` as uint8
    (``benchmarks/bench_engine.py``'s reference inputs for the defaults)."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, timesteps, n_inputs)) < rate).astype(np.uint8)


def time_runs(
    sim: Simulator,
    frames: np.ndarray,
    repeats: int,
    warm: bool = True,
    labels: np.ndarray | None = None,
) -> tuple[list[float], Any]:
    """Wall-clock seconds of ``repeats`` runs of ``sim.run(frames, labels)`` (after one
    untimed one-sample run when ``warm``, so numba's compile/cache load is not timed), and
    the last result."""
    if warm:
        sim.run(frames[:1], None if labels is None else labels[:1])
    times = []
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sim.run(frames, labels)
        times.append(time.perf_counter() - t0)
    return times, res


def benchmark(
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    timesteps: int = 100,
    samples: int = 16,
    policies: Sequence[str] = DEFAULT_POLICIES,
    group_sizes: Sequence[int | str] = DEFAULT_GROUP_SIZES,
    repeats: int = 3,
    rate: float = 0.1,
    threads: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure throughput for every policy x F (layered runs once, F does not apply).

    Returns one dict per configuration: ``policy, group_size, samples, timesteps,
    threads, repeats, compile_s, warmup_s, median_s, min_s, max_s, samples_per_s,
    timesteps_per_s, synops_per_s, spikes_per_s, spikes_per_sample, synops_per_sample,
    spike_density``. ``progress(done, total)`` is called after each timed run.
    """
    if samples < 1 or timesteps < 1 or repeats < 1:
        raise AsyncsimError(
            f"benchmark needs samples, timesteps and repeats >= 1 "
            f"(got {samples}, {timesteps}, {repeats})"
        )
    net = bench_network(sizes, seed=seed)
    t0 = time.perf_counter()
    compiled = compile_network(net)
    compile_s = time.perf_counter() - t0
    frames = bench_inputs(samples, timesteps, compiled.n_inputs, rate, seed + 1)
    n_threads = threads or os.cpu_count() or 1

    t0 = time.perf_counter()
    Simulator(compiled, policy="fifo", threads=1).run(frames[:1, :2])
    warmup_s = time.perf_counter() - t0

    configs: list[tuple[str, str]] = []
    for pol in policies:
        if pol == "layered":
            configs.append(("layered", "-"))
        else:
            configs.extend((pol, format_group_size(parse_group_size(f))) for f in group_sizes)
    total = len(configs) * repeats
    done = 0
    rows = []
    for pol, f in configs:
        sim = Simulator(
            compiled, policy=pol, group_size=1 if f == "-" else f, seed=seed, threads=threads
        )
        times, res = time_runs(sim, frames, repeats, warm=False)
        done += repeats
        if progress is not None:
            progress(done, total)
        med = float(np.median(times))
        syn = float(res.synops.sum() + res.input_synops.sum())
        spk = float(res.spikes.sum())
        rows.append(
            dict(
                policy=pol,
                group_size=f,
                samples=samples,
                timesteps=timesteps,
                threads=n_threads,
                repeats=repeats,
                compile_s=compile_s,
                warmup_s=warmup_s,
                median_s=med,
                min_s=float(min(times)),
                max_s=float(max(times)),
                samples_per_s=samples / med,
                timesteps_per_s=samples * timesteps / med,
                synops_per_s=syn / med,
                spikes_per_s=spk / med,
                spikes_per_sample=spk / samples,
                synops_per_sample=syn / samples,
                spike_density=res.spike_density(),
            )
        )
    return rows


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def format_bench(rows: Sequence[dict[str, Any]]) -> str:
    """The benchmark rows as an aligned text table (plus the compile times)."""
    if not rows:
        return "(no benchmark rows)"
    head = ["policy", "F", "samples/s", "synops/s", "spikes/s", "median s", "density"]
    body = [
        [
            r["policy"],
            str(r["group_size"]),
            f"{r['samples_per_s']:,.0f}"
            if r["samples_per_s"] >= 100
            else f"{r['samples_per_s']:.3g}",
            _si(r["synops_per_s"]),
            _si(r["spikes_per_s"]),
            f"{r['median_s']:.3f}",
            f"{r['spike_density']:.3f}",
        ]
        for r in rows
    ]
    r0 = rows[0]
    title = (
        f"{r0['samples']} samples x {r0['timesteps']} timesteps, {r0['threads']} thread(s), "
        f"median of {r0['repeats']}; compile {r0['compile_s']:.3f} s, "
        f"kernel warm-up {r0['warmup_s']:.2f} s (not included)"
    )
    return title + "\n" + format_table(head, body)


def format_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Left-align the first column, right-align the rest."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = []
    for i, r in enumerate([list(head), *[list(b) for b in body]]):
        cells = [
            str(c).ljust(w) if j == 0 else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(path: str | os.PathLike[str], text: str) -> Path:
    """Replace the benchmark result file ``path`` with ``text`` atomically (a temporary
    file in the same directory, then a rename), creating its directory: an interrupted
    benchmark leaves the previous results whole, never half a table."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    return atomic_write(p, write, overwrite=True)


__all__ = [
    "DEFAULT_SIZES",
    "bench_inputs",
    "bench_network",
    "benchmark",
    "format_bench",
    "format_table",
    "write_results",
]
