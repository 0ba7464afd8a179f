"""HDF5 helpers shared by the readers and writers (atomic writing: asyncsim._files)."""

from __future__ import annotations

from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# first line of the checksum header in front of asyncsim's own network files (native.py)
NATIVE_MAGIC = b"asyncsim-network sha256 v1\n"
# what h5py raises on damaged files (it is not always OSError)
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


def is_hdf5(path: Path) -> bool:
    """True if the HDF5 signature is where HDF5 looks for it: at byte 0, or after a user
    block at byte 512, 1024, 2048, ... (asyncsim's network files have one of 512 bytes)."""
    try:
        with open(path, "rb") as f:
            offset = 0
            while True:
                f.seek(offset)
                sig = f.read(8)
                if sig == HDF5_SIGNATURE:
                    return True
                if len(sig) < 8:
                    return False
                offset = max(512, 2 * offset)
    except OSError:
        return False


def has_native_header(path: Path) -> bool:
    """True if the file starts with asyncsim's network checksum header (intact or not)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(NATIVE_MAGIC)) == NATIVE_MAGIC
    except OSError:
        return False
