"""Cost grows linearly with work; memory stays flat in sequence length; threads scale.

Three experiments (issue #5), each printing a markdown table and writing JSON:

1. size: random sparse networks input(N/10) -> A(N/2) -> B(N/2) -> out(10), fan-out k from
   every input and A neuron, N from 1k to 1M neurons and k from 10 to 1000 (up to 1e8
   synapses), fifo F=1 and layered: the marginal cost of a synaptic event (time with input
   minus time without, per event) and the cost per neuron-timestep without input (the leak).
2. length: the 784-500-500-10 reference network streamed for 10 .. 100k timesteps
   (inputs generated chunk by chunk): time per synaptic event and peak RSS of a fresh
   process per length.
3. threads: samples/s with 1 and 2 threads on the reference workload, results identical.
4. readout: the reference network with 10, 100 and 1000 output neurons, with labels (so
   the running decision behind latency-to-stable-decision is kept up to date): time per
   synaptic event stays flat as the readout grows, which it did not while the decision
   recounted every output neuron after each step with output spikes.

    python benchmarks/bench_scaling.py [--quick] [--only size|length|threads|readout]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_conv import timed, with_and_without_input

import asyncsim as A
from asyncsim.bench import bench_inputs, bench_network, write_results

HERE = Path(__file__).resolve().parent


def sparse_network(n: int, fanout: int, seed: int = 0) -> A.Network:
    """input(n/10) -> A(n/2) -> B(n/2) -> out(10), every input and A neuron with ``fanout``
    random targets. The input grows with the network and weights are set for an expected
    drive of ~0.12 per neuron and timestep (or ~one threshold per event when events are
    rarer than that), so activity stays at a few percent for every size and fan-out."""
    rng = np.random.default_rng(seed)
    half = n // 2
    n_in = max(1000, n // 10)

    def proj(name: str, src: str, n_src: int, tgt: str, events_per_target: float) -> A.Sparse:
        s_idx = np.repeat(np.arange(n_src), fanout)
        t_idx = rng.integers(0, half, s_idx.size)
        scale = 0.24 / max(events_per_target, 0.12)  # weights uniform(0, scale)
        w = rng.uniform(0.0, scale, s_idx.size).astype(np.float32)
        return A.Sparse(name, src, tgt, source_index=s_idx, target_index=t_idx, weight=w)

    pops = [
        A.Population("A", half, threshold=1.0, beta=0.9),
        A.Population("B", half, threshold=1.0, beta=0.9),
        A.Population("out", 10, threshold=1.0, beta=0.9),
    ]
    projs = [
        proj("in_A", "input", n_in, "A", 0.05 * n_in * fanout / half),  # 5% inputs active
        proj("A_B", "A", half, "B", 0.1 * fanout),  # ~10% of A active
        # a 10-class readout, one synapse per B neuron (the output is recorded per timestep,
        # so it must stay small, as real readouts are)
        A.Sparse(
            "B_out",
            "B",
            "out",
            source_index=np.arange(half),
            target_index=np.arange(half) % 10,
            weight=np.full(half, 0.05),
        ),
    ]
    return A.Network(n_in, pops, projs, name=f"sparse-{n}-k{fanout}")


def exp_size(quick: bool) -> list[dict]:
    """Each configuration is timed with its input and with no input: the run without input
    costs the leak of every neuron at every timestep (plus fixed costs), the difference
    divided by the synaptic events is the marginal cost of one event."""
    rows = []
    sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000, 1_000_000]
    for n in sizes:
        for k in (10, 100, 1000):
            if n * k > 1e8 or (quick and n * k > 1e7):
                continue
            t0 = time.perf_counter()
            net = A.compile_network(sparse_network(n, k))
            build = time.perf_counter() - t0
            rng = np.random.default_rng(1)
            samples = max(2, min(100, 1_000_000 // n))  # similar work for every size
            x = (rng.random((samples, 20, net.n_inputs)) < 0.05).astype(np.uint8)
            for policy in ("layered", "fifo"):
                sim = A.Simulator(net, policy, 1, threads=1, reactivity=False)
                med, base, res = with_and_without_input(sim, x, 3)
                events = int(res.synops.sum() + res.input_synops.sum())
                neuron_steps = n * x.shape[0] * x.shape[1]
                rows.append(
                    dict(
                        neurons=n,
                        fanout=k,
                        synapses=net.n_synapses,
                        policy=policy,
                        compile_s=build,
                        seconds=med,
                        seconds_no_input=base,
                        synaptic_events=events,
                        neuron_timesteps=neuron_steps,
                        ns_per_event=1e9 * med / max(events, 1),
                        marginal_ns_per_event=1e9 * (med - base) / max(events, 1),
                        ns_per_neuron_timestep=1e9 * base / neuron_steps,
                        activity=res.spike_density(),
                    )
                )
                r = rows[-1]
                print(
                    f"N={n:>8d} k={k:>4d} {policy:8s} {r['marginal_ns_per_event']:6.2f} ns/event "
                    f"{r['ns_per_neuron_timestep']:5.2f} ns/neuron-timestep "
                    f"activity {r['activity']:.3f}",
                    flush=True,
                )
    return rows


_LENGTH_CHILD = """
import sys, time
import numpy as np
import asyncsim as A
from asyncsim.bench import bench_network
T, chunk = {T}, 1000
sim = A.Simulator(bench_network(), "{policy}", 1, threads=1, reactivity=False)
rng = np.random.default_rng(0)
def chunks():
    left = T
    while left > 0:
        n = min(chunk, left)
        left -= n
        yield (rng.random((n, 784)) < 0.1).astype(np.uint8)
list(sim.stream([np.zeros((1, 784), np.uint8)]))  # load the compiled engine
t0 = time.perf_counter()
events = 0
for rec in sim.stream(chunks()):
    events += int(rec["synops"].sum() + rec["input_synops"].sum())
dt = time.perf_counter() - t0
# VmHWM: peak resident set of this process image (ru_maxrss would include the parent's
# peak, which Linux carries across fork and exec)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(dt, events, hwm)
"""


def exp_length(quick: bool) -> list[dict]:
    rows = []
    lengths = [10, 100, 1_000, 10_000] if quick else [10, 100, 1_000, 10_000, 100_000]
    for policy in ("layered", "fifo"):
        for t in lengths:
            code = _LENGTH_CHILD.format(T=t, policy=policy)
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()
            dt, events, rss_kb = float(out[0]), int(out[1]), int(out[2])
            rows.append(
                dict(
                    policy=policy,
                    timesteps=t,
                    seconds=dt,
                    synaptic_events=events,
                    ns_per_event=1e9 * dt / max(events, 1),
                    peak_rss_mb=rss_kb / 1024,
                )
            )
            print(
                f"T={t:>7d} {policy:8s} {rows[-1]['ns_per_event']:6.2f} ns/event "
                f"peak RSS {rows[-1]['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    return rows


def exp_threads(quick: bool) -> list[dict]:
    net = A.compile_network(bench_network())
    x = bench_inputs(40 if quick else 120, 100, 784)
    rows = []
    results = {}
    for policy, f in (("layered", 1), ("fifo", 1), ("momentum", 8)):
        for threads in (1, 2):
            sim = A.Simulator(net, policy, f, threads=threads)
            med, res = timed(sim, x, 3)
            results[(policy, threads)] = res
            rows.append(dict(policy=policy, F=f, threads=threads, samples_per_s=x.shape[0] / med))
        same = all(
            np.array_equal(getattr(results[(policy, 1)], a), getattr(results[(policy, 2)], a))
            for a in A.Result.array_names()
            if getattr(results[(policy, 1)], a) is not None
        )
        speedup = rows[-1]["samples_per_s"] / rows[-2]["samples_per_s"]
        rows[-1]["speedup"] = speedup
        rows[-1]["identical_to_serial"] = same
        print(
            f"{policy:8s} F={f}: 1 thread {rows[-2]['samples_per_s']:.0f}/s, 2 threads "
            f"{rows[-1]['samples_per_s']:.0f}/s, speed-up {speedup:.2f}, identical {same}",
            flush=True,
        )
    return rows


def exp_readout(quick: bool) -> list[dict]:
    rows = []
    samples = 20 if quick else 40
    x = bench_inputs(samples, 100, 784)
    labels = np.random.default_rng(2).integers(0, 10, samples)
    for k in (10, 100, 1000):
        net = A.compile_network(bench_network((784, 500, 500, k)))
        for policy in ("layered", "fifo"):
            sim = A.Simulator(net, policy, 1, threads=1)
            med, res = timed(sim, x, 3 if quick else 5, labels)
            events = float(res.synops.sum() + res.input_synops.sum()) / samples
            rows.append(
                dict(
                    outputs=k,
                    policy=policy,
                    samples_per_s=samples / med,
                    synaptic_events_per_sample=events,
                    output_spikes_per_sample=float(res.output_spikes.sum()) / samples,
                    ns_per_event=1e9 * med / samples / events,
                )
            )
            r = rows[-1]
            print(
                f"outputs={k:>5d} {policy:8s} {r['samples_per_s']:6.0f} samples/s "
                f"{r['ns_per_event']:5.2f} ns/event "
                f"{r['output_spikes_per_sample']:7.0f} output spikes/sample",
                flush=True,
            )
    return rows


def write(name: str, rows: list[dict], table: list[str]) -> None:
    out = HERE / "results"
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    write_results(out / f"scaling_{name}.json", json.dumps({"meta": meta, "rows": rows}, indent=2))
    write_results(out / f"scaling_{name}.md", "\n".join(table) + "\n")
    print("\n".join(table))


# per experiment: (column header, alignment, cell of a result row) for its markdown table
_COLUMNS: dict[str, list[tuple[str, str, Callable[[dict], str]]]] = {
    "size": [
        ("neurons", "---:", lambda r: f"{r['neurons']:,}"),
        ("fan-out", "---:", lambda r: f"{r['fanout']}"),
        ("synapses", "---:", lambda r: f"{r['synapses']:,}"),
        ("policy", "---", lambda r: r["policy"]),
        ("activity", "---:", lambda r: f"{r['activity']:.3f}"),
        ("ns / event (all)", "---:", lambda r: f"{r['ns_per_event']:.2f}"),
        ("ns / event (marginal)", "---:", lambda r: f"{r['marginal_ns_per_event']:.2f}"),
        ("ns / neuron-timestep (no input)", "---:", lambda r: f"{r['ns_per_neuron_timestep']:.2f}"),
    ],
    "length": [
        ("policy", "---", lambda r: r["policy"]),
        ("timesteps", "---:", lambda r: f"{r['timesteps']:,}"),
        ("ns / synaptic event", "---:", lambda r: f"{r['ns_per_event']:.2f}"),
        ("peak RSS (MB)", "---:", lambda r: f"{r['peak_rss_mb']:.0f}"),
    ],
    "threads": [
        ("policy", "---", lambda r: r["policy"]),
        ("F", "---", lambda r: f"{r['F']}"),
        ("threads", "---:", lambda r: f"{r['threads']}"),
        ("samples/s", "---:", lambda r: f"{r['samples_per_s']:.0f}"),
        ("speed-up", "---:", lambda r: f"{r.get('speedup', 1.0):.2f}"),
        ("identical", "---", lambda r: f"{r.get('identical_to_serial', '')}"),
    ],
    "readout": [
        ("outputs", "---:", lambda r: f"{r['outputs']:,}"),
        ("policy", "---", lambda r: r["policy"]),
        ("samples/s", "---:", lambda r: f"{r['samples_per_s']:.0f}"),
        (
            "synaptic events / sample",
            "---:",
            lambda r: f"{r['synaptic_events_per_sample'] / 1e6:.2f} M",
        ),
        ("output spikes / sample", "---:", lambda r: f"{r['output_spikes_per_sample']:,.0f}"),
        ("ns / synaptic event", "---:", lambda r: f"{r['ns_per_event']:.3f}"),
    ],
}
_EXPERIMENTS: dict[str, Callable[[bool], list[dict]]] = {
    "size": exp_size,
    "length": exp_length,
    "threads": exp_threads,
    "readout": exp_readout,
}


def table(name: str, rows: list[dict]) -> list[str]:
    """The markdown table of one experiment's result rows."""
    cols = _COLUMNS[name]
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "|".join(c[1] for c in cols) + "|"]
    return lines + ["| " + " | ".join(c[2](r) for c in cols) + " |" for r in rows]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=list(_EXPERIMENTS))
    args = ap.parse_args(argv)
    for name, run in _EXPERIMENTS.items():
        if args.only in (None, name):
            rows = run(args.quick)
            write(name, rows, table(name, rows))


if __name__ == "__main__":
    main()
