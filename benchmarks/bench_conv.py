"""Convolutional networks on event input, and the cost of a synaptic event by layer type.

1. The N-MNIST CNN exported from Sinabs (tests/fixtures/nir/cnn_sinabs.nir, NIR paper
   repository, BSD-3): 2x34x34 events -> 3 convolutions, 2 sum-poolings, 2 dense layers.
   Synthetic event input (2% of the 2x34x34 pixels per timestep, ~N-MNIST's event rate for
   100 bins), every policy: samples/s and synaptic events/s.
2. Marginal time per synaptic event for one projection type at a time, same input events
   and a non-spiking target (so only deliveries are timed; the run without input is
   subtracted): convolution stride 1 (a kernel row is one contiguous run of k*C_out
   targets), convolution stride 2 (the 2-3 taps of one residue form a run of ~40
   targets), dense, and sparse (CSR). Issue #5 asks that convolution is at most 3x slower
   per synaptic event than a dense layer.

    python benchmarks/bench_conv.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

import asyncsim as A
from asyncsim.bench import time_runs, write_results

HERE = Path(__file__).resolve().parent
CNN = HERE.parent / "tests" / "fixtures" / "nir" / "cnn_sinabs.nir"


def events(samples: int, timesteps: int, rate: float = 0.02, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((samples, timesteps, 2, 34, 34)) < rate).astype(np.uint8)


def timed(
    sim: A.Simulator, x: np.ndarray, repeats: int, labels: np.ndarray | None = None
) -> tuple[float, A.Result]:
    times, res = time_runs(sim, x, repeats, labels=labels)
    return statistics.median(times), res


def with_and_without_input(
    sim: A.Simulator, x: np.ndarray, repeats: int
) -> tuple[float, float, A.Result]:
    """Median seconds of ``sim.run(x)`` and of the same run with all-zero input (the
    per-timestep costs alone), and the result with input: their difference is the time
    the events cost."""
    med, res = timed(sim, x, repeats)
    base, _ = timed(sim, np.zeros_like(x), repeats)
    return med, base, res


# short names of layer_nets() (benchmarks/ab.py --workload conv configurations)
LAYER_KEYS = ("s1", "s2", "dense", "sparse")


def layer_key(name: str) -> str:
    """The short name (one of LAYER_KEYS) of a layer_nets() entry."""
    return next(k for k in LAYER_KEYS if k in name)


def cnn_rows(quick: bool) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dt inference notes of the loader
        net = A.compile_network(A.load(CNN, profile="sinabs"))
    x = events(8 if quick else 24, 100)
    rows = []
    for policy, f in (("layered", 1), ("fifo", 1), ("momentum", 1), ("random", 1), ("fifo", "inf")):
        med, res = timed(A.Simulator(net, policy, f, threads=1), x, 3 if quick else 5)
        events_n = float(res.synops.sum() + res.input_synops.sum())
        rows.append(
            dict(
                policy=policy,
                F=str(f),
                samples_per_s=x.shape[0] / med,
                synaptic_events_per_s=events_n / med,
                spikes_per_sample=res.spikes_per_sample(),
                synops_per_sample=events_n / x.shape[0],
            )
        )
        print(
            f"CNN {policy:8s} F={f!s:4s} {rows[-1]['samples_per_s']:7.1f} samples/s "
            f"{rows[-1]['synaptic_events_per_s'] / 1e9:.2f} G events/s",
            flush=True,
        )
    return rows


def layer_nets() -> dict[str, A.Network]:
    """One projection type each, from the 2x34x34 input into a non-spiking population,
    plus a 10-neuron readout (recorded per timestep, so it must stay small)."""
    rng = np.random.default_rng(0)
    shape = (2, 34, 34)

    def net(target_shape: tuple[int, ...], proj: A.Projection) -> A.Network:
        n = int(np.prod(target_shape))
        readout = A.Sparse("r", "o", "out", source_index=[0], target_index=[0], weight=[1.0])
        return A.Network(
            shape,
            [A.Population("o", target_shape, threshold=np.inf), A.Population("out", 10)],
            [proj, readout],
            output="out",
            name=f"{type(proj).__name__}-{n}",
        )

    s_idx = np.repeat(np.arange(2312), 400)
    return {
        "conv k5 s1 (runs of 80)": net(
            (16, 34, 34), A.Conv2d("c", "input", "o", rng.normal(size=(16, 2, 5, 5)), padding=2)
        ),
        "conv k5 s2 (runs of ~40)": net(
            (16, 16, 16),
            A.Conv2d("c", "input", "o", rng.normal(size=(16, 2, 5, 5)), stride=2, padding=1),
        ),
        "dense, fan-out 400": net((400,), A.Dense("d", "input", "o", rng.normal(size=(400, 2312)))),
        "sparse (CSR), fan-out 400": net(
            (16 * 34 * 34,),
            A.Sparse(
                "s",
                "input",
                "o",
                source_index=s_idx,
                target_index=rng.integers(0, 16 * 34 * 34, s_idx.size),
                weight=rng.normal(size=s_idx.size),
            ),
        ),
    }


def layer_rows(quick: bool) -> list[dict]:
    """Marginal cost: (time with events - time with no input) / synaptic events, so the
    per-timestep leak of the (large) target population is not charged to the events."""
    x = events(4 if quick else 12, 100, rate=0.1)
    rows = []
    for name, net in layer_nets().items():
        c = A.compile_network(net)
        for policy in ("layered", "fifo"):
            sim = A.Simulator(c, policy, 1, threads=1, reactivity=False)
            med, base, res = with_and_without_input(sim, x, 3 if quick else 5)
            ev = float(res.input_synops.sum())
            rows.append(
                dict(
                    layer=name,
                    policy=policy,
                    ns_per_event=1e9 * (med - base) / ev,
                    fanout=ev / max(float((x != 0).sum()), 1.0),
                )
            )
            print(
                f"{name:28s} {policy:8s} {rows[-1]['ns_per_event']:.2f} ns/event "
                f"(mean fan-out {rows[-1]['fanout']:.0f})",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    cnn = cnn_rows(args.quick)
    layers = layer_rows(args.quick)
    dense = {r["policy"]: r["ns_per_event"] for r in layers if r["layer"].startswith("dense")}
    lines = [
        "Sinabs N-MNIST CNN (NIR fixture), synthetic events (2% of 2x34x34 per timestep, "
        "100 timesteps), 1 thread:",
        "",
        "| policy | F | samples/s | synaptic events/s | spikes/sample | synaptic ops/sample |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['policy']} | {r['F']} | {r['samples_per_s']:.1f} | "
        f"{r['synaptic_events_per_s'] / 1e9:.2f} G | {r['spikes_per_sample']:.0f} | "
        f"{r['synops_per_sample']:.3g} |"
        for r in cnn
    ]
    lines += [
        "",
        "Marginal cost of one synaptic event by projection type (input events, 10% of "
        "pixels per timestep, into a non-spiking population; time without input "
        "subtracted):",
        "",
        "| projection | policy | ns / synaptic event | vs dense |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {r['layer']} | {r['policy']} | {r['ns_per_event']:.2f} | "
        f"{r['ns_per_event'] / dense[r['policy']]:.2f}x |"
        for r in layers
    ]
    out = HERE / "results"
    write_results(
        out / "conv.json",
        json.dumps({"date": time.strftime("%Y-%m-%d"), "cnn": cnn, "layers": layers}, indent=2),
    )
    write_results(out / "conv.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
