"""Engine throughput on the reference workload (issue #2 / #5 targets).

784-500-500-10 fully connected LIF network with random weights (std 0.10 and 0.11,
giving ~10% activity per layer), 100 timesteps of 10% Bernoulli input, every policy,
F in {1, 8, 64, inf}. One thread, median of several runs; compile time is reported apart
(cold: empty numba cache in a fresh process; warm: a fresh process loading the cache).

    python benchmarks/bench_engine.py            # prints a markdown table
    python benchmarks/bench_engine.py --quick    # fewer samples / repeats

Writes benchmarks/results/engine.json and engine.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import asyncsim as A

HERE = Path(__file__).resolve().parent
MACHINE_LIMIT = 4e9  # dense weight-row accumulation, synaptic events/s per core (brief)


def reference_network(seed: int = 0) -> A.Network:
    rng = np.random.default_rng(seed)
    pops = [
        A.Population("h1", 500, threshold=1.0, beta=0.9),
        A.Population("h2", 500, threshold=1.0, beta=0.9),
        A.Population("out", 10, threshold=1.0, beta=0.9),
    ]
    projs = [
        A.Dense("fc1", "input", "h1", rng.normal(0.0, 0.10, (500, 784))),
        A.Dense("fc2", "h1", "h2", rng.normal(0.0, 0.11, (500, 500))),
        A.Dense("fc3", "h2", "out", rng.normal(0.0, 0.11, (10, 500))),
    ]
    return A.Network(784, pops, projs, name="fc-784-500-500-10")


def reference_inputs(samples: int, timesteps: int = 100, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((samples, timesteps, 784)) < 0.1).astype(np.uint8)


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


def measure(net: A.CompiledNetwork, x: np.ndarray, policy: str, f, repeats: int) -> dict:
    sim = A.Simulator(net, policy, group_size=f, threads=1, seed=0)
    sim.run(x[:1])  # make sure everything is compiled / loaded
    times = []
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = sim.run(x)
        times.append(time.perf_counter() - t0)
    assert res is not None
    med = statistics.median(times)
    events = int(res.synops.sum() + res.input_synops.sum())
    return {
        "policy": policy,
        "F": str(f),
        "samples": int(x.shape[0]),
        "median_s": med,
        "samples_per_s": x.shape[0] / med,
        "synaptic_events_per_s": events / med,
        "fraction_of_machine_limit": events / med / MACHINE_LIMIT,
        "spikes_per_sample": res.spikes_per_sample(),
        "synops_per_sample": (res.synops.sum() + res.input_synops.sum()) / x.shape[0],
        "activity": float(res.spike_density()),
        "accuracy": None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-startup", action="store_true", help="skip the compile-time probe")
    args = ap.parse_args(argv)
    samples = args.samples or (20 if args.quick else 60)
    repeats = args.repeats or (3 if args.quick else 5)
    compiled = A.compile_network(reference_network())
    x = reference_inputs(samples)
    rows = []
    for policy, groups in (
        ("layered", ["-"]),
        ("fifo", [1, 8, 64, "inf"]),
        ("momentum", [1, 8, 64, "inf"]),
        ("random", [1, 8, 64, "inf"]),
    ):
        for f in groups:
            row = measure(compiled, x, policy, 1 if f == "-" else f, repeats)
            row["F"] = str(f)
            rows.append(row)
            print(
                f"{policy:9s} F={row['F']:>4s}  {row['samples_per_s']:8.1f} samples/s  "
                f"{row['synaptic_events_per_s'] / 1e9:6.3f} G events/s",
                flush=True,
            )
    startup = {} if args.no_startup else startup_times()
    meta = {
        "workload": "784-500-500-10 FC LIF, 100 timesteps, 10% Bernoulli input",
        "threads": 1,
        "repeats": repeats,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numba": __import__("numba").__version__,
        "date": time.strftime("%Y-%m-%d"),
        **startup,
    }
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "engine.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"Workload: {meta['workload']}; 1 thread; median of {repeats} runs of {samples} "
        f"samples; {meta['machine']}; {meta['date']}.",
        "",
        "| policy | F | samples/s | synaptic events/s | of 4 G/s limit | spikes/sample |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['F']} | {r['samples_per_s']:.0f} | "
            f"{r['synaptic_events_per_s'] / 1e9:.2f} G | "
            f"{100 * r['fraction_of_machine_limit']:.0f}% | {r['spikes_per_sample']:.0f} |"
        )
    if startup:
        lines += [
            "",
            f"Start-up: import {startup['warm_import_s']:.2f} s; first run with an empty numba "
            f"cache (compile) {startup['cold_first_run_s']:.1f} s; with the cache "
            f"{startup['warm_first_run_s']:.2f} s.",
        ]
    (out_dir / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
