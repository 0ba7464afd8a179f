"""asyncsim's own HDF5 network format (``.h5`` / ``.hdf5``).

Layout (format version 1)::

    /                       attrs: format = "asyncsim-network", format_version = 1,
                                   asyncsim_version, name, output, readout,
                                   input_shape (int array), metadata (JSON)
    /populations/NNNN       attrs: name, shape, reset, threshold_op, reset_delay,
                                   refractory, refractory_dropout, syn_immediate,
                                   multi_spike, has_synapse, metadata (JSON)
                            datasets: threshold, beta, v_reset, bias, v_init
                                      [, alpha, syn_gain, syn_bias]  (float64, pop. shape)
    /projections/NNNN       attrs: type (Dense | Sparse | OneToOne | Conv2d), name, source,
                                   target, delay [, stride, dilation, groups, padding]
                            datasets: weight [, source_index, target_index]

Everything a :class:`~asyncsim.Network` holds is stored, so a round trip is exact. Writes
are atomic (temporary file + ``os.replace``).

Integrity: the first 512 bytes of the file are an HDF5 *user block* (HDF5 skips it and
finds its superblock at byte 512) holding a text header::

    asyncsim-network sha256 v1
    size <bytes after the header>
    sha256 <hex digest of the bytes after the header>

followed by zero bytes. :func:`load_h5` checks the header, the size and the digest before
the HDF5 library reads anything, so a damaged or truncated file is refused with a clear
error instead of being parsed (a damaged attribute header can crash HDF5 itself, and a
damaged weight would otherwise load as silently wrong numbers). Files without the header
(written by other tools or older asyncsim versions) are read in a child process instead
(``_util.read_isolated``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_write, check_target, jsonable
from ..errors import AsyncsimError
from ..network import Conv2d, Dense, Network, OneToOne, Population, Projection, Sparse
from ._util import H5_ERRORS, HDF5_SIGNATURE, NATIVE_MAGIC, read_isolated

FORMAT = "asyncsim-network"
FORMAT_VERSION = 1
_POP_ARRAYS = ("threshold", "beta", "v_reset", "bias", "v_init")
_POP_FLAGS = ("reset_delay", "refractory", "syn_immediate", "multi_spike")
HEADER_SIZE = 512  # HDF5 user block: a power of two >= 512


def _header(size: int, digest: str) -> bytes:
    text = NATIVE_MAGIC + f"size {size}\nsha256 {digest}\n".encode()
    return text + bytes(HEADER_SIZE - len(text))


def _digest(path: str | Path) -> tuple[int, str]:
    """Size and SHA-256 of everything after the header."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        fh.seek(HEADER_SIZE)
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def check_integrity(path: str | Path) -> bool:
    """Check the checksum header of an asyncsim network file before HDF5 reads it.

    Returns True if the header is present and matches, False for a file without one
    (HDF5 written by another tool, or not HDF5: left to the HDF5 reader). Raises
    :class:`AsyncsimError` if the file was changed, truncated or extended after asyncsim
    wrote it. Cost: one sequential read of the file (SHA-256, ~1 GB/s).
    """
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(HEADER_SIZE)
        sig = fh.read(8)
    fix = (
        "copy or export it again from its source; if you edited it on purpose with another "
        "HDF5 tool, save it again with asyncsim.save(asyncsim.load(path, verify=False), "
        "path, overwrite=True)"
    )
    if not head.startswith(NATIVE_MAGIC):
        if sig != HDF5_SIGNATURE:
            return False  # not an asyncsim-written file (HDF5 at byte 0, or not HDF5)
        raise AsyncsimError(
            f"{p}: damaged asyncsim network file: HDF5 data follows a {HEADER_SIZE}-byte "
            f"user block that is not an intact asyncsim checksum header (or another tool "
            f"wrote that block); {fix}"
        )
    size, digest = _digest(p)
    if head == _header(size, digest):
        return True
    lines = head[len(NATIVE_MAGIC) :].split(b"\n")
    fields = dict(line.split(b" ", 1) for line in lines if b" " in line)
    if fields.get(b"size") != str(size).encode():
        rule = f"{size} bytes follow the header, which records {_shown(fields.get(b'size'))}"
    elif fields.get(b"sha256") != digest.encode():
        rule = "the bytes after the header do not have the SHA-256 digest it records"
    else:
        rule = "the header itself was altered"
    raise AsyncsimError(f"{p}: damaged asyncsim network file (changed after saving: {rule}); {fix}")


def _shown(v: bytes | None) -> str:
    return "no size" if v is None else repr(v.decode(errors="replace")[:20])


def _json(obj: Any) -> str:
    return json.dumps(jsonable(obj))


def save_h5(network: Network, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``network`` to an asyncsim HDF5 file (atomically). Returns the path."""
    import h5py

    from .. import __version__

    if not isinstance(network, Network):
        raise AsyncsimError(f"save needs an asyncsim Network, got {type(network).__name__}")
    p = check_target(path, overwrite)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w", userblock_size=HEADER_SIZE) as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["asyncsim_version"] = __version__
            f.attrs["name"] = network.name
            f.attrs["output"] = str(network.output)
            f.attrs["readout"] = str(network.readout)
            f.attrs["input_shape"] = np.asarray(network.input_shape, dtype=np.int64)
            f.attrs["metadata"] = _json(network.metadata)
            gp = f.create_group("populations")
            for i, pop in enumerate(network.populations):
                g = gp.create_group(f"{i:04d}")
                g.attrs["name"] = pop.name
                g.attrs["shape"] = np.asarray(pop.shape, dtype=np.int64)
                g.attrs["reset"] = pop.reset
                g.attrs["threshold_op"] = pop.threshold_op
                g.attrs["refractory_dropout"] = float(pop.refractory_dropout)
                for k in _POP_FLAGS:
                    g.attrs[k] = bool(getattr(pop, k))
                g.attrs["has_synapse"] = pop.alpha is not None
                g.attrs["metadata"] = _json(pop.metadata)
                for k in _POP_ARRAYS:
                    g.create_dataset(k, data=np.asarray(getattr(pop, k), dtype=np.float64))
                if pop.alpha is not None:
                    g.create_dataset("alpha", data=np.asarray(pop.alpha, dtype=np.float64))
                    g.create_dataset("syn_gain", data=np.asarray(pop.syn_gain, dtype=np.float64))
                    g.create_dataset("syn_bias", data=np.asarray(pop.syn_bias, dtype=np.float64))
            gr = f.create_group("projections")
            for i, pr in enumerate(network.projections):
                g = gr.create_group(f"{i:04d}")
                g.attrs["type"] = type(pr).__name__
                g.attrs["name"] = pr.name
                g.attrs["source"] = pr.source
                g.attrs["target"] = pr.target
                g.attrs["delay"] = int(pr.delay)  # type: ignore[attr-defined]
                g.create_dataset("weight", data=np.asarray(pr.weight, dtype=np.float64))  # type: ignore[attr-defined]
                if isinstance(pr, Sparse):
                    g.create_dataset("source_index", data=pr.source_index)
                    g.create_dataset("target_index", data=pr.target_index)
                elif isinstance(pr, Conv2d):
                    g.attrs["stride"] = np.asarray(pr.stride, dtype=np.int64)
                    g.attrs["dilation"] = np.asarray(pr.dilation, dtype=np.int64)
                    g.attrs["groups"] = int(pr.groups)
                    if isinstance(pr.padding, str):
                        g.attrs["padding"] = pr.padding
                    else:
                        g.attrs["padding"] = np.asarray(pr.padding, dtype=np.int64)
        header = _header(*_digest(tmp))
        with open(tmp, "rb+") as fh:
            fh.write(header)

    atomic_write(p, write, overwrite)
    return p


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def load_h5(path: str | Path, *, verify: bool = True) -> Network:
    """Read an asyncsim HDF5 network written by :func:`save_h5`.

    With ``verify`` (the default) the file's checksum header is checked first (see the
    module docstring). A file whose checksum matched is read in this process; any other
    (no header, or ``verify=False``) in a child process, where a damaged file that crashes
    or hangs the HDF5 library becomes an error (``_util.read_isolated``).
    """
    p = Path(path)
    if verify and check_integrity(p):
        return _read_h5(p)
    return read_isolated(p, lambda: _read_h5(p))


def _read_h5(p: Path) -> Network:
    import h5py

    try:
        f = h5py.File(p, "r")
    except H5_ERRORS as exc:
        raise AsyncsimError(
            f"{p}: not a readable HDF5 file (truncated, or another format): {exc}"
        ) from None
    try:
        with f:
            fmt = _s(f.attrs.get("format", ""))
            if fmt != FORMAT:
                raise AsyncsimError(
                    f"{p}: HDF5 file without the asyncsim network marker (attribute "
                    f"format={FORMAT!r}); for a NIR graph use a .nir file, for spike data "
                    "asyncsim.load_inputs"
                )
            ver = int(f.attrs.get("format_version", -1))
            if ver != FORMAT_VERSION:
                raise AsyncsimError(
                    f"{p}: asyncsim network format version {ver} is not supported by this "
                    f"asyncsim (reads version {FORMAT_VERSION}); upgrade asyncsim"
                )
            pops = []
            for key in sorted(f["populations"]):
                g = f["populations"][key]
                kw: dict[str, Any] = {k: g[k][()] for k in _POP_ARRAYS}
                if bool(g.attrs["has_synapse"]):
                    kw["alpha"] = g["alpha"][()]
                    kw["syn_gain"] = g["syn_gain"][()]
                    kw["syn_bias"] = g["syn_bias"][()]
                for k in _POP_FLAGS:
                    kw[k] = bool(g.attrs[k])
                pops.append(
                    Population(
                        _s(g.attrs["name"]),
                        tuple(int(s) for s in g.attrs["shape"]),
                        reset=_s(g.attrs["reset"]),
                        threshold_op=_s(g.attrs["threshold_op"]),
                        refractory_dropout=float(g.attrs["refractory_dropout"]),
                        metadata=json.loads(_s(g.attrs["metadata"])),
                        **kw,
                    )
                )
            projs: list[Projection] = []
            for key in sorted(f["projections"]):
                g = f["projections"][key]
                t = _s(g.attrs["type"])
                common: dict[str, Any] = dict(
                    name=_s(g.attrs["name"]),
                    source=_s(g.attrs["source"]),
                    target=_s(g.attrs["target"]),
                    delay=int(g.attrs["delay"]),
                )
                w = g["weight"][()]
                if t == "Dense":
                    projs.append(Dense(**common, weight=w))
                elif t == "Sparse":
                    projs.append(
                        Sparse(
                            **common,
                            source_index=g["source_index"][()],
                            target_index=g["target_index"][()],
                            weight=w,
                        )
                    )
                elif t == "OneToOne":
                    projs.append(OneToOne(**common, weight=w))
                elif t == "Conv2d":
                    pad = g.attrs["padding"]
                    padding = (
                        _s(pad) if isinstance(pad, (str, bytes)) else tuple(int(x) for x in pad)
                    )
                    projs.append(
                        Conv2d(
                            **common,
                            weight=w,
                            stride=tuple(int(x) for x in g.attrs["stride"]),
                            padding=padding,
                            dilation=tuple(int(x) for x in g.attrs["dilation"]),
                            groups=int(g.attrs["groups"]),
                        )
                    )
                else:
                    raise AsyncsimError(f"{p}: projection {key} has unknown type {t!r}")
            return Network(
                tuple(int(s) for s in f.attrs["input_shape"]),
                pops,
                projs,
                output=_s(f.attrs["output"]),
                readout=_s(f.attrs["readout"]),
                name=_s(f.attrs["name"]),
                metadata=json.loads(_s(f.attrs["metadata"])),
            )
    except AsyncsimError:
        raise
    except H5_ERRORS as exc:
        raise AsyncsimError(
            f"{p}: damaged asyncsim network file ({type(exc).__name__}: {exc})"
        ) from None
