"""Spike data in: frames ``(samples, timesteps, *input_shape)`` from files or event arrays.

Accepted sources (:func:`load_inputs`):

- ``.npy``: a numeric array of frames, or a structured event array (below).
- ``.npz``: frames under ``inputs`` / ``frames`` / ``x`` / ``data`` / ``spikes`` and
  optional labels under ``labels`` / ``y`` / ``targets`` / ``label``; or structured events
  under ``events``.
- ``.h5`` / ``.hdf5``: the same dataset names, or a NIR data file
  (``nir.write_data``: ``TimeGriddedData`` frames or ``EventData`` spike times).
- in memory: a numeric array, a structured event array, or a list of event arrays (one
  per sample).

Event arrays use tonic's layout (structured numpy arrays with fields ``x``, ``t`` and
optionally ``y``, ``p``; tonic itself is never imported). They are binned into frames of
``time_window`` (in the unit of ``t``, microseconds for tonic) starting at each sample's
first event (``start_time`` overrides), counting events per (polarity, y, x):
frames are ``(samples, timesteps, P, H, W)`` with ``sensor_size = (W, H, P)`` as in tonic.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from ..errors import AsyncsimError
from ._util import H5_ERRORS, has_native_header, is_hdf5, read_isolated

FRAME_KEYS = ("inputs", "frames", "x", "data", "spikes")
LABEL_KEYS = ("labels", "y", "targets", "label")
EVENT_FIELDS = ("x", "t")


def _is_events(a: Any) -> TypeGuard[np.ndarray]:
    return isinstance(a, np.ndarray) and a.dtype.names is not None


def _smallest_int(counts: np.ndarray) -> np.ndarray:
    m = int(counts.max()) if counts.size else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if m <= np.iinfo(dt).max:
            return counts.astype(dt)
    return counts


def events_to_frames(
    events: np.ndarray | list[np.ndarray],
    *,
    time_window: float,
    sensor_size: tuple[int, int, int] | None = None,
    n_timesteps: int | None = None,
    start_time: float | None = None,
) -> np.ndarray:
    """Bin tonic-style event arrays into count frames.

    Args:
        events: one structured array (fields ``x``, ``t``, optional ``y``, ``p``) or a
            list of them (one per sample).
        time_window: frame length in the unit of ``t`` (> 0).
        sensor_size: ``(W, H, P)`` as in tonic; default: ``max + 1`` over all samples.
        n_timesteps: frames per sample; default: enough for the longest sample. Events
            after the last frame are dropped.
        start_time: time of frame 0's start; default: each sample's first event.

    Returns:
        counts shaped ``(samples, timesteps, P, H, W)`` (smallest unsigned int dtype).
        Cost: O(events + samples * timesteps * P * H * W).
    """
    samples: list[np.ndarray] = [events] if _is_events(events) else list(events)
    if not samples:
        raise AsyncsimError("no event samples given")
    for i, ev in enumerate(samples):
        if not _is_events(ev):
            raise AsyncsimError(
                f"event sample {i}: expected a structured array with fields x, t (and y, p), "
                f"got {type(ev).__name__}{'' if not hasattr(ev, 'dtype') else ' ' + str(ev.dtype)}"
            )
        names = ev.dtype.names or ()  # never None here: _is_events checked it
        missing = [f for f in EVENT_FIELDS if f not in names]
        if missing:
            raise AsyncsimError(
                f"event sample {i}: fields {ev.dtype.names} lack {', '.join(missing)}; "
                "tonic-style events need x and t (and optionally y, p)"
            )
    try:
        tw = float(time_window)
    except (TypeError, ValueError):
        raise AsyncsimError(f"time_window = {time_window!r} must be a number") from None
    if not math.isfinite(tw) or tw <= 0:
        raise AsyncsimError(
            f"time_window = {time_window!r} must be > 0 (frame length, in the unit of t)"
        )

    def col(ev: np.ndarray, f: str) -> np.ndarray:
        if f in ev.dtype.names:  # type: ignore[operator]
            return np.asarray(ev[f])
        return np.zeros(ev.shape[0], dtype=np.int64)

    for i, ev in enumerate(samples):
        for f in ("x", "y", "p", "t"):
            c = col(ev, f)
            if c.size and not np.isfinite(c.astype(np.float64)).all():
                raise AsyncsimError(f"event sample {i}: field {f} contains NaN or inf")
            if f != "t" and c.size and ((c < 0).any() or (c != np.round(c)).any()):
                if f == "p" and (c == -1).any() and set(np.unique(c)) <= {-1, 1}:
                    continue
                raise AsyncsimError(f"event sample {i}: field {f} must hold non-negative integers")
    if sensor_size is None:
        w = max((int(col(ev, "x").max()) + 1 if ev.size else 1) for ev in samples)
        h = max((int(col(ev, "y").max()) + 1 if ev.size else 1) for ev in samples)
        p = max((int(np.clip(col(ev, "p"), 0, None).max()) + 1 if ev.size else 1) for ev in samples)
        sensor_size = (w, h, p)
    try:
        w, h, p = (int(s) for s in sensor_size)
    except (TypeError, ValueError):
        raise AsyncsimError(f"sensor_size {sensor_size!r} must be (W, H, P) integers") from None
    if min(w, h, p) < 1:
        raise AsyncsimError(f"sensor_size {sensor_size!r} must be positive (W, H, P)")
    starts = []
    lengths = []
    for ev in samples:
        t = col(ev, "t").astype(np.float64)
        t0 = float(start_time) if start_time is not None else (float(t.min()) if t.size else 0.0)
        if t.size and (t < t0).any():
            raise AsyncsimError(
                f"events before start_time = {t0} (earliest {t.min()}); start_time must not "
                "exceed the first event time"
            )
        starts.append(t0)
        lengths.append(math.floor((t.max() - t0) / tw) + 1 if t.size else 1)
    n_t = int(n_timesteps) if n_timesteps is not None else max(lengths)
    if n_t < 1:
        raise AsyncsimError(f"n_timesteps = {n_timesteps!r} must be >= 1")
    frames = np.zeros((len(samples), n_t, p, h, w), dtype=np.int64)
    for i, ev in enumerate(samples):
        if not ev.size:
            continue
        x = col(ev, "x").astype(np.int64)
        y = col(ev, "y").astype(np.int64)
        pol = col(ev, "p").astype(np.int64)
        pol = np.where(pol < 0, 0, pol)
        if p == 1:
            pol = np.zeros_like(pol)
        for f, v, lim in (("x", x, w), ("y", y, h), ("p", pol, p)):
            if (v >= lim).any():
                raise AsyncsimError(
                    f"event sample {i}: {f} = {int(v.max())} is outside the sensor size "
                    f"(W, H, P) = {(w, h, p)}; pass the right sensor_size"
                )
        k = np.floor((col(ev, "t").astype(np.float64) - starts[i]) / tw).astype(np.int64)
        keep = k < n_t
        np.add.at(frames[i], (k[keep], pol[keep], y[keep], x[keep]), 1)
    return _smallest_int(frames)


def _labels(lab: Any, n: int, where: str) -> np.ndarray | None:
    if lab is None:
        return None
    a = np.asarray(lab)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1 or a.shape[0] != n:
        raise AsyncsimError(f"{where}: labels shape {a.shape} must be ({n},), one per sample")
    if not np.issubdtype(a.dtype, np.number) or (a != np.round(a)).any() or (a < 0).any():
        raise AsyncsimError(f"{where}: labels must be non-negative integer class indices")
    return a.astype(np.int64)


def _frames(a: Any, input_shape: Any, where: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise AsyncsimError(f"{where}: frames have dtype {arr.dtype}; expected numbers")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise AsyncsimError(f"{where}: frames contain NaN or inf")
    if input_shape is not None:
        shp = (
            (int(input_shape),) if np.ndim(input_shape) == 0 else tuple(int(s) for s in input_shape)
        )
        n_in = int(np.prod(shp))
        if arr.ndim == len(shp) + 1 and arr.shape[1:] == shp:
            arr = arr[None]  # one sample
        elif arr.ndim == 2 and arr.shape[1] == n_in and len(shp) > 1:
            arr = arr[None]
        if arr.ndim < 3 or int(np.prod(arr.shape[2:])) != n_in:
            raise AsyncsimError(
                f"{where}: frames of shape {arr.shape} do not fit the input shape {shp}; "
                f"expected (samples, timesteps, {', '.join(map(str, shp))})"
            )
        return arr.reshape((arr.shape[0], arr.shape[1], *shp))
    if arr.ndim < 3:
        raise AsyncsimError(
            f"{where}: frames of shape {arr.shape} must be (samples, timesteps, *input_shape); "
            "for a single sample add an axis or pass input_shape"
        )
    return arr


def _pick(
    keys: list[str], wanted: tuple[str, ...], given: str | None, where: str, what: str
) -> str | None:
    if given is not None:
        if given not in keys:
            raise AsyncsimError(f"{where}: no {what} named {given!r} (has: {', '.join(keys)})")
        return given
    for k in wanted:
        if k in keys:
            return k
    return None


def _from_events(
    ev: Any, labels: Any, opts: dict[str, Any], input_shape: Any, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    tw = opts.get("time_window")
    if tw is None:
        raise AsyncsimError(
            f"{where}: event data needs time_window (frame length in the unit of t, e.g. "
            "1000 for 1 ms with tonic's microseconds; CLI: --time-window)"
        )
    sensor = opts.get("sensor_size")
    if (
        sensor is None
        and input_shape is not None
        and np.ndim(input_shape) == 1
        and len(input_shape) == 3
    ):
        pp, hh, ww = (int(s) for s in input_shape)
        sensor = (ww, hh, pp)
    frames = events_to_frames(
        ev,
        time_window=tw,
        sensor_size=sensor,
        n_timesteps=opts.get("n_timesteps"),
        start_time=opts.get("start_time"),
    )
    return _frames(frames, input_shape, where), _labels(labels, frames.shape[0], where)


def _nir_data(path: Path, opts: dict[str, Any], input_shape: Any) -> tuple[np.ndarray, None]:
    import nir

    def read() -> Any:
        try:
            return nir.read_data(str(path))
        except H5_ERRORS as exc:
            raise AsyncsimError(f"{path}: unreadable NIR data file: {exc}") from None

    data = read_isolated(path, read)  # a damaged file can crash or hang HDF5
    nodes = data.nodes
    key = opts.get("node")
    if key is None:
        key = "input" if "input" in nodes else sorted(nodes)[0] if nodes else None
    if key not in nodes:
        raise AsyncsimError(f"{path}: no node {key!r} in the NIR data (has: {', '.join(nodes)})")
    nd = nodes[key]
    obs = getattr(nd, "observables", None)
    if not obs:
        raise AsyncsimError(f"{path}: node {key!r} holds no observables")
    name = opts.get("observable") or ("spikes" if "spikes" in obs else sorted(obs)[0])
    if name not in obs:
        raise AsyncsimError(f"{path}: node {key!r} has no observable {name!r} ({', '.join(obs)})")
    o = obs[name]
    if isinstance(o, nir.TimeGriddedData):
        frames = np.asarray(o.data)
        if frames.dtype == np.bool_:
            frames = frames.astype(np.uint8)
        return _frames(frames, input_shape, str(path)), None
    if isinstance(o, nir.EventData):
        dt = opts.get("time_window")
        if dt is None:
            raise AsyncsimError(
                f"{path}: NIR EventData has spike times; pass time_window=dt (seconds per "
                "frame) to bin them"
            )
        dt = float(dt)
        if not dt > 0:
            raise AsyncsimError(f"time_window = {dt!r} must be > 0")
        idx = np.asarray(o.idx)
        tm = np.asarray(o.time, dtype=np.float64)
        n_t = opts.get("n_timesteps") or max(1, math.ceil(float(o.t_max) / dt - 1e-9))
        frames = np.zeros((idx.shape[0], int(n_t), int(o.n_neurons)), dtype=np.float64)
        valued = isinstance(o, nir.ValuedEventData)
        for s in range(idx.shape[0]):
            ok = (idx[s] >= 0) & np.isfinite(tm[s])
            k = np.floor(tm[s][ok] / dt).astype(np.int64)
            keep = (k >= 0) & (k < n_t)
            vals = np.asarray(o.value)[s][ok][keep] if valued else 1.0
            np.add.at(frames[s], (k[keep], idx[s][ok][keep]), vals)
        if not valued:
            frames = _smallest_int(frames.astype(np.int64))
        return _frames(frames, input_shape, str(path)), None
    raise AsyncsimError(f"{path}: observable {name!r} has unsupported type {type(o).__name__}")


def load_inputs(
    path: str | os.PathLike[str] | np.ndarray | list[np.ndarray],
    *,
    input_shape: Any = None,
    time_window: float | None = None,
    n_timesteps: int | None = None,
    sensor_size: tuple[int, int, int] | None = None,
    start_time: float | None = None,
    key: str | None = None,
    labels_key: str | None = None,
    node: str | None = None,
    observable: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read input frames (and labels, if the file has them).

    Args:
        path: a file (see the module docstring) or an in-memory array / event array(s).
        input_shape: the network's input shape; frames are reshaped to it and checked.
        time_window: frame length for event data (unit of ``t``; seconds for NIR
            EventData).
        n_timesteps: frames per sample: event data is binned into this many frames
            (default: cover every event); frame data is cut to its first ``n_timesteps``.
        sensor_size: ``(W, H, P)`` for tonic-style events (default from ``input_shape``
            ``(P, H, W)`` or the events' extent).
        start_time: time at which frame 0 starts (default: each sample's first event).
        key, labels_key: dataset names to use in .npz / .h5 files.
        node, observable: which node / observable of a NIR data file (default ``input`` /
            ``spikes``).

    Returns:
        ``(frames, labels)``: frames ``(samples, timesteps, *input_shape)``, labels
        ``(samples,)`` int64 or ``None``.
    """
    frames, labels = _load_inputs(
        path,
        input_shape=input_shape,
        time_window=time_window,
        n_timesteps=n_timesteps,
        sensor_size=sensor_size,
        start_time=start_time,
        key=key,
        labels_key=labels_key,
        node=node,
        observable=observable,
    )
    if n_timesteps is not None:
        n = int(n_timesteps)
        if n < 1:
            raise AsyncsimError(f"n_timesteps = {n_timesteps!r} must be >= 1")
        if frames.shape[1] < n:
            raise AsyncsimError(
                f"n_timesteps = {n}, but the data has only {frames.shape[1]} timesteps per sample"
            )
        frames = frames[:, :n]
    return frames, labels


def _load_inputs(
    path: Any,
    *,
    input_shape: Any,
    time_window: float | None,
    n_timesteps: int | None,
    sensor_size: Any,
    start_time: float | None,
    key: str | None,
    labels_key: str | None,
    node: str | None,
    observable: str | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    opts = dict(
        time_window=time_window,
        n_timesteps=n_timesteps,
        sensor_size=sensor_size,
        start_time=start_time,
        node=node,
        observable=observable,
    )
    if isinstance(path, np.ndarray) or isinstance(path, list):
        where = "inputs"
        if _is_events(path) or (isinstance(path, list) and path and _is_events(path[0])):
            return _from_events(path, None, opts, input_shape, where)
        return _frames(path, input_shape, where), None
    p = Path(path)
    if not p.exists():
        raise AsyncsimError(f"{p}: no such file")
    if p.is_dir():
        raise AsyncsimError(f"{p}: is a directory; give a .npy, .npz or .h5 file")
    suffix = p.suffix.lower()
    where = str(p)
    if suffix == ".npy":
        try:
            with open(p, "rb") as fh:  # our own handle: numpy leaks its own on errors
                a = np.load(fh, allow_pickle=False)
        except Exception as exc:  # numpy raises many types on damaged files
            raise AsyncsimError(f"{p}: not a readable .npy array ({exc})") from None
        if not isinstance(a, np.ndarray):
            raise AsyncsimError(f"{p}: not a .npy array (an .npz archive?)")
        if _is_events(a):
            return _from_events(a, None, opts, input_shape, where)
        return _frames(a, input_shape, where), None
    if suffix == ".npz":
        labels = None
        events = None
        try:
            with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                keys = list(z.keys())
                lk = _pick(keys, LABEL_KEYS, labels_key, where, "labels array")
                labels = z[lk] if lk is not None else None
                if key is None and "events" in keys:
                    events = z["events"]
                else:
                    fk = _pick(keys, FRAME_KEYS, key, where, "frames array")
                    if fk is None:
                        raise AsyncsimError(
                            f"{p}: no frames array; expected one of {', '.join(FRAME_KEYS)} "
                            f"(or 'events'), found {', '.join(keys) or 'nothing'}; pass key=..."
                        )
                    a = z[fk]
        except AsyncsimError:
            raise
        except Exception as exc:  # zip/npy readers raise many types on damage
            raise AsyncsimError(f"{p}: not a readable .npz archive ({exc})") from None
        if events is not None:
            return _from_events(events, labels, opts, input_shape, where)
        if _is_events(a):
            return _from_events(a, labels, opts, input_shape, where)
        fr = _frames(a, input_shape, where)
        return fr, _labels(labels, fr.shape[0], where)
    if suffix in (".h5", ".hdf5", ".nir") or is_hdf5(p):
        import h5py

        if has_native_header(p):
            raise AsyncsimError(
                f"{p}: this is an asyncsim network file, not spike data; load it with "
                "asyncsim.load (inputs: frames / events in .npy, .npz, .h5 or NIR data)"
            )
        if not is_hdf5(p):
            raise AsyncsimError(f"{p}: not an HDF5 file (truncated, or another format)")

        def read() -> tuple[bool, Any, Any]:
            try:
                with h5py.File(p, "r") as f:
                    if f.attrs.get("__type__") in ("NIRGraphData", b"NIRGraphData"):
                        return True, None, None
                    keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
                    fk = _pick(keys, (*FRAME_KEYS, "events"), key, where, "frames dataset")
                    lk = _pick(keys, LABEL_KEYS, labels_key, where, "labels dataset")
                    if fk is None:
                        raise AsyncsimError(
                            f"{p}: no frames dataset; expected one of "
                            f"{', '.join(FRAME_KEYS)}, found {', '.join(keys) or 'nothing'}"
                        )
                    return False, f[fk][()], f[lk][()] if lk is not None else None
            except AsyncsimError:
                raise
            except H5_ERRORS as exc:
                raise AsyncsimError(f"{p}: unreadable HDF5 file ({exc})") from None

        # a damage can crash or hang HDF5: read the file once in a child process, which
        # sends back only whether it holds NIR data (the arrays can be gigabytes), then
        # again here (safe: the same bytes were read without harm)
        if read_isolated(p, lambda: read()[0]):
            return _nir_data(p, opts, input_shape)
        _, a, labels = read()
        if _is_events(a):
            return _from_events(a, labels, opts, input_shape, where)
        fr = _frames(a, input_shape, where)
        return fr, _labels(labels, fr.shape[0], where)
    raise AsyncsimError(
        f"{p}: unknown input format {suffix!r}; use .npy, .npz, .h5/.hdf5 (frames, labels, "
        "tonic-style events or NIR data)"
    )


__all__ = ["events_to_frames", "load_inputs"]
