"""File helpers shared by the writers: atomic replacement and overwrite protection."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import AsyncsimError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# what h5py raises on damaged files (it is not always OSError)
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


def check_target(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Validate an output path: its directory exists and it is not overwritten by accident."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise AsyncsimError(f"{p}: file exists; pass overwrite=True (CLI: --force) to replace it")
    if p.is_dir():
        raise AsyncsimError(f"{p}: is a directory; give a file name")
    if not p.parent.exists():
        raise AsyncsimError(f"{p}: directory {p.parent} does not exist")
    return p


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it over
    ``path`` (``os.replace`` is atomic on POSIX): readers never see a half-written file,
    and a failed write leaves no trace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def is_hdf5(path: Path) -> bool:
    """True if the file starts with the HDF5 signature (at offset 0, the common case)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False
