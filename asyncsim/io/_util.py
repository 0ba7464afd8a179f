"""HDF5 helpers shared by the readers and writers (atomic writing: asyncsim._files)."""

from __future__ import annotations

from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# what h5py raises on damaged files (it is not always OSError)
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


def is_hdf5(path: Path) -> bool:
    """True if the file starts with the HDF5 signature (at offset 0, the common case)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False
