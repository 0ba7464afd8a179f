"""Loading and saving: NIR graphs, asyncsim's HDF5 network format, spike data.

>>> net = asyncsim.load("models/digits/model.nir")                 # doctest: +SKIP
>>> net = asyncsim.load("model.nir", profile="snntorch", reset="zero")  # doctest: +SKIP
>>> frames, labels = asyncsim.load_inputs("models/digits/test.npz")  # doctest: +SKIP
>>> asyncsim.save(net, "net.h5")                                    # doctest: +SKIP

Trainer profiles (how NIR's continuous-time parameters become per-timestep ones) are in
:mod:`asyncsim.io.profiles`; ``docs/models.md`` explains each trainer's conventions.
Only ``nir`` and ``h5py`` are needed (no torch).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from .._files import atomic_write, check_target
from ..errors import AsyncsimError
from ..network import Network
from ._util import H5_ERRORS, has_native_header, is_hdf5, read_isolated
from .native import FORMAT as NATIVE_FORMAT
from .native import load_h5, save_h5
from .nir_export import to_nir
from .nir_import import LOAD_OPTIONS, from_nir
from .profiles import PROFILES, Profile, get_profile
from .spikes import events_to_frames, load_inputs

FORMATS = ("nir", "h5")


def _read_nir(p: Path) -> tuple[Any, Any]:
    """The NIR graph in ``p`` and the file's NIR version, read in a child process (a
    damaged file can crash or hang the HDF5 library: see ``_util.read_isolated``)."""
    return read_isolated(p, lambda: _read_nir_here(p))


def _read_nir_here(p: Path) -> tuple[Any, Any]:
    """``nir.read`` with type checking, falling back to ``type_check=False`` (older files,
    batch dimensions) and turning every failure into an :class:`AsyncsimError`."""
    import h5py
    import nir

    native = AsyncsimError(
        f"{p}: this is an asyncsim network file; give it a .h5 suffix or load it with format 'h5'"
    )
    if has_native_header(p):
        raise native
    if not is_hdf5(p):
        raise AsyncsimError(
            f"{p}: not an HDF5 file (truncated, empty, or another format); NIR files are HDF5"
        )
    try:
        with h5py.File(p, "r") as f:
            if "node" not in f:
                if f.attrs.get("format") in (NATIVE_FORMAT, NATIVE_FORMAT.encode()):
                    raise native
                raise AsyncsimError(f"{p}: HDF5 file without a NIR graph (no 'node' group)")
    except AsyncsimError:
        raise
    except H5_ERRORS as exc:
        raise AsyncsimError(f"{p}: unreadable HDF5 file (truncated?): {exc}") from None
    first: Exception | None = None
    for type_check in (True, False):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = nir.read(str(p), type_check=type_check)
            break
        except AsyncsimError:
            raise
        except Exception as exc:  # nir raises assertion, key, value and type errors
            if first is None:
                first = exc
    else:
        raise AsyncsimError(
            f"{p}: the nir package cannot read this file ({type(first).__name__}: {first}); "
            "the file is damaged or was written by an incompatible NIR version"
        ) from None
    try:
        from nir.serialization import read_version

        version = read_version(str(p))
    except Exception:  # older files carry no version
        version = None
    return graph, version


def load(
    path: str | os.PathLike[str],
    *,
    dt: float | None = None,
    profile: str | Profile | None = None,
    format: str | None = None,
    verify: bool = True,
    **opts: Any,
) -> Network:
    """Load a network from a ``.nir`` file or an asyncsim ``.h5`` / ``.hdf5`` file.

    Args:
        path: the file.
        dt: seconds per timestep (NIR only); default from the profile, the file's metadata,
            or inferred from the parameters (announced with a warning).
        profile: trainer profile for NIR files: ``snntorch``, ``norse``, ``spikingjelly``,
            ``sinabs``, ``rockpool``, ``spyx`` or ``generic`` (default: recorded in the
            file, else ``generic`` with a warning).
        format: ``"nir"`` or ``"h5"``; default from the suffix (then from the content).
        verify: asyncsim ``.h5`` files only: check the checksum header written by
            :func:`save` before HDF5 reads the file, refusing a damaged file (default).
            ``False`` reads a file edited on purpose with another HDF5 tool.
        **opts: NIR only: profile overrides and ``output`` / ``readout`` (see
            :func:`asyncsim.io.from_nir`).

    Returns:
        the :class:`~asyncsim.Network`; ``network.metadata`` records the profile, dt and
        every choice made (``asyncsim inspect`` shows it).
    """
    p = Path(path)
    if not p.exists():
        raise AsyncsimError(f"{p}: no such file")
    if p.is_dir():
        raise AsyncsimError(f"{p}: is a directory, not a model file")
    fmt = _format(p, format, reading=True)
    if fmt == "h5":
        if dt is not None or profile is not None or opts:
            given = [k for k, v in (("dt", dt), ("profile", profile)) if v is not None]
            raise AsyncsimError(
                f"{p}: {', '.join(given + sorted(opts))} apply to NIR files; an asyncsim "
                "network file already stores per-timestep parameters"
            )
        return load_h5(p, verify=verify)
    if not verify:
        raise AsyncsimError(
            f"{p}: verify=False applies to asyncsim .h5 network files, which carry a "
            "checksum; NIR files have none (drop the argument)"
        )
    graph, version = _read_nir(p)
    net = from_nir(graph, dt=dt, profile=profile, **opts)
    if net.metadata.get("format") != "nir":
        return net  # an asyncsim-written file: its own metadata, restored exactly
    net.metadata.setdefault("source_file", str(p))
    if version is not None:
        net.metadata.setdefault("nir_version", version)
    return net


def _format(p: Path, format: str | None, *, reading: bool) -> str:
    if format is not None:
        f = str(format).lower().lstrip(".")
        f = {"hdf5": "h5"}.get(f, f)
        if f not in FORMATS:
            raise AsyncsimError(f"format {format!r} is unknown; use 'nir' or 'h5'")
        return f
    suffix = p.suffix.lower()
    if suffix == ".nir":
        return "nir"
    if reading and has_native_header(p):
        return "h5"  # checked by load_h5 before HDF5 reads anything
    if suffix in (".h5", ".hdf5"):
        if reading and is_hdf5(p) and (_root_keys(p) or set()) >= {"node", "version"}:
            return "nir"  # a NIR graph saved with an .h5 suffix
        return "h5"
    if reading and is_hdf5(p):
        keys = _root_keys(p)
        if keys is not None:
            return "nir" if "node" in keys else "h5"
    raise AsyncsimError(
        f"{p}: cannot tell the format from the suffix {suffix!r}; use .nir or .h5 "
        "(or pass format='nir' / 'h5')"
    )


def _root_keys(p: Path) -> set[str] | None:
    """Names in the root group of an HDF5 file (read in a child process), or None if the
    file cannot be opened."""

    def read() -> set[str] | None:
        import h5py

        try:
            with h5py.File(p, "r") as f:
                return set(f.keys())
        except H5_ERRORS:
            return None

    return read_isolated(p, read)


def save(
    network: Network,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    overwrite: bool = False,
    dt: float | None = None,
) -> Path:
    """Write ``network`` as NIR (``.nir``) or asyncsim HDF5 (``.h5``), atomically.

    NIR files carry the exact asyncsim parameters in node metadata, so loading them back
    gives the same simulation; ``dt`` (NIR only) sets the time constants written for other
    tools (default: the network's recorded dt, else 1e-4 s). Refuses to replace an
    existing file unless ``overwrite=True``. Returns the path written.
    """
    if not isinstance(network, Network):
        raise AsyncsimError(f"save needs an asyncsim Network, got {type(network).__name__}")
    p = Path(path)
    fmt = _format(p, format, reading=False)
    if fmt == "h5":
        if dt is not None:
            raise AsyncsimError("dt applies to NIR output only")
        return save_h5(network, p, overwrite=overwrite)
    import nir

    p = check_target(p, overwrite)
    graph = to_nir(network, dt=dt)

    def write(tmp: str) -> None:
        nir.write(tmp, graph)

    try:
        atomic_write(p, write, overwrite)
    except AsyncsimError:
        raise
    except (TypeError, ValueError) as exc:
        raise AsyncsimError(f"{p}: nir.write failed ({exc})") from None
    return p


__all__ = [
    "LOAD_OPTIONS",
    "PROFILES",
    "Profile",
    "events_to_frames",
    "from_nir",
    "get_profile",
    "load",
    "load_inputs",
    "save",
    "to_nir",
]
