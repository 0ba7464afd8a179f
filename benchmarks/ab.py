"""A/B timing of two revisions of asyncsim on the reference workload (or convolutions).

    python benchmarks/ab.py HEAD~1 HEAD                       # fifo, momentum, random F=1
    python benchmarks/ab.py main WT --configs layered fifo:1 momentum:inf --rounds 5
    python benchmarks/ab.py HEAD WT --workdir /tmp/ab            # keep the exports ...
    python benchmarks/ab.py HEAD WT --workdir /tmp/ab --reuse    # ... and time them again
    python benchmarks/ab.py HEAD WT --workload conv --configs s2/layered s2/fifo dense/layered

Each revision's ``asyncsim/`` is exported with ``git archive`` (``WT``: the working tree)
into a temporary directory, so each has its own numba cache; both are compiled first (not
timed). Then processes alternate A, B, A, B, ... and each times every configuration (median
of ``--repeats`` runs of ``--samples`` samples of the 784-500-500-10 workload of
``bench_engine.py``). Alternating cancels most of the slow drift of a shared machine,
where single benchmark runs spread by 10-20 %: this is how the per-change gains in
docs/performance.md were measured. Prints samples/s per round and the ratio B/A of the
medians over rounds.

``--workload conv`` times instead the marginal cost of a synaptic event (ns, lower is
better) of ``bench_conv.py``'s one-projection networks: configurations ``LAYER/POLICY`` with
LAYER one of s1, s2 (convolution stride 1 / 2), dense, sparse and POLICY layered or fifo
(F = 1), the workload definition taken from this checkout's ``bench_conv.py`` for both
revisions.
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

from bench_conv import LAYER_KEYS

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


_CONV_CHILD = """
import json, sys
configs, samples, repeats, bench_dir = json.loads(sys.argv[1])
sys.path.insert(0, bench_dir)
import asyncsim as A
from bench_conv import events, layer_key, layer_nets, with_and_without_input
x = events(samples, 100, rate=0.1)
nets = {layer_key(name): net for name, net in layer_nets().items()}
compiled = {}
out = {}
for cfg in configs:
    layer, _, pol = cfg.partition("/")
    if layer not in compiled:
        compiled[layer] = A.compile_network(nets[layer])
    sim = A.Simulator(compiled[layer], pol, 1, threads=1, reactivity=False)
    med, base, res = with_and_without_input(sim, x, repeats)
    out[cfg] = 1e9 * (med - base) / float(res.input_synops.sum())
print(json.dumps({"_file": A.__file__, **out}))
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


def run(
    path: Path, configs: list[str], samples: int, repeats: int, workload: str = "fc"
) -> dict[str, float]:
    """Per configuration, samples/s (``fc``) or ns per synaptic event (``conv``), measured
    in a fresh process importing ``path``."""
    if workload == "conv":
        code = _CONV_CHILD
        arg = json.dumps([configs, samples, repeats, str(REPO / "benchmarks")])
    else:
        code = _CHILD
        arg = json.dumps([configs, samples, repeats])
    res = subprocess.run(
        [sys.executable, "-c", code, arg],
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
    ap.add_argument("--workload", choices=["fc", "conv"], default="fc")
    ap.add_argument(
        "--configs",
        nargs="+",
        help="fc: POLICY[:F] (default fifo:1 momentum:1 random:1); "
        "conv: LAYER/POLICY (default s1/fifo s2/layered s2/fifo dense/layered)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, help="per run (default 60 fc, 12 conv)")
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
    conv = args.workload == "conv"
    if args.configs is None:
        args.configs = (
            ["s1/fifo", "s2/layered", "s2/fifo", "dense/layered"]
            if conv
            else ["fifo:1", "momentum:1", "random:1"]
        )
    if args.samples is None:
        args.samples = 12 if conv else 60
    for cfg in args.configs:  # fail here, not in a child after minutes of compiling
        if conv:
            layer, _, pol = cfg.partition("/")
            if layer not in LAYER_KEYS or pol not in ("layered", "fifo"):
                ap.error(
                    f"--configs {cfg!r}: a conv configuration is LAYER/POLICY with LAYER one "
                    f"of {', '.join(LAYER_KEYS)} and POLICY layered or fifo (e.g. s2/fifo)"
                )
            continue
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
                run(path, args.configs, 2, 1, args.workload)
        rows: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        fmt = "7.3f" if conv else "7.1f"
        for r in range(args.rounds):
            for label, path in paths.items():
                rows[label].append(
                    run(path, args.configs, args.samples, args.repeats, args.workload)
                )
                cells = "  ".join(f"{c} {rows[label][-1][c]:{fmt}}" for c in args.configs)
                print(f"round {r + 1} {label}: {cells}", flush=True)
    unit = "ns per synaptic event (lower is faster)" if conv else "samples/s"
    print(f"\n{unit}, median over {args.rounds} rounds (A = {args.a}, B = {args.b}):")
    for c in args.configs:
        a = statistics.median(x[c] for x in rows["A"])
        b = statistics.median(x[c] for x in rows["B"])
        print(f"  {c:12s} A {a:{fmt}}  B {b:{fmt}}  B/A {b / a:5.3f}")


if __name__ == "__main__":
    main()
