"""Figures of a comparison (matplotlib, an optional extra: ``pip install asyncsim[plot]``).

* :func:`raster`: spikes of one sample per population, layered vs asynchronous;
* :func:`decision_curve`: accuracy against network spikes processed;
* :func:`sweep_plot`: accuracy, spikes, synaptic operations, latency and energy vs F;
* :func:`energy_breakdown`: energy per sample by term.

matplotlib is imported only when a figure is drawn, through the object-oriented API
(:class:`matplotlib.figure.Figure`), so no display and no global pyplot state is needed.
Every function writes one file (PNG, SVG or PDF by suffix) and returns its path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AsyncsimError
from .result import Result

POLICY_COLORS = {
    "layered": "black",
    "fifo": "tab:blue",
    "momentum": "tab:orange",
    "random": "tab:green",
}


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise AsyncsimError(
            "plotting needs matplotlib: pip install matplotlib (or asyncsim[plot])"
        ) from None
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Write the figure atomically (format from the suffix); never replace an existing
    file unless ``overwrite``. SVG and PDF files carry no date and SVG element ids are
    fixed, so the same figure gives the same bytes (figures kept in git diff cleanly)."""
    import matplotlib

    from .export import atomic_write

    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise AsyncsimError(f"figure {str(p)!r}: use a .png, .svg or .pdf name")

    def write(tmp: str) -> None:
        with matplotlib.rc_context({"svg.hashsalt": "asyncsim"}):
            fig.savefig(tmp, format=fmt, dpi=130, metadata=None if fmt == "png" else {"Date": None})

    return atomic_write(p, write, overwrite)


def _energy_unit(max_pj: float) -> tuple[float, str]:
    """Scale factor and unit so that energies in pJ read as small numbers."""
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if max_pj >= scale:
            return scale, unit
    return 1.0, "pJ"


# ---------------------------------------------------------------------- raster
def raster(
    results: Mapping[str, Result],
    path: str | os.PathLike[str],
    sample: int = 0,
    title: str | None = None,
    overwrite: bool = False,
    timesteps: int | None = 10,
) -> Path:
    """Spike raster of one sample: one row of panels per population, one column per run.

    Only the first ``timesteps`` timesteps are drawn (default 10, ``None`` for all), so the
    order of spikes inside a timestep stays visible.

    ``results`` maps a label (``"layered"``, ``"fifo F=1"``) to a result recorded with
    ``record_events=True``. Within each timestep (one unit of the x axis) a spike is placed
    at its forward step divided by the steps of that timestep, so the order in which
    layers fire inside a timestep is visible: layered execution sweeps the layers one by
    one, asynchronous execution interleaves them.
    """
    if not results:
        raise AsyncsimError("raster: no results to plot")
    labels = list(results)
    first = results[labels[0]]
    names = first.population_names
    sizes = first.population_sizes
    n_t = first.n_timesteps if timesteps is None else min(int(timesteps), first.n_timesteps)
    if n_t < 1:
        raise AsyncsimError(f"raster: timesteps={timesteps!r} must be >= 1")
    for lab in labels:
        if results[lab].events is None:
            raise AsyncsimError(
                f"raster: result {lab!r} has no events; run it with record_events=True"
            )
    heights = [max(1.0, min(3.0, 0.6 + s / 150)) for s in sizes]
    fig = _figure(4.2 * len(labels) + 0.8, sum(heights) * 0.9 + 1.0)
    axes = fig.subplots(
        len(names), len(labels), squeeze=False, sharex=True, gridspec_kw={"height_ratios": heights}
    )
    for j, lab in enumerate(labels):
        res = results[lab]
        ev = res.events[sample]  # type: ignore[index]
        steps = np.maximum(res.forward_steps[sample], 1)
        ev = ev[ev["timestep"] < n_t]
        x = ev["timestep"] + (ev["step"] - 1) / steps[ev["timestep"]]
        color = POLICY_COLORS.get(lab.split()[0], "tab:purple")
        for i, name in enumerate(names):
            ax = axes[i, j]
            m = ev["population"] == i
            pts = 72.0 * heights[i] * 0.9 / max(1, sizes[i])
            ax.plot(
                x[m],
                ev["index"][m],
                ls="none",
                marker="|",
                ms=float(np.clip(pts * 0.9, 1.5, 9.0)),
                mew=1.0,
                color=color,
            )
            ax.set_ylim(-0.5, sizes[i] - 0.5)
            ax.set_xlim(0, n_t)
            if n_t <= 40:
                for t in range(1, n_t):
                    ax.axvline(t, color="0.85", lw=0.5, zorder=0)
            if j == 0:
                ax.set_ylabel(f"{name}\n({sizes[i]})", fontsize=9)
            else:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=8)
            if i == 0:
                n_spk = int(res.spikes[sample, :n_t].sum())
                ax.set_title(f"{lab}: {n_spk} spikes", fontsize=10)
        axes[-1, j].set_xlabel("timestep (+ forward step / steps in timestep)", fontsize=9)
    lab_text = ""
    if first.labels is not None:
        lab_text = f", label {int(first.labels[sample])}"
    shown = "" if n_t == first.n_timesteps else f", first {n_t} of {first.n_timesteps} timesteps"
    fig.suptitle(title or f"Spike raster, sample {int(first.sample_ids[sample])}{lab_text}{shown}")
    return _save(fig, path, overwrite)


# ---------------------------------------------------------------------- helpers on rows
def _get(row: Mapping[str, Any], key: str) -> Any:
    """Value of a flat (dotted) or nested row."""
    if key in row:
        return row[key]
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _f_order(f: str) -> float:
    return float("inf") if f == "inf" else float(f)


def _by_policy(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["policy"] != "layered":
            out.setdefault(r["policy"], []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: _f_order(str(r["group_size"])))
    return out


def _layered(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((r for r in rows if r["policy"] == "layered"), None)


# ---------------------------------------------------------------------- decision curve
def decision_curve(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Accuracy of the decision read at the end of each timestep against the mean number
    of network spikes processed so far, one panel per asynchronous policy (one line per
    F, darker = smaller F), the layered baseline dashed in every panel."""
    pols = _by_policy(rows)
    base = _layered(rows)
    if not pols and base is None:
        raise AsyncsimError("decision curve: no rows")
    if _get((base or next(iter(pols.values()))[0]), "curve.accuracy") is None:
        raise AsyncsimError("decision curve: the runs have no labels, so no accuracy")
    from matplotlib import colormaps

    n = max(1, len(pols))
    fig = _figure(4.3 * n + 0.5, 4.0)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    cmap = colormaps["viridis"]
    for ax, (pol, rs) in zip(axes, pols.items() or [("layered", [])], strict=False):
        for k, r in enumerate(rs):
            c = cmap(0.85 * k / max(1, len(rs) - 1))
            ax.plot(
                _get(r, "curve.spikes"),
                _get(r, "curve.accuracy"),
                color=c,
                lw=1.4,
                marker="o",
                ms=2.5,
                label=f"F={r['group_size']}",
            )
        if base is not None:
            ax.plot(
                _get(base, "curve.spikes"),
                _get(base, "curve.accuracy"),
                color="black",
                ls="--",
                lw=1.8,
                label="layered",
            )
        ax.set_title(pol, fontsize=11)
        ax.set_xlabel("network spikes processed per sample")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(rs) > 6 else 1, loc="lower right")
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(-0.02, 1.02)
    fig.suptitle(title or "Decision curve: accuracy vs spikes processed")
    return _save(fig, path, overwrite)


# ---------------------------------------------------------------------- metrics vs F
SWEEP_PANELS = (
    ("accuracy", "accuracy"),
    ("spikes_per_sample", "spikes per sample"),
    ("synops_per_sample", "synaptic ops per sample (network spikes)"),
    ("first_output_spikes", "latency to first output (spikes)"),
    ("stable_correct_spikes", "latency to stable correct decision (spikes)"),
    ("energy_pj", "energy per sample"),
)


def sweep_plot(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Headline metrics against the forward group size F, one line per policy (random:
    mean over seeds with a band of one standard deviation), layered as a dashed line."""
    pols = _by_policy(rows)
    base = _layered(rows)
    if not pols:
        raise AsyncsimError("sweep plot: no asynchronous runs")
    fs = sorted({str(r["group_size"]) for rs in pols.values() for r in rs}, key=_f_order)
    pos = {f: i for i, f in enumerate(fs)}
    fig = _figure(13, 7.2)
    axes = fig.subplots(2, 3).ravel()
    for ax, (key, label) in zip(axes, SWEEP_PANELS, strict=True):
        scale = 1.0
        if key == "energy_pj":
            vals = [_get(r, key) or 0.0 for r in rows]
            scale, unit = _energy_unit(max(vals, default=0.0))
            preset = _get(rows[0], "energy_preset")
            label = f"{label} ({unit}, {preset})"
        for pol, rs in pols.items():
            xs, ys, sd = [], [], []
            for r in rs:
                v = _get(r, key)
                if v is None:
                    continue
                xs.append(pos[str(r["group_size"])])
                ys.append(v / scale)
                sd.append((_get(r, key + "_std") or 0.0) / scale)
            if not xs:
                continue
            color = POLICY_COLORS.get(pol, "tab:purple")
            ax.plot(xs, ys, marker="o", ms=4, lw=1.5, color=color, label=pol)
            if any(sd):
                lo = np.array(ys) - np.array(sd)
                hi = np.array(ys) + np.array(sd)
                ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0)
        if base is not None and _get(base, key) is not None:
            ax.axhline(_get(base, key) / scale, color="black", ls="--", lw=1.3, label="layered")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xticks(range(len(fs)), fs, fontsize=8)
        ax.set_xlabel("forward group size F")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "Asynchronous execution vs forward group size F")
    return _save(fig, path, overwrite)


# ---------------------------------------------------------------------- energy
def _presets_in(row: Mapping[str, Any]) -> list[str]:
    e = row.get("energy")
    if isinstance(e, Mapping):
        return list(e)
    names: list[str] = []
    for k in row:
        if k.startswith("energy.") and k.endswith(".total_pj"):
            names.append(k[len("energy.") : -len(".total_pj")])
    return names


def _terms_of(row: Mapping[str, Any], preset: str) -> list[str]:
    t = _get(row, f"energy.{preset}.terms")
    if isinstance(t, Mapping):
        return list(t)
    prefix = f"energy.{preset}.terms."
    return [
        k[len(prefix) : -len(".energy_pj")]
        for k in row
        if k.startswith(prefix) and k.endswith(".energy_pj")
    ]


def energy_breakdown(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    presets: Sequence[str] | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Energy per sample split by term (stacked bars), one panel per preset, for layered
    and, per policy, the smallest and the largest F (all F when there are at most three).
    The total and its ratio to layered are written at the end of each bar."""
    if not rows:
        raise AsyncsimError("energy plot: no rows")
    names = list(presets) if presets else _presets_in(rows[0])
    if not names:
        raise AsyncsimError("energy plot: the rows have no energy estimate")
    chosen: list[Mapping[str, Any]] = []
    base = _layered(rows)
    if base is not None:
        chosen.append(base)
    for rs in _by_policy(rows).values():
        chosen.extend(rs if len(rs) <= 3 else [rs[0], rs[-1]])
    labels = [
        "layered" if r["policy"] == "layered" else f"{r['policy']} F={r['group_size']}"
        for r in chosen
    ]
    from matplotlib import colormaps

    from .energy import PRESETS

    cmap = colormaps["tab10"]
    ncols = 1 if len(names) == 1 else 2
    nrows = (len(names) + ncols - 1) // ncols
    fig = _figure(6.5 * ncols, nrows * (0.32 * len(chosen) + 2.2) + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax, preset in zip(axes, names, strict=False):
        terms = _terms_of(chosen[0], preset)
        if not terms:
            raise AsyncsimError(f"energy plot: no terms of preset {preset!r} in the rows")
        totals = [_get(r, f"energy.{preset}.total_pj") or 0.0 for r in chosen]
        scale, unit = _energy_unit(max(totals))
        left = np.zeros(len(chosen))
        for k, term in enumerate(terms):
            vals = np.array(
                [_get(r, f"energy.{preset}.terms.{term}.energy_pj") or 0.0 for r in chosen],
                float,
            )
            vals /= scale
            ax.barh(labels, vals, left=left, color=cmap(k % 10), label=term, height=0.7)
            left += vals
        ref = left[0] if base is not None and left[0] > 0 else None
        for i, tot in enumerate(left):
            text = _energy_text(tot * scale)
            if ref is not None and i > 0:
                text += f" (x{tot / ref:.3f})"
            ax.text(tot, i, " " + text, va="center", fontsize=7)
        ax.set_xlim(0, max(left.max(), 1e-12) * 1.45)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
        scope = PRESETS[preset].scope if preset in PRESETS else "user table"
        ax.set_title(f"{preset} ({scope})", fontsize=10)
        ax.set_xlabel(f"energy per sample ({unit})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.28 if len(chosen) < 6 else -0.16),
            ncol=min(3, len(terms)),
            frameon=False,
        )
    fig.suptitle(title or "Energy per sample by term (estimate: counts x cost per operation)")
    return _save(fig, path, overwrite)


def _energy_text(pj: float) -> str:
    from .energy import format_energy

    return format_energy(pj)


__all__ = ["decision_curve", "energy_breakdown", "raster", "sweep_plot"]
