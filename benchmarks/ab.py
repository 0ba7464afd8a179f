"""A/B timing of two revisions of asyncsim on the reference workload.

    python benchmarks/ab.py HEAD~1 HEAD                       # fifo, momentum, random F=1
    python benchmarks/ab.py main WT --configs layered fifo:1 momentum:inf --rounds 5
    python benchmarks/ab.py HEAD WT --workdir /tmp/ab            # keep the exports ...
    python benchmarks/ab.py HEAD WT --workdir /tmp/ab --reuse    # ... and time them again

Each revision's ``asyncsim/`` is exported with ``git archive`` (``WT``: the working tree)
into a temporary directory, so each has its own numba cache; both are compiled first (not
timed). Then processes alternate A, B, A, B, ... and each times every configuration (median
of ``--repeats`` runs of ``--samples`` samples of the 784-500-500-10 workload of
``bench_engine.py``). Alternating cancels most of the slow drift of a shared machine,
where single benchmark runs spread by 10-20 %: this is how the per-change gains in
docs/performance.md were measured. Prints samples/s per round and the ratio B/A of the
medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from asyncsim.errors import AsyncsimError
from asyncsim.policies import Policy, parse_group_size

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, time
import numpy as np
from asyncsim.bench import bench_inputs, bench_network
from asyncsim.compile import compile_network
from asyncsim.simulator import Simulator
configs, samples, repeats = json.loads(sys.argv[1])
net = compile_network(bench_network())
frames = bench_inputs(samples, 100, net.n_inputs, 0.1, 1)
out = {}
for cfg in configs:
    pol, _, f = cfg.partition(":")
    sim = Simulator(net, policy=pol, group_size=f or 1, seed=0, threads=1)
    sim.run(frames[:2])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim.run(frames)
        times.append(time.perf_counter() - t0)
    out[cfg] = samples / float(np.median(times))
import asyncsim
print(json.dumps({"_file": asyncsim.__file__, **out}))
"""


def export(rev: str, dest: Path) -> None:
    """Write revision ``rev`` (or the working tree for ``WT``) of asyncsim/ into dest."""
    dest.mkdir(parents=True)
    if rev == "WT":
        shutil.copytree(
            REPO / "asyncsim", dest / "asyncsim", ignore=shutil.ignore_patterns("__pycache__")
        )
        return
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "asyncsim"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run(path: Path, configs: list[str], samples: int, repeats: int) -> dict[str, float]:
    """Samples/s per configuration, measured in a fresh process importing ``path``."""
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps([configs, samples, repeats])],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(path)},
        cwd=path,  # not the repository: ``python -c`` puts the working directory first
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if not out.pop("_file").startswith(str(path)):
        raise SystemExit(f"the child imported asyncsim from outside {path}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="git revision A (or WT for the working tree)")
    ap.add_argument("b", help="git revision B (or WT)")
    ap.add_argument("--configs", nargs="+", default=["fifo:1", "momentum:1", "random:1"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--workdir",
        type=Path,
        help="keep the two exports (and their compiled caches) in this directory",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: time the exports already there (no export, no compile)",
    )
    args = ap.parse_args(argv)
    if args.reuse and args.workdir is None:
        ap.error("--reuse needs --workdir (the directory of an earlier run)")
    for cfg in args.configs:  # fail here, not in a child after minutes of compiling
        pol, _, f = cfg.partition(":")
        try:
            Policy.parse(pol)
            parse_group_size(f or 1)
        except AsyncsimError as e:
            ap.error(f"--configs {cfg!r}: {e} (write POLICY or POLICY:F, e.g. momentum:inf)")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        paths = {"A": root / "A", "B": root / "B"}
        if args.reuse:
            missing = [str(p) for p in paths.values() if not (p / "asyncsim").is_dir()]
            if missing:
                raise SystemExit(f"--reuse: no export in {', '.join(missing)}; run without it")
        else:
            for label, rev in (("A", args.a), ("B", args.b)):
                shutil.rmtree(paths[label], ignore_errors=True)
                export(rev, paths[label])
            for label, path in paths.items():  # compile (and check that both import)
                print(f"compiling {label} ...", file=sys.stderr, flush=True)
                run(path, args.configs, 2, 1)
        rows: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for r in range(args.rounds):
            for label, path in paths.items():
                rows[label].append(run(path, args.configs, args.samples, args.repeats))
                cells = "  ".join(f"{c} {rows[label][-1][c]:7.1f}" for c in args.configs)
                print(f"round {r + 1} {label}: {cells}", flush=True)
    print(f"\nsamples/s, median over {args.rounds} rounds (A = {args.a}, B = {args.b}):")
    for c in args.configs:
        a = statistics.median(x[c] for x in rows["A"])
        b = statistics.median(x[c] for x in rows["B"])
        print(f"  {c:12s} A {a:7.1f}  B {b:7.1f}  B/A {b / a:5.3f}")


if __name__ == "__main__":
    main()
