"""Plot the scaling benchmarks: time per synaptic event and memory against the work.

Reads ``results/scaling_size.json`` and ``results/scaling_length.json`` (written by
``bench_scaling.py``) and draws ``results/scaling.svg``, four panels:

1. marginal time per synaptic event against network size, one line per fan-out and
   policy (log-log): flat lines mean time grows linearly with the number of events;
2. time per neuron and timestep without input (the leak) against network size;
3. time per synaptic event against sequence length (inputs streamed chunk by chunk);
4. peak resident memory of a fresh process against sequence length (flat when streamed).

Needs matplotlib (``pip install asyncsim[plot]``). The SVG is written atomically and
byte-for-byte reproducible from the same JSON (no date, fixed element ids).

    python benchmarks/plot_results.py [--results DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from asyncsim.errors import AsyncsimError
from asyncsim.plots import POLICY_COLORS, _figure, _save

HERE = Path(__file__).resolve().parent
FANOUT_MARKERS = {10: "o", 100: "s", 1000: "^"}


def _rows(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The ``rows`` of a benchmark JSON file, each with ``fields``; clear errors otherwise."""
    if not path.is_file():
        raise AsyncsimError(
            f"{path} not found: run python benchmarks/bench_scaling.py first (it writes it)"
        )
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AsyncsimError(
            f"{path} is not a bench_scaling.py result ({exc}); rerun bench_scaling.py"
        ) from None
    if not isinstance(rows, list) or not rows:
        raise AsyncsimError(f"{path} holds no result rows; rerun bench_scaling.py")
    for i, r in enumerate(rows):
        missing = list(fields) if not isinstance(r, dict) else [f for f in fields if f not in r]
        if missing:
            raise AsyncsimError(
                f"{path}: row {i} lacks {', '.join(missing)}; rerun bench_scaling.py "
                "(the file is from another version)"
            )
    return rows


def _series(rows: list[dict[str, Any]], key: tuple[str, ...], x: str, y: str) -> dict:
    """{key values: (xs, ys)} sorted by x."""
    out: dict[tuple, list[tuple[float, float]]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in key), []).append((r[x], r[y]))
    return {k: tuple(zip(*sorted(v), strict=True)) for k, v in out.items()}


def _lines(ax: Any, series: dict) -> None:
    """One line per (policy[, fan-out]): colour by policy, dashes for asynchronous
    policies, a marker per fan-out."""
    for key, (xs, ys) in sorted(series.items()):
        policy = key[0]
        label = policy if len(key) == 1 else f"{policy}, fan-out {key[1]}"
        ax.plot(
            xs,
            ys,
            "-" if policy == "layered" else "--",
            marker=FANOUT_MARKERS.get(key[1], "x") if len(key) > 1 else "o",
            color=POLICY_COLORS.get(policy, "gray"),
            label=label,
        )


def plot(results: Path, out: Path) -> Path:
    size = _rows(
        results / "scaling_size.json",
        ("neurons", "fanout", "policy", "marginal_ns_per_event", "ns_per_neuron_timestep"),
    )
    length = _rows(
        results / "scaling_length.json", ("policy", "timesteps", "ns_per_event", "peak_rss_mb")
    )
    fig = _figure(11, 7.5)
    by_size = ("policy", "fanout")
    panels = (  # rows, series key, x, y, y scale, y label, title
        (size, by_size, "neurons", "marginal_ns_per_event", "log",
         "ns per synaptic event (marginal)", "Cost per synaptic event against network size"),
        (size, by_size, "neurons", "ns_per_neuron_timestep", "linear",
         "ns per neuron and timestep", "Leak (no input): cost per neuron-timestep"),
        (length, ("policy",), "timesteps", "ns_per_event", "linear",
         "ns per synaptic event", "784-500-500-10: cost per event against sequence length"),
        (length, ("policy",), "timesteps", "peak_rss_mb", "linear",
         "peak RSS of the process (MB)", "Memory against sequence length"),
    )  # fmt: skip
    xlabels = {"neurons": "neurons", "timesteps": "timesteps (streamed)"}
    for ax, (rows, key, x, y, yscale, ylabel, title) in zip(
        fig.subplots(2, 2).flat, panels, strict=True
    ):
        _lines(ax, _series(rows, key, x, y))
        ax.set(xscale="log", yscale=yscale, xlabel=xlabels[x], ylabel=ylabel, title=title)
        if yscale == "linear":
            ax.set_ylim(0, 1.25 * max(r[y] for r in rows))  # from zero, room for the legend
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)

    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text: a smaller file
        return _save(fig, out, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--out", type=Path, default=None, help="default: RESULTS/scaling.svg")
    args = ap.parse_args(argv)
    try:
        path = plot(args.results, args.out or args.results / "scaling.svg")
    except AsyncsimError as exc:
        print(f"plot_results.py: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
