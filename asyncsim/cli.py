"""The ``asyncsim`` command line: run, compare, inspect, bench, presets.

Every command validates its arguments before simulating, reports every error as one
``error: ...`` line on stderr with a non-zero exit status (``--debug`` shows the
traceback of unexpected errors), shows a progress bar only on an interactive terminal,
and with ``--json`` prints machine-readable output on stdout. Result files are written
atomically and never replace an existing file without ``--force``. See ``docs/cli.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from . import __version__
from .errors import AsyncsimError
from .network import Network

POLICIES = ("fifo", "momentum", "random", "layered")
EXIT_ERROR = 1  # bad model, data, option combination or output file; 2: click usage errors


# ---------------------------------------------------------------------- error handling
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class AsyncsimGroup(click.Group):
    """A click group that turns every error into one line on stderr and an exit status."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            rv = super().main(
                args=argv,
                prog_name=prog_name or "asyncsim",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", EXIT_ERROR)
        except AsyncsimError as exc:
            if debug:
                raise
            _fail(str(exc), EXIT_ERROR)
        except BrokenPipeError:
            # `asyncsim compare ... | head`: the reader went away; stop quietly
            _silence_stdout()
            sys.exit(EXIT_ERROR)
        except OSError as exc:
            if debug:
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"{exc.strerror or exc}{where}", EXIT_ERROR)
        except MemoryError:
            _fail(
                "out of memory; run fewer samples at once (--samples) or fewer threads", EXIT_ERROR
            )
        except Exception as exc:
            if debug:
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc} (run again with --debug to see the "
                "traceback, and please report it)",
                EXIT_ERROR,
            )
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _silence_stdout() -> None:
    try:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests)
        pass


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


# ---------------------------------------------------------------------- helpers
class Progress:
    """A per-sample progress bar on stderr, shown only on an interactive terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = click.progressbar(
                length=total, label=self.label, file=sys.stderr, show_pos=True, width=30
            )
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_model(path: str, dt: float | None = None, profile: str | None = None) -> Network:
    """Read a model file with :func:`asyncsim.load` (NIR or native HDF5); any failure of
    the underlying reader becomes one :class:`AsyncsimError` naming the file."""
    try:
        from .io import load
    except ImportError:  # pragma: no cover - asyncsim.io ships with the package
        raise AsyncsimError(
            f"cannot read model {path!r}: the model readers (asyncsim.io) are not installed"
        ) from None
    kw: dict[str, Any] = {}
    if dt is not None:
        kw["dt"] = dt
    if profile is not None:
        kw["profile"] = profile
    try:
        net = load(path, **kw)
    except AsyncsimError:
        raise
    except Exception as exc:
        raise AsyncsimError(
            f"cannot read model {path!r}: {type(exc).__name__}: {_one_line(str(exc))}"
        ) from exc
    if not isinstance(net, Network):
        raise AsyncsimError(f"model {path!r} did not load as an asyncsim Network")
    return net


def load_data(
    path: str,
    network: Network,
    labels_path: str | None = None,
    samples: int | None = None,
    timesteps: int | None = None,
    time_window: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Frames ``(S, T, *input_shape)`` and labels from ``path`` (via
    :func:`asyncsim.load_inputs`; event data is binned with ``time_window`` and
    ``timesteps``), labels overridden by ``labels_path``, cut to the first ``samples``
    samples."""
    try:
        from .io import load_inputs
    except ImportError:  # pragma: no cover - asyncsim.io ships with the package
        raise AsyncsimError(
            f"cannot read inputs {path!r}: the data readers (asyncsim.io) are not installed"
        ) from None
    kw: dict[str, Any] = {"input_shape": tuple(network.input_shape)}  # type: ignore[arg-type]
    if timesteps is not None:
        kw["n_timesteps"] = timesteps
    if time_window is not None:
        kw["time_window"] = time_window
    try:
        frames, labels = load_inputs(path, **kw)
    except AsyncsimError:
        raise
    except Exception as exc:
        raise AsyncsimError(
            f"cannot read inputs {path!r}: {type(exc).__name__}: {_one_line(str(exc))}"
        ) from exc
    frames = np.asarray(frames)
    if labels_path is not None:
        labels = load_labels(labels_path)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != frames.shape[0]:
            raise AsyncsimError(
                f"labels shape {labels.shape} does not match the {frames.shape[0]} samples of "
                f"{path!r}; give one label per sample"
            )
    if samples is not None:
        frames = frames[:samples]
        labels = None if labels is None else labels[:samples]
    return frames, labels


def load_labels(path: str) -> np.ndarray:
    """Class labels from ``.npy``, ``.npz`` (key ``labels`` or ``y``) or a text file with
    one integer per line (``.txt`` / ``.csv``)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        lab = np.load(p, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            key = next((k for k in ("labels", "y", "targets") if k in z.files), None)
            if key is None:
                raise AsyncsimError(
                    f"labels file {path!r} has arrays {z.files}; name the labels 'labels' or 'y'"
                )
            lab = z[key]
    elif suffix in (".txt", ".csv"):
        try:
            lab = np.loadtxt(p, ndmin=1)
        except ValueError as exc:
            raise AsyncsimError(
                f"labels file {path!r}: {_one_line(str(exc))}; write one integer label per line"
            ) from None
    else:
        raise AsyncsimError(
            f"labels file {path!r}: unknown type {suffix!r}; use .npy, .npz, .txt or .csv"
        )
    lab = np.asarray(lab)
    if lab.ndim != 1:
        raise AsyncsimError(f"labels in {path!r} have shape {lab.shape}; expected (samples,)")
    return lab


def _meta(command: str, **kw: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "asyncsim_version": __version__,
        "command": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(kw)
    return meta


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not np.isfinite(f):
            return "-"
        if abs(f) >= 1e12:
            return f"{f:.4g}"
        if f == int(f) or abs(f) >= 10**digits:
            return f"{f:.0f}"
        return f"{f:.{digits}g}"
    return str(v)


def _pair(m: dict[str, Any], a: str, b: str) -> str:
    return f"{_fmt(m.get(a))} / {_fmt(m.get(b))}"


def _echo_json(obj: Any) -> None:
    from .export import jsonable

    click.echo(json.dumps(jsonable(obj), indent=2, allow_nan=False))


def _energy_presets(names: Sequence[str]) -> list[Any]:
    """The requested presets (the first is the headline); every built-in preset is
    computed too, after them (energy estimates are cheap)."""
    from .energy import DEFAULT_PRESET, PRESETS, get_preset

    chosen = [get_preset(n) for n in (names or (DEFAULT_PRESET,))]
    have = {p.name for p in chosen}
    return chosen + [p for n, p in PRESETS.items() if n not in have]


def _check_out(out: str | None, force: bool) -> None:
    if out is not None:
        from .export import check_output

        check_output(out, force)


# ---------------------------------------------------------------------- options
def _common_model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--profile",
        default=None,
        help="Trainer profile for NIR conventions (e.g. snntorch, norse, sinabs, "
        "spikingjelly); default: read from the file.",
    )(f)
    f = click.option(
        "--dt", type=float, default=None, help="Seconds per timestep for NIR time constants."
    )(f)
    return f


def _common_data_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="Worker threads (default: all cores).",
    )(f)
    f = click.option(
        "--samples",
        type=click.IntRange(min=1),
        default=None,
        help="Use only the first N samples.",
    )(f)
    f = click.option(
        "--time-window",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Frame length for event data, in the unit of the events' t (tonic: us).",
    )(f)
    f = click.option(
        "--timesteps",
        type=click.IntRange(min=1),
        default=None,
        help="Frames per sample for event data (default: cover every event).",
    )(f)
    f = click.option(
        "--labels",
        "labels_path",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Labels file (.npy, .npz, .txt); default: labels stored with the inputs.",
    )(f)
    f = click.option(
        "--input",
        "-i",
        "input_path",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Input data: .npy/.npz/.h5 frames, NIR spike data or tonic-style events.",
    )(f)
    return f


def _output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bar, no table.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(f)
    f = click.option("--force", is_flag=True, help="Replace an existing output file.")(f)
    f = click.option(
        "--out",
        "-o",
        type=click.Path(dir_okay=False),
        default=None,
        help="Write the results to FILE.json, FILE.csv or FILE.h5.",
    )(f)
    return f


def _energy_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--energy",
        "energy",
        multiple=True,
        metavar="PRESET|FILE",
        help="Energy preset (repeatable; first one is shown): "
        "horowitz45-fp32 (default), horowitz45-int8, loihi-davies2018, loihi-sanafe, "
        "truenorth, odin, or a .json/.yaml table. See 'asyncsim presets'.",
    )(f)


# ---------------------------------------------------------------------- the group
@click.group(
    name="asyncsim",
    cls=AsyncsimGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="asyncsim")
@click.option("--debug", is_flag=True, help="Show the full traceback of unexpected errors.")
def main(debug: bool) -> None:
    """Run trained spiking neural networks spike by spike, without layer barriers,
    and compare with layer-synchronous execution."""


# ---------------------------------------------------------------------- run
@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@_common_data_options
@click.option(
    "--policy",
    type=click.Choice(POLICIES, case_sensitive=False),
    default="fifo",
    show_default=True,
    help="Scheduling policy.",
)
@click.option(
    "--group-size",
    "-F",
    default="1",
    show_default=True,
    help="Forward group size F: spikes delivered per forward step (integer or 'inf').",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--stop",
    default="drain",
    show_default=True,
    help="Stop rule per timestep: drain, output, output:K or steps:N.",
)
@click.option(
    "--input-mode",
    type=click.Choice(("prioritised", "queued"), case_sensitive=False),
    default="prioritised",
    show_default=True,
)
@_common_model_options
@_energy_option
@click.option("--arrays", is_flag=True, help="Also write per-sample arrays to a JSON output.")
@_output_options
def run(
    model: str,
    input_path: str,
    labels_path: str | None,
    timesteps: int | None,
    time_window: float | None,
    samples: int | None,
    threads: int | None,
    policy: str,
    group_size: str,
    seed: int,
    stop: str,
    input_mode: str,
    profile: str | None,
    dt: float | None,
    energy: tuple[str, ...],
    arrays: bool,
    out: str | None,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Simulate MODEL on the inputs under one policy; print and write all metrics."""
    from .compare import measure
    from .compile import compile_network
    from .simulator import Simulator

    _check_out(out, force)
    presets = _energy_presets(energy)
    net = load_model(model, dt, profile)
    frames, labels = load_data(input_path, net, labels_path, samples, timesteps, time_window)
    compiled = compile_network(net)
    sim = Simulator(
        compiled,
        policy=policy.lower(),
        group_size=group_size,
        seed=seed,
        stop=stop,
        input_mode=input_mode.lower(),
        threads=threads,
    )
    label = "layered" if sim.policy.label == "layered" else f"{sim.policy.label} F={group_size}"
    with Progress(label, not quiet) as bar:
        res = sim.run(frames, labels, progress=bar)
    metrics = measure(res, compiled, frames, presets)
    meta = _meta(
        "run",
        model=str(model),
        inputs=str(input_path),
        network=net.name,
        model_metadata=net.metadata,
    )
    doc = {"meta": meta, "metrics": metrics, "populations": res.per_population()}
    if out is not None:
        from .export import write_run

        write_run(out, res, metrics, meta, overwrite=force, arrays=arrays)
    if as_json:
        _echo_json(doc)
    elif not quiet:
        click.echo(format_run(doc))
        if out is not None:
            click.echo(f"wrote {out}")


def format_run(doc: dict[str, Any]) -> str:
    """The summary table printed by ``asyncsim run``."""
    from .bench import format_table
    from .energy import format_energy

    m = doc["metrics"]
    meta = doc["meta"]
    lines = [
        f"model   {meta['model']} ({meta.get('network', '')})",
        f"inputs  {meta['inputs']}: {m['samples']} samples x {m['timesteps']} timesteps",
        f"run     policy {m['policy']}"
        + ("" if m["policy"] == "layered" else f", F={m['group_size']}, seed {m['seed']}")
        + f", stop {m['stop']}, input {m['input_mode']}",
        "",
    ]
    rows = [
        ("accuracy", m["accuracy"]),
        ("no decision (share of samples)", m["no_decision"]),
        ("spikes per sample", m["spikes_per_sample"]),
        ("spike density", m["spike_density"]),
        ("activation sparsity", m["activation_sparsity"]),
        ("synaptic ops per sample (network)", m["synops_per_sample"]),
        ("synaptic ops per sample (input)", m["input_synops_per_sample"]),
        ("effective ACs / MACs per sample", _pair(m, "effective_acs", "effective_macs")),
        ("dense synaptic ops per sample", m["dense_synops"]),
        ("neuron updates per sample", m["neuron_updates_per_sample"]),
        ("forward steps per sample", m["forward_steps_per_sample"]),
        ("peak queue", m["peak_queue"]),
        (
            "first output: timestep / spikes",
            _pair(m, "first_output_timestep", "first_output_spikes"),
        ),
        (
            "stable correct: timestep / spikes",
            _pair(m, "stable_correct_timestep", "stable_correct_spikes"),
        ),
    ]
    for name, est in m["energy"].items():
        rows.append((f"energy per sample ({name}, {est['scope']})", format_energy(est["total_pj"])))
    width = max(len(r[0]) for r in rows)
    lines += [f"{k.ljust(width)}  {_fmt(v)}" for k, v in rows]
    lines.append("")
    head = [
        "population",
        "neurons",
        "spikes/sample",
        "density",
        "synops/sample",
        "updates/sample",
        "reactivity",
    ]
    body = [
        [
            p["population"],
            _fmt(p["neurons"]),
            _fmt(p["spikes_per_sample"]),
            _fmt(p["spike_density"]),
            _fmt(p["synops_per_sample"] + p["input_synops_per_sample"]),
            _fmt(p["neuron_updates_per_sample"]),
            _fmt(p["mean_reactivity"]),
        ]
        for p in doc["populations"]
    ]
    lines.append(format_table(head, body))
    return "\n".join(lines)


# ---------------------------------------------------------------------- compare
def _split_list(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise AsyncsimError(f"{what} {text!r}: give a comma-separated list")
    return items


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@_common_data_options
@click.option(
    "--policies",
    default="fifo,momentum,random",
    show_default=True,
    help="Comma-separated asynchronous policies to sweep (layered always runs).",
)
@click.option(
    "--group-sizes",
    default=None,
    help="Comma-separated F values, e.g. 1,4,16,inf (default: 1, 2, 4, ... up to the "
    "widest layer, then inf).",
)
@click.option(
    "--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds for random."
)
@click.option("--stop", default="drain", show_default=True, help="Stop rule of asynchronous runs.")
@click.option(
    "--input-mode",
    type=click.Choice(("prioritised", "queued"), case_sensitive=False),
    default="prioritised",
    show_default=True,
)
@_common_model_options
@_energy_option
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write figures (raster, decision curve, sweep, energy) as PNG into DIR.",
)
@click.option(
    "--raster-sample",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Sample shown in the raster plot.",
)
@_output_options
def compare(
    model: str,
    input_path: str,
    labels_path: str | None,
    timesteps: int | None,
    time_window: float | None,
    samples: int | None,
    threads: int | None,
    policies: str,
    group_sizes: str | None,
    seeds: str,
    stop: str,
    input_mode: str,
    profile: str | None,
    dt: float | None,
    energy: tuple[str, ...],
    plot_dir: str | None,
    raster_sample: int,
    out: str | None,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Compare layered execution with every asynchronous policy over a sweep of F."""
    from . import compare as C
    from .compile import compile_network
    from .policies import StopRule

    _check_out(out, force)
    presets = _energy_presets(energy)
    pols = _split_list(policies, "--policies") or []
    sizes = _split_list(group_sizes, "--group-sizes")
    seed_text = _split_list(seeds, "--seeds") or []
    try:
        seed_list = [int(s) for s in seed_text]
    except ValueError:
        raise AsyncsimError(f"--seeds {seeds!r}: give comma-separated integers >= 0") from None
    StopRule.parse(stop)
    net = load_model(model, dt, profile)
    specs = C.sweep_specs(net.widest(), pols, sizes, seed_list)  # validates early
    plot_files = _plot_targets(plot_dir, force) if plot_dir else None
    frames, labels = load_data(input_path, net, labels_path, samples, timesteps, time_window)
    if plot_files and raster_sample >= frames.shape[0]:
        raise AsyncsimError(
            f"--raster-sample {raster_sample} is out of range: the inputs have "
            f"{frames.shape[0]} samples"
        )
    compiled = compile_network(net)
    with Progress(f"{len(specs)} runs", not quiet) as bar:
        runs = C.sweep(
            compiled,
            frames,
            labels,
            policies=pols,
            group_sizes=sizes,
            seeds=seed_list,
            stop=stop,
            input_mode=input_mode.lower(),
            energy=presets,
            threads=threads,
            progress=bar,
        )
    rows = C.aggregate(runs)
    meta = _meta(
        "compare",
        model=str(model),
        inputs=str(input_path),
        network=net.name,
        model_metadata=net.metadata,
        samples=int(frames.shape[0]),
        timesteps=int(frames.shape[1]),
        stop=stop,
        input_mode=input_mode.lower(),
        energy_presets=[p.name for p in presets],
    )
    written = []
    if out is not None:
        from .export import write_compare

        written.append(str(write_compare(out, rows, runs, meta, overwrite=force)))
    if plot_files:
        written.extend(
            _write_plots(
                plot_files,
                compiled,
                frames,
                labels,
                rows,
                specs,
                raster_sample,
                stop,
                input_mode,
                force,
            )
        )
    if as_json:
        _echo_json({"meta": meta, "rows": rows, "runs": runs})
    elif not quiet:
        click.echo(format_compare(rows, meta))
        for w in written:
            click.echo(f"wrote {w}")


PLOT_NAMES = {
    "raster": "raster.png",
    "decision_curve": "decision_curve.png",
    "sweep": "sweep.png",
    "energy": "energy.png",
}


def _plot_targets(plot_dir: str, force: bool) -> dict[str, Path]:
    """Check matplotlib and the figure names before any simulation."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise AsyncsimError(
            "--plot needs matplotlib: pip install matplotlib (or asyncsim[plot])"
        ) from None
    d = Path(plot_dir)
    if d.exists() and not d.is_dir():
        raise AsyncsimError(f"--plot {plot_dir!r} is a file; give a directory for the figures")
    files = {k: d / v for k, v in PLOT_NAMES.items()}
    for p in files.values():
        if p.exists() and not force:
            raise AsyncsimError(
                f"figure {str(p)!r} already exists; pass --force to replace it or choose "
                "another --plot directory"
            )
    return files


def _write_plots(
    files: dict[str, Path],
    compiled: Any,
    frames: np.ndarray,
    labels: np.ndarray | None,
    rows: list[dict[str, Any]],
    specs: list[Any],
    sample: int,
    stop: str,
    input_mode: str,
    force: bool,
) -> list[str]:
    from . import plots
    from .compare import RunSpec, record_sample

    next(iter(files.values())).parent.mkdir(parents=True, exist_ok=True)
    out = []
    # raster: layered and each asynchronous policy at the smallest F of the sweep
    chosen: list[RunSpec] = []
    for s in specs:
        if all(c.policy != s.policy for c in chosen):
            chosen.append(s)
    rec = record_sample(compiled, frames, sample, chosen, labels, stop=stop, input_mode=input_mode)
    out.append(str(plots.raster(rec, files["raster"], overwrite=force)))
    if labels is not None:
        out.append(str(plots.decision_curve(rows, files["decision_curve"], overwrite=force)))
    if any(r["policy"] != "layered" for r in rows):
        out.append(str(plots.sweep_plot(rows, files["sweep"], overwrite=force)))
    out.append(str(plots.energy_breakdown(rows, files["energy"], overwrite=force)))
    return out


def format_compare(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> str:
    """The comparison table: absolute values (random: mean ± std over seeds) and the
    ratio to layered as ``(xR)``."""
    from .bench import format_table
    from .energy import format_energy

    def num(v: Any, kind: str) -> str:
        if v is None:
            return "-"
        if kind == "acc":
            return f"{v:.3f}"
        if kind == "density":
            return f"{v:.4f}"
        if kind == "energy":
            return format_energy(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"

    def cell(r: dict[str, Any], key: str, kind: str = "", rel: bool = True) -> str:
        v = r.get(key)
        text = num(v, kind)
        sd = r.get(f"{key}_std")
        show_sd = kind != "density" and r.get("runs", 1) > 1
        if v is not None and show_sd and sd and sd > 1e-9 * max(1.0, abs(v)):
            text += " ±" + (f"{sd:.2g}" if kind != "energy" else format_energy(sd))
        rv = r.get(f"{key}_rel")
        if rel and r["policy"] != "layered" and rv is not None:
            text += f" (x{rv:.2f})"
        return text

    head = [
        "run",
        "accuracy",
        "spikes/sample",
        "density",
        "synops/sample",
        "1st output",
        "stable correct",
        "energy/sample",
    ]
    body = []
    for r in rows:
        name = "layered" if r["policy"] == "layered" else f"{r['policy']} F={r['group_size']}"
        if r.get("runs", 1) > 1:
            name += f" ({r['runs']} seeds)"
        body.append(
            [
                name,
                cell(r, "accuracy", "acc", rel=False),
                cell(r, "spikes_per_sample"),
                cell(r, "spike_density", "density", rel=False),
                cell(r, "synops_per_sample"),
                cell(r, "first_output_spikes"),
                cell(r, "stable_correct_spikes"),
                cell(r, "energy_pj", "energy"),
            ]
        )
    lines = []
    preset = "first preset"
    if meta:
        preset = (meta.get("energy_presets") or ["?"])[0]
        lines.append(
            f"{meta.get('model')} on {meta.get('inputs')}: {meta.get('samples')} samples x "
            f"{meta.get('timesteps')} timesteps, stop rule {meta.get('stop')}"
        )
    lines.append(format_table(head, body))
    note = (
        "(xR) ratio to layered; ± std over random seeds; 1st output / stable correct: network "
        "spikes processed from the start of a sample until the first output spike / until "
        "the decision is correct for good (mean over the samples that reach it); synops: "
        f"network spikes only; energy: {preset} (see "
        "'asyncsim presets')"
    )
    lines.append(textwrap.fill(note, width=100))
    return "\n".join(lines)


# ---------------------------------------------------------------------- inspect
@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@_common_model_options
@click.option(
    "--input",
    "-i",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Also measure effective synaptic operations per timestep on these inputs "
    "(layered execution).",
)
@click.option("--samples", type=click.IntRange(min=1), default=None, help="First N samples only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def inspect(
    model: str,
    profile: str | None,
    dt: float | None,
    input_path: str | None,
    samples: int | None,
    as_json: bool,
) -> None:
    """Describe MODEL: populations, parameters, projections, fan-in/fan-out, and dense
    vs effective synaptic operations per timestep."""
    net = load_model(model, dt, profile)
    info = describe(net)
    info["model"] = str(model)
    if input_path is not None:
        from .simulator import Simulator

        frames, labels = load_data(input_path, net, None, samples, None)
        res = Simulator(net, policy="layered").run(frames, labels)
        n_st = res.n_samples * res.n_timesteps
        per_t = float((res.synops.sum() + res.input_synops.sum()) / n_st)
        info["measured"] = {
            "inputs": str(input_path),
            "samples": res.n_samples,
            "timesteps": res.n_timesteps,
            "effective_synops_per_timestep": per_t,
            "spikes_per_timestep": float(res.spikes.sum() / n_st),
            "accuracy": res.accuracy,
        }
    if as_json:
        _echo_json(info)
    else:
        click.echo(format_inspect(info))


def _range(a: Any) -> list[float] | None:
    if a is None:
        return None
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        return None
    return [float(arr.min()), float(arr.max())]


def describe(net: Network) -> dict[str, Any]:
    """Everything ``asyncsim inspect`` shows, as plain data."""
    from .compile import compile_network
    from .energy import dense_synapses
    from .network import Conv2d, Dense, OneToOne, Sparse

    c = compile_network(net)
    a = c.arrays
    n_in = c.n_inputs
    fan_out = c.fan_out()
    # fan-in: nonzero synapses arriving at each neuron (internal order)
    seg_of_syn = np.repeat(np.arange(a.seg_len.size), a.seg_len)
    offs = np.arange(seg_of_syn.size) - np.repeat(np.cumsum(a.seg_len) - a.seg_len, a.seg_len)
    tgt = a.seg_tgt[seg_of_syn] + offs
    indexed = a.seg_kind[seg_of_syn] == 1  # seg_tgt is an offset into seg_idx there
    tgt[indexed] = a.seg_idx[tgt[indexed]]
    nz = a.weights[a.seg_w[seg_of_syn] + offs] != 0
    fan_in = np.bincount(tgt[nz], minlength=c.n_neurons)
    dense = dense_synapses(net)
    pops = []
    for i, p in enumerate(net.populations):
        lo, hi = int(c.starts[i]), int(c.starts[i + 1])
        fo = fan_out[n_in + lo : n_in + hi]
        fi = fan_in[lo:hi]
        pops.append(
            {
                "name": p.name,
                "shape": list(p.shape),  # type: ignore[arg-type]
                "neurons": p.size,
                "threshold": _range(p.threshold),
                "beta": _range(p.beta),
                "reset": p.reset,
                "reset_delay": p.reset_delay,
                "refractory": p.refractory,
                "bias": _range(p.bias),
                "alpha": _range(p.alpha),
                "threshold_op": p.threshold_op,
                "multi_spike": p.multi_spike,
                "spiking": p.spiking,
                "fan_in": {"mean": float(fi.mean()), "max": int(fi.max())},
                "fan_out": {"mean": float(fo.mean()), "max": int(fo.max())},
                "metadata": dict(p.metadata),
            }
        )
    projs = []
    for pr in net.projections:
        w = pr.weight if hasattr(pr, "weight") else None
        kind = {Dense: "dense", Sparse: "sparse", OneToOne: "one-to-one", Conv2d: "conv2d"}.get(
            type(pr), type(pr).__name__
        )
        entry: dict[str, Any] = {
            "name": pr.name,
            "type": kind,
            "source": pr.source,
            "target": pr.target,
            "delay": int(getattr(pr, "delay", 0)),
            "weight_shape": list(np.shape(np.asarray(w))),
            "weight": _range(w),
            "parameters": int(np.size(np.asarray(w))),
            "zero_weights": int(np.sum(np.asarray(w) == 0)) if w is not None else 0,
            "dense_synops_per_timestep": dense[pr.name],
        }
        if isinstance(pr, Conv2d):
            pad = pr.padding if isinstance(pr.padding, str) else list(pr.padding)
            entry.update(stride=list(pr.stride), padding=pad, groups=pr.groups)
        projs.append(entry)
    dense_total = int(sum(dense.values()))
    n_params = int(sum(p["parameters"] for p in projs))
    return {
        "network": net.name,
        "input_shape": list(net.input_shape),  # type: ignore[arg-type]
        "inputs": n_in,
        "neurons": c.n_neurons,
        "output": net.output,
        "readout": net.readout,
        "widest": net.widest(),
        "topological_order": net.topological_order(),
        "metadata": dict(net.metadata),
        "populations": pops,
        "projections": projs,
        "input_fan_out": {"mean": float(fan_out[:n_in].mean()), "max": int(fan_out[:n_in].max())}
        if n_in
        else None,
        "weights": n_params,
        "connection_sparsity": float(sum(p["zero_weights"] for p in projs) / n_params)
        if n_params
        else 0.0,
        "dense_synops_per_timestep": dense_total,
        "nonzero_synapses": c.n_synapses,
        "max_effective_synops_per_timestep": c.n_synapses,
    }


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "    ")


def format_inspect(info: dict[str, Any]) -> str:
    """The text printed by ``asyncsim inspect``."""
    from .bench import format_table
    from .export import jsonable

    def rng(r: list[float] | None) -> str:
        if r is None:
            return "-"
        return _fmt(r[0]) if r[0] == r[1] else f"{_fmt(r[0])}..{_fmt(r[1])}"

    lines = [
        f"model     {info.get('model', '')}",
        f"network   {info['network']}: input {tuple(info['input_shape'])}, "
        f"{info['neurons']} neurons, output {info['output']!r} (readout {info['readout']})",
    ]
    for k, v in info["metadata"].items():
        text = v if isinstance(v, str) else json.dumps(jsonable(v))
        lines.append(_wrap(f"{k}: {_one_line(text)}", "  "))
    lines.append("")
    head = ["population", "shape", "threshold", "beta", "reset", "bias", "fan-in", "fan-out"]
    body = []
    for p in info["populations"]:
        reset = p["reset"] + (" delayed" if p["reset_delay"] else "")
        if not p["refractory"]:
            reset += ", no refr."
        body.append(
            [
                p["name"],
                "x".join(map(str, p["shape"])),
                rng(p["threshold"]),
                rng(p["beta"]),
                reset,
                rng(p["bias"]),
                f"{_fmt(p['fan_in']['mean'], 3)} (max {p['fan_in']['max']})",
                f"{_fmt(p['fan_out']['mean'], 3)} (max {p['fan_out']['max']})",
            ]
        )
    lines.append(format_table(head, body))
    pm = [(p["name"], p["metadata"]) for p in info["populations"] if p["metadata"]]
    for name, md in pm:
        text = ", ".join(f"{k}={_one_line(str(v))}" for k, v in md.items())
        lines.append(_wrap(f"{name}: {text}", "  "))
    lines.append("")
    head = [
        "projection",
        "type",
        "source -> target",
        "weights",
        "range",
        "zeros",
        "delay",
        "dense ops/ts",
    ]
    body = [
        [
            pr["name"],
            pr["type"],
            f"{pr['source']} -> {pr['target']}",
            "x".join(map(str, pr["weight_shape"])),
            rng(pr["weight"]),
            str(pr["zero_weights"]),
            str(pr["delay"]),
            str(pr["dense_synops_per_timestep"]),
        ]
        for pr in info["projections"]
    ]
    lines.append(format_table(head, body))
    lines.append("")
    lines.append(
        textwrap.fill(
            f"synaptic operations per timestep: dense {info['dense_synops_per_timestep']} "
            "(every synapse, NeuroBench 'Dense'); at most "
            f"{info['max_effective_synops_per_timestep']} effective (every source spiking "
            "once, nonzero weights only)",
            width=100,
        )
    )
    lines.append(
        f"weights {info['weights']}, connection sparsity {info['connection_sparsity']:.4f}"
    )
    m = info.get("measured")
    if m:
        lines.append(
            textwrap.fill(
                f"measured on {m['inputs']} ({m['samples']} samples x {m['timesteps']} "
                f"timesteps, layered): {_fmt(m['effective_synops_per_timestep'])} effective "
                f"synaptic operations and {_fmt(m['spikes_per_timestep'])} spikes per "
                f"timestep, accuracy {_fmt(m['accuracy'])}",
                width=100,
            )
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- bench
@main.command()
@click.option("--timesteps", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--samples", type=click.IntRange(min=1), default=16, show_default=True)
@click.option(
    "--policies",
    default="layered,fifo,momentum,random",
    show_default=True,
    help="Comma-separated policies.",
)
@click.option("--group-sizes", default="1,inf", show_default=True, help="Comma-separated F values.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--sizes", default="784,500,500,10", show_default=True, help="Layer sizes, input first."
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Input spike probability per channel and timestep.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Worker threads (default: all cores).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_output_options
def bench(
    timesteps: int,
    samples: int,
    policies: str,
    group_sizes: str,
    repeats: int,
    sizes: str,
    rate: float,
    threads: int | None,
    seed: int,
    out: str | None,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure engine throughput on this machine (random fully connected LIF network)."""
    from .bench import benchmark, format_bench
    from .policies import Policy, parse_group_size

    _check_out(out, force)
    pols = [Policy.parse(p).label for p in _split_list(policies, "--policies") or []]
    fs = _split_list(group_sizes, "--group-sizes") or []
    for f in fs:
        parse_group_size(f)
    try:
        layer_sizes = [int(s) for s in _split_list(sizes, "--sizes") or []]
    except ValueError:
        raise AsyncsimError(f"--sizes {sizes!r}: give comma-separated integers") from None
    if len(layer_sizes) < 2 or min(layer_sizes) < 1:
        raise AsyncsimError(f"--sizes {sizes!r}: give at least two sizes >= 1 (input first)")
    with Progress("bench", not quiet) as bar:
        rows = benchmark(
            sizes=layer_sizes,
            timesteps=timesteps,
            samples=samples,
            policies=pols,
            group_sizes=fs,
            repeats=repeats,
            rate=rate,
            threads=threads,
            seed=seed,
            progress=bar,
        )
    meta = _meta("bench", sizes=layer_sizes, rate=rate)
    if out is not None:
        from .export import write_rows

        write_rows(out, rows, {**meta, "kind": "bench"}, overwrite=force)
    if as_json:
        _echo_json({"meta": meta, "rows": rows})
    elif not quiet:
        click.echo(format_bench(rows))
        if out is not None:
            click.echo(f"wrote {out}")


# ---------------------------------------------------------------------- presets
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def presets(as_json: bool) -> None:
    """List the energy presets, their scope, prices and sources."""
    from .energy import PRESETS, TERMS

    if as_json:
        _echo_json(
            {
                "presets": {
                    n: {
                        "title": p.title,
                        "scope": p.scope,
                        "costs_pj": dict(p.costs_pj),
                        "source": p.source,
                        "notes": p.notes,
                    }
                    for n, p in PRESETS.items()
                },
                "terms": TERMS,
            }
        )
        return
    for p in PRESETS.values():
        costs = ", ".join(f"{k} {v:g} pJ" for k, v in p.costs_pj.items())
        click.echo(f"{p.name}  [{p.scope}]  {p.title}")
        click.echo(f"    prices: {costs}")
        click.echo(f"    source: {p.source}")
        if p.notes:
            click.echo(f"    notes:  {p.notes}")
    click.echo("")
    click.echo("terms a user table (.json/.yaml, --energy FILE) may price:")
    for k, v in TERMS.items():
        click.echo(f"    {k}: {v}")


if __name__ == "__main__":  # pragma: no cover
    main()
