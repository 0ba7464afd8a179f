"""Write results to JSON, CSV or HDF5, atomically and without overwriting by accident.

Every writer creates a temporary file in the target's directory, writes and flushes it
completely, then publishes it under the final name in one step: with ``overwrite=False``
by a hard link (which fails if the name exists, so a concurrent writer cannot be
clobbered either), with ``overwrite=True`` by :func:`os.replace`. A run killed while
writing leaves at most a hidden ``.NAME.*.tmp`` file, never a half-written ``NAME``; an
exception while writing removes the temporary file.

Layouts (``kind`` is ``"run"`` or ``"compare"``):

* JSON: ``{"meta": {...}, "metrics": {...}, "populations": [...]}`` for a run,
  ``{"meta": {...}, "rows": [...], "runs": [...]}`` for a comparison. Non-finite numbers
  are written as ``null``.
* CSV: a run is written long: columns ``population,metric,value`` (``population`` empty for
  whole-run metrics; nested metrics have dotted names; lists are JSON-encoded). A
  comparison is one row per (policy, F) with dotted column names.
* HDF5: attributes of the root hold ``meta``; a run has group ``metrics`` (attributes),
  ``populations/<name>`` (attributes) and ``arrays/<name>`` (every per-sample array of the
  :class:`~asyncsim.Result`); a comparison has groups ``rows`` and ``runs``, one dataset
  per column (numbers as float64 with NaN for "none", text as UTF-8 strings, equal-length
  lists as 2-D arrays).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import atomic_write, check_target, jsonable
from .errors import AsyncsimError
from .result import Result

FORMATS = {".json": "json", ".csv": "csv", ".h5": "h5", ".hdf5": "h5"}


def output_format(path: str | os.PathLike[str]) -> str:
    """``"json"``, ``"csv"`` or ``"h5"`` from the file suffix (raises otherwise)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise AsyncsimError(
            f"output file {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
            "use .json, .csv or .h5"
        )
    return FORMATS[suffix]


def check_output(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Validate an output path before any work is done: known suffix, existing parent
    directory, and no existing file unless ``overwrite``."""
    output_format(path)
    return check_target(path, overwrite)


# ---------------------------------------------------------------------- conversion
def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; other values unchanged."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _cell(v: Any) -> str:
    v = jsonable(v)
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _dump_json(obj: Any) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(jsonable(obj), fh, indent=2, allow_nan=False)
            fh.write("\n")

    return write


def _dump_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([_cell(v) for v in r])
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())

    return write


def _h5_attr(group: Any, key: str, v: Any) -> None:
    v = jsonable(v)
    if v is None:
        group.attrs[key] = np.nan
    elif isinstance(v, (list, dict)):
        group.attrs[key] = json.dumps(v)
    else:
        group.attrs[key] = v


def _h5_table(group: Any, rows: Sequence[dict[str, Any]]) -> None:
    """One dataset per column; see the module docstring."""
    flat = [flatten(r) for r in rows]
    keys: list[str] = []
    for fr in flat:
        keys.extend(k for k in fr if k not in keys)
    for k in keys:
        vals = [jsonable(fr.get(k)) for fr in flat]
        name = k.replace("/", "_")
        if all(v is None or _is_number(v) for v in vals):
            group.create_dataset(
                name, data=np.array([np.nan if v is None else v for v in vals], np.float64)
            )
        elif all(isinstance(v, bool) for v in vals):
            group.create_dataset(name, data=np.array(vals, dtype=bool))
        elif (
            all(isinstance(v, list) for v in vals)
            and len({len(v) for v in vals}) == 1
            and all(x is None or isinstance(x, (int, float)) for v in vals for x in v)
        ):
            arr = np.array([[np.nan if x is None else x for x in v] for v in vals], np.float64)
            group.create_dataset(name, data=arr)
        else:
            text = [v if isinstance(v, str) else json.dumps(v) for v in vals]
            group.create_dataset(name, data=np.array(text, dtype=object), dtype=_str_dtype())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str_dtype() -> Any:
    import h5py

    return h5py.string_dtype("utf-8")


# ---------------------------------------------------------------------- runs
def write_run(
    path: str | os.PathLike[str],
    result: Result,
    metrics: dict[str, Any],
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
    arrays: bool = False,
) -> Path:
    """Write one run: ``metrics`` (a :func:`asyncsim.compare.measure` row or
    ``result.summary()``), the per-population rows and, in HDF5 always and in JSON with
    ``arrays=True``, every per-sample array of ``result``."""
    meta = dict(meta or {})
    meta.setdefault("kind", "run")
    pops = result.per_population()
    fmt = output_format(path)
    if fmt == "json":
        doc: dict[str, Any] = {"meta": meta, "metrics": metrics, "populations": pops}
        if arrays:
            doc["arrays"] = {
                n: getattr(result, n)
                for n in Result.array_names()
                if getattr(result, n) is not None
            }
        return atomic_write(path, _dump_json(doc), overwrite)
    if fmt == "csv":
        rows: list[list[Any]] = [["", k, v] for k, v in flatten(metrics).items()]
        for pr in pops:
            rows.extend([pr["population"], k, v] for k, v in pr.items() if k != "population")
        return atomic_write(path, _dump_csv(["population", "metric", "value"], rows), overwrite)

    def write_h5(tmp: str) -> None:
        import h5py

        with h5py.File(tmp, "w") as f:
            for k, v in flatten(meta).items():
                _h5_attr(f, k, v)
            g = f.create_group("metrics")
            for k, v in flatten(metrics).items():
                _h5_attr(g, k, v)
            gp = f.create_group("populations")
            for pr in pops:
                sub = gp.create_group(pr["population"])
                for k, v in pr.items():
                    _h5_attr(sub, k, v)
            ga = f.create_group("arrays")
            for n in Result.array_names():
                val = getattr(result, n)
                if val is not None:
                    ga.create_dataset(n, data=np.asarray(val), compression="gzip")

    return atomic_write(path, write_h5, overwrite)


# ---------------------------------------------------------------------- comparisons
def write_compare(
    path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]] = (),
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a comparison: aggregated ``rows`` (one per policy and F) and, in JSON and
    HDF5, the individual ``runs`` (one per simulation)."""
    meta = dict(meta or {})
    meta.setdefault("kind", "compare")
    fmt = output_format(path)
    if fmt == "json":
        return atomic_write(
            path, _dump_json({"meta": meta, "rows": list(rows), "runs": list(runs)}), overwrite
        )
    if fmt == "csv":
        flat = [flatten(r) for r in rows]
        keys: list[str] = []
        for fr in flat:
            keys.extend(k for k in fr if k not in keys)
        table = [[fr.get(k) for k in keys] for fr in flat]
        return atomic_write(path, _dump_csv(keys, table), overwrite)

    def write_h5(tmp: str) -> None:
        import h5py

        with h5py.File(tmp, "w") as f:
            for k, v in flatten(meta).items():
                _h5_attr(f, k, v)
            _h5_table(f.create_group("rows"), rows)
            if runs:
                _h5_table(f.create_group("runs"), runs)

    return atomic_write(path, write_h5, overwrite)


def write_json(path: str | os.PathLike[str], obj: Any, overwrite: bool = False) -> Path:
    """Write any JSON-able object atomically (numpy values converted)."""
    if output_format(path) != "json":
        raise AsyncsimError(f"output file {str(path)!r}: expected a .json name")
    return atomic_write(path, _dump_json(obj), overwrite)


def write_rows(
    path: str | os.PathLike[str],
    rows: Sequence[dict[str, Any]],
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """A list of flat-or-nested dict rows as JSON (``{"meta", "rows"}``), CSV (one line
    per row) or HDF5 (one dataset per column), e.g. benchmark rows."""
    return write_compare(path, rows, (), meta, overwrite)


__all__ = [
    "FORMATS",
    "atomic_write",
    "check_output",
    "check_target",
    "flatten",
    "jsonable",
    "output_format",
    "write_compare",
    "write_json",
    "write_rows",
    "write_run",
]
