"""Engine throughput on the reference workload (issue #2 / #5 targets).

784-500-500-10 fully connected LIF network with random weights (std 0.10 and 0.11,
~10% activity per layer), 100 timesteps of 10% Bernoulli input, every policy,
F in {1, 8, 64, inf}; one thread, median of several runs (``asyncsim.bench.benchmark``,
the same workload as ``asyncsim bench``). Compile time is reported apart: cold (empty numba
cache, fresh process) and warm (fresh process loading the cache).

    python benchmarks/bench_engine.py            # prints a markdown table
    python benchmarks/bench_engine.py --quick    # fewer samples / repeats

Writes benchmarks/results/engine.json and engine.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asyncsim.bench import benchmark, write_results

HERE = Path(__file__).resolve().parent
MACHINE_LIMIT = 4e9  # dense weight-row accumulation, synaptic events/s per core (brief)

_STARTUP = """
import time
t0 = time.perf_counter()
import numpy as np
import asyncsim as A
t1 = time.perf_counter()
net = A.Network(2, [A.Population("o", 2)], [A.Dense("w", "input", "o", np.ones((2, 2)))])
A.Simulator(net, "fifo", threads=1).run(np.ones((1, 2, 2)))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def startup_times() -> dict[str, float]:
    """Import time and first-run (compile or cache load) time in fresh processes."""
    out = {}
    with tempfile.TemporaryDirectory() as cold_dir:
        for label, env in (("cold", {"NUMBA_CACHE_DIR": cold_dir}), ("warm", {})):
            res = subprocess.run(
                [sys.executable, "-c", _STARTUP],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **env},
            )
            imp, first = map(float, res.stdout.split())
            out[f"{label}_import_s"] = imp
            out[f"{label}_first_run_s"] = first
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-startup", action="store_true", help="skip the compile-time probe")
    args = ap.parse_args(argv)
    samples = args.samples or (20 if args.quick else 60)
    repeats = args.repeats or (3 if args.quick else 5)
    rows = benchmark(
        samples=samples,
        repeats=repeats,
        threads=args.threads,
        group_sizes=(1, 8, 64, "inf"),
        progress=lambda d, t: print(f"\r{d}/{t} runs", end="", file=sys.stderr, flush=True),
    )
    print(file=sys.stderr)
    startup = {} if args.no_startup else startup_times()
    meta = {
        "workload": "784-500-500-10 FC LIF, 100 timesteps, 10% Bernoulli input",
        "threads": args.threads,
        "samples": samples,
        "repeats": repeats,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numba": __import__("numba").__version__,
        "date": time.strftime("%Y-%m-%d"),
        **startup,
    }
    out_dir = HERE / "results"
    write_results(out_dir / "engine.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"Workload: {meta['workload']}; {args.threads} thread(s); median of {repeats} runs of "
        f"{samples} samples; {meta['machine']}; {meta['date']}.",
        "",
        "| policy | F | samples/s | synaptic events/s | of 4 G/s limit | spikes/sample |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['group_size']} | {r['samples_per_s']:.0f} | "
            f"{r['synops_per_s'] / 1e9:.2f} G | "
            f"{100 * r['synops_per_s'] / args.threads / MACHINE_LIMIT:.0f}% | "
            f"{r['spikes_per_sample']:.0f} |"
        )
    if startup:
        lines += [
            "",
            f"Start-up: import {startup['warm_import_s']:.2f} s; first run with an empty numba "
            f"cache (compile) {startup['cold_first_run_s']:.1f} s; with the cache "
            f"{startup['warm_first_run_s']:.2f} s.",
        ]
    write_results(out_dir / "engine.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
