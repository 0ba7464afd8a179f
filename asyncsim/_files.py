"""File helpers shared by every writer (networks, results, figures).

:func:`atomic_write` creates a temporary file in the target's directory, lets the caller
fill it, flushes it to disk, then publishes it under the final name in one step: with
``overwrite=False`` by a hard link (which fails if the name exists, so a concurrent writer
cannot be clobbered either), with ``overwrite=True`` by :func:`os.replace`. A process
killed while writing leaves at most a hidden ``.NAME.*.tmp`` file, never a half-written
``NAME``; an exception while writing removes the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AsyncsimError


def check_target(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Existing parent directory, not a directory, no existing file unless ``overwrite``."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise AsyncsimError(f"output file {str(p)!r}: directory {str(parent)!r} does not exist")
    if p.is_dir():
        raise AsyncsimError(f"output file {str(p)!r} is a directory")
    if p.exists() and not overwrite:
        raise AsyncsimError(
            f"output file {str(p)!r} already exists; pass --force (overwrite=True in Python) to "
            "replace it or choose another name"
        )
    return p


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[str], None], overwrite: bool = False
) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then publish it as ``path``.

    Raises :class:`AsyncsimError` if ``path`` exists and ``overwrite`` is false.
    """
    p = check_target(path, overwrite)
    parent = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the result the usual permissions
        os.chmod(tmp, 0o666 & ~_umask())
        _publish(tmp, p, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return p


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: str, p: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, p)
        return
    try:
        os.link(tmp, p)
    except FileExistsError:
        raise AsyncsimError(
            f"output file {str(p)!r} appeared while writing; pass --force to replace it"
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # no hard links on this file system: check, then rename (a small race window)
        if p.exists():
            raise AsyncsimError(
                f"output file {str(p)!r} already exists; pass --force to replace it"
            ) from None
        os.replace(tmp, p)
    else:
        os.unlink(tmp)


def jsonable(obj: Any) -> Any:
    """Plain Python values for JSON: numpy scalars/arrays converted, non-finite -> None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [jsonable(v) for v in sorted(obj, key=str)]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
