"""HDF5 helpers shared by the readers and writers (atomic writing: asyncsim._files)."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AsyncsimError

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


# Reading a damaged HDF5 file can crash the HDF5 C library (a segfault on a damaged
# variable-length string attribute) or make it loop forever (a damaged global heap): both
# were found by tests/test_io_errors.py's damaged-file fuzzer with h5py 3.16 / HDF5 2.0.0.
# Files that asyncsim did not write (NIR graphs and data, network files without the
# checksum header) are therefore read in a forked child process.
ISOLATE_ENV = "ASYNCSIM_ISOLATE_HDF5"  # "0": read in this process
TIMEOUT_ENV = "ASYNCSIM_HDF5_TIMEOUT"  # seconds; default: 60 s plus 1 s per 10 MB


def read_isolated(path: Path, read: Callable[[], Any]) -> Any:
    """Return ``read()``, computed in a forked child process that reads ``path``.

    The result comes back pickled through a pipe; an :class:`AsyncsimError` raised by
    ``read`` is raised again here. A child killed by a signal (HDF5 crashed) or still
    reading after the timeout (HDF5 looping) becomes an :class:`AsyncsimError` naming the
    file. Where ``os.fork`` is missing (Windows) or ``ASYNCSIM_ISOLATE_HDF5=0``, ``read``
    runs in this process. Cost: a fork and one pickle round trip of the result (~14 ms
    for a 270 kB NIR file).
    """
    isolate = os.environ.get(ISOLATE_ENV, "1")
    if isolate not in ("0", "1"):
        raise AsyncsimError(
            f"{ISOLATE_ENV}={isolate!r} must be 0 (read HDF5 files in this process) or 1 "
            "(in a child process, the default)"
        )
    if not hasattr(os, "fork") or isolate == "0":
        return read()
    timeout = _timeout(path)
    rfd, wfd = os.pipe()
    with warnings.catch_warnings():
        # Python >= 3.12 warns about forking a multi-threaded process; the child only
        # reads the file and exits (a lock held by another thread at the fork would
        # deadlock it, and the timeout would end it with an error)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: never returns, never runs the parent's exit handlers
        try:
            faulthandler.disable()  # a crash here is reported by the parent, not dumped
            os.close(rfd)
            try:
                payload = pickle.dumps((True, read()), protocol=pickle.HIGHEST_PROTOCOL)
            except AsyncsimError as exc:
                payload = pickle.dumps((False, str(exc)))
            except BaseException as exc:  # reported to the parent
                payload = pickle.dumps((False, f"{path}: {type(exc).__name__}: {exc}"))
            view = memoryview(payload)
            while view:
                view = view[os.write(wfd, view) :]
        finally:
            os._exit(0)
    os.close(wfd)
    try:
        chunks = _collect(rfd, timeout)
        if chunks is None:
            raise AsyncsimError(
                f"{path}: HDF5 did not finish reading this file in {timeout:g} s (a "
                "damaged file can make the HDF5 library loop forever); check or replace "
                f"the file, or raise the limit with {TIMEOUT_ENV}=SECONDS"
            )
    except BaseException:  # timeout, or interrupted: the child must not outlive the call
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(rfd)
    try:
        status: int | None = os.waitpid(pid, 0)[1]
    except ChildProcessError:  # SIGCHLD ignored in this process: reaped already
        status = None
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception:  # nothing or part of a result: the child died while reading
        if status is not None and os.WIFSIGNALED(status):
            how = signal.Signals(os.WTERMSIG(status)).name
        elif status is not None:
            how = f"exit status {os.WEXITSTATUS(status)}"
        else:
            how = "no result"
        raise AsyncsimError(
            f"{path}: the HDF5 library crashed reading this file ({how}, in a child "
            "process): the file is damaged; copy or export it again from its source"
        ) from None
    if not ok:
        raise AsyncsimError(value)
    return value


def _collect(fd: int, timeout: float) -> list[bytes] | None:
    """Everything written to ``fd`` until EOF, or None if ``timeout`` seconds pass first
    (``inf``: no limit; each wait is at most an hour, which ``select`` accepts on every
    platform, where a huge timeout overflows)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if not select.select([fd], [], [], min(left, 3600.0))[0]:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return chunks
        chunks.append(chunk)


def _timeout(path: Path) -> float:
    text = os.environ.get(TIMEOUT_ENV)
    if text is not None:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise AsyncsimError(
                f"{TIMEOUT_ENV}={text!r} must be a number of seconds > 0; unset it for the "
                "default (60 s plus 1 s per 10 MB of file)"
            )
        return value
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    return 60.0 + size / 10e6
