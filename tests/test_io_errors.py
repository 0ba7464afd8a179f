"""Malformed models get clear AsyncsimErrors (messages checked); a hypothesis fuzzer
mutates valid graphs and requires the loader to either load or raise AsyncsimError."""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import h5py
import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncsim as A

FIX = Path(__file__).parent / "fixtures" / "nir"
TIMEOUT = "ASYNCSIM_HDF5_TIMEOUT"
DT = 1e-3


def graph(nodes, edges, **kw):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, **kw)


def base_nodes(n_in=3, n=2):
    return {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Affine(weight=np.ones((n, n_in)), bias=np.zeros(n)),
        "lif": nir.LIF(
            tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n)
        ),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }


BASE_EDGES = [("input", "fc"), ("fc", "lif"), ("lif", "output")]


def load_graph(g, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return A.io.from_nir(g, **kw)


def test_edge_to_missing_node():
    g = graph(base_nodes(), [*BASE_EDGES, ("fc", "ghost")])
    with pytest.raises(A.AsyncsimError, match=r"refers to node 'ghost', which does not exist"):
        load_graph(g, dt=DT)


def test_missing_edges_leave_node_unconnected():
    g = graph(base_nodes(), [("fc", "lif"), ("lif", "output")])
    with pytest.raises(
        A.AsyncsimError, match=r"the output population 'lif' is not reachable from the input"
    ):
        load_graph(g, dt=DT)
    nodes = base_nodes()
    nodes["lif2"] = nir.LIF(
        tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)
    )
    g = graph(nodes, [*BASE_EDGES, ("lif2", "fc")])
    with pytest.warns(UserWarning, match=r"node\(s\) 'lif2' are not reachable from the input"):
        A.io.from_nir(g, dt=DT, profile="generic")
    nodes = base_nodes()
    nodes["lonely"] = nir.Flatten(input_type={"input": None})
    with pytest.raises(A.AsyncsimError, match=r"cannot determine the shape of node\(s\) 'lonely'"):
        load_graph(graph(nodes, [*BASE_EDGES, ("lonely", "output")]), dt=DT)


def test_no_input_and_two_inputs():
    nodes = base_nodes()
    del nodes["input"]
    with pytest.raises(A.AsyncsimError, match="0 Input nodes"):
        load_graph(graph(nodes, BASE_EDGES[1:]), dt=DT)
    nodes = base_nodes()
    nodes["input2"] = nir.Input(input_type={"input": np.array([3])})
    with pytest.raises(A.AsyncsimError, match=r"2 Input nodes \('input', 'input2'\)"):
        load_graph(graph(nodes, [*BASE_EDGES, ("input2", "fc")]), dt=DT)


def test_shape_mismatch_names_the_edge():
    nodes = base_nodes()
    nodes["fc"] = nir.Affine(weight=np.ones((2, 5)), bias=np.zeros(2))
    with pytest.raises(
        A.AsyncsimError,
        match=r"shape mismatch on edge \('input', 'fc'\): node 'input' \(Input\) outputs shape "
        r"\(3,\) \(3 values\) but node 'fc' \(Affine\) expects \(5,\)",
    ):
        load_graph(graph(nodes, BASE_EDGES), dt=DT)
    nodes = base_nodes()
    nodes["lif"] = nir.LIF(
        tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)
    )
    with pytest.raises(A.AsyncsimError, match=r"node 'lif' \(LIF\) has parameters of shape \(4,\)"):
        load_graph(graph(nodes, BASE_EDGES), dt=DT)


@dataclass(eq=False)
class Mystery(nir.NIRNode):
    """A node type no loader knows."""

    value: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def __post_init__(self):
        self.input_type = {"input": None}
        self.output_type = {"output": None}


def test_unsupported_node_type_names_node_and_type():
    nodes = base_nodes()
    nodes["odd"] = Mystery()
    with pytest.raises(
        A.AsyncsimError, match=r"node 'odd' \(Mystery\): unsupported node type 'Mystery'"
    ):
        load_graph(graph(nodes, BASE_EDGES), dt=DT)


def test_nan_parameter():
    nodes = base_nodes()
    nodes["lif"].tau = np.array([0.01, np.nan])
    with pytest.raises(A.AsyncsimError, match=r"node 'lif' \(LIF\): parameter tau contains NaN"):
        load_graph(graph(nodes, BASE_EDGES), dt=DT)
    nodes = base_nodes()
    nodes["fc"].weight = np.array([[1.0, np.nan, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(
        A.AsyncsimError, match=r"node 'fc' \(Affine\): parameter weight contains NaN"
    ):
        load_graph(graph(nodes, BASE_EDGES), dt=DT)


def test_dt_makes_euler_leak_negative():
    with pytest.raises(
        A.AsyncsimError,
        match=r"node 'lif' \(LIF\): Euler leak 1 - dt/tau = 1 - 0.02/0.01 = -1 is negative: dt "
        r"must not exceed tau",
    ):
        load_graph(graph(base_nodes(), BASE_EDGES), dt=0.02)


def test_norse_units_bug_hint():
    """A Norse >= 1.1 file read as snnTorch: tau = dt*tau is below dt and the error points
    to the norse profile."""
    nodes = base_nodes()
    nodes["lif"].tau = np.full(2, 1e-5)
    with pytest.raises(A.AsyncsimError, match="try profile='norse'"):
        load_graph(graph(nodes, BASE_EDGES), profile="snntorch")


def test_bad_dt_profile_and_options():
    g = graph(base_nodes(), BASE_EDGES)
    with pytest.raises(A.AsyncsimError, match=r"dt = -1.0 must be a finite number > 0"):
        load_graph(g, dt=-1.0)
    with pytest.raises(A.AsyncsimError, match="unknown profile 'torchy'; use one of snntorch"):
        load_graph(g, profile="torchy")
    with pytest.raises(A.AsyncsimError, match=r"unknown load option\(s\) colour"):
        load_graph(g, dt=DT, colour="red")
    with pytest.raises(A.AsyncsimError, match="option reset='soft' is not allowed"):
        load_graph(g, dt=DT, reset="soft")


def test_cannot_infer_dt():
    with pytest.raises(A.AsyncsimError, match=r"cannot infer dt: every r = 1.*pass dt="):
        load_graph(graph(base_nodes(), BASE_EDGES))


def test_delay_not_whole_timesteps():
    nodes = base_nodes()
    nodes["d"] = nir.Delay(delay=np.full(2, 1.5 * DT))
    edges = [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")]
    with pytest.raises(
        A.AsyncsimError, match=r"node 'd' \(Delay\): delay 0.0015 s is not a whole number"
    ):
        load_graph(graph(nodes, edges), dt=DT)


def test_bias_through_delay_is_refused():
    nodes = base_nodes()
    nodes["fc"].bias = np.array([0.1, 0.0])
    nodes["d"] = nir.Delay(delay=np.full(2, 2 * DT))
    edges = [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")]
    with pytest.raises(A.AsyncsimError, match=r"node 'd' \(Delay\): a constant \(bias\) input"):
        load_graph(graph(nodes, edges), dt=DT)


def test_algebraic_loop():
    nodes = base_nodes()
    nodes["a"] = nir.Linear(weight=np.eye(2))
    nodes["b"] = nir.Linear(weight=np.eye(2))
    edges = [*BASE_EDGES, ("lif", "a"), ("a", "b"), ("b", "a")]
    with pytest.raises(A.AsyncsimError, match="closes a cycle made only of operators"):
        load_graph(graph(nodes, edges), dt=DT)


# --------------------------------------------------------------------------- files
def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(A.AsyncsimError, match="no such file"):
        A.load(tmp_path / "nope.nir")
    src = (FIX / "cnn_sinabs.nir").read_bytes()
    (tmp_path / "trunc.nir").write_bytes(src[: len(src) // 3])
    with pytest.raises(A.AsyncsimError, match=r"trunc.nir: unreadable HDF5 file \(truncated\?\)"):
        A.load(tmp_path / "trunc.nir")
    (tmp_path / "text.nir").write_text("not a model\n")
    with pytest.raises(A.AsyncsimError, match="not an HDF5 file"):
        A.load(tmp_path / "text.nir")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(A.AsyncsimError, match="not a readable HDF5 file"):
        A.load(tmp_path / "empty.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(A.AsyncsimError, match="without the asyncsim network marker"):
        A.load(tmp_path / "other.h5")
    with h5py.File(tmp_path / "other.nir", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(A.AsyncsimError, match="HDF5 file without a NIR graph") as exc:
        A.load(tmp_path / "other.nir")
    assert "unreadable" not in str(exc.value)  # the file is readable: not re-wrapped
    with pytest.raises(A.AsyncsimError, match="is a directory"):
        A.load(tmp_path)


def test_native_version_and_options(tmp_path):
    net = A.Network(2, [A.Population("p", 2)], [A.Dense("d", "input", "p", np.eye(2))])
    path = A.save(net, tmp_path / "n.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(A.AsyncsimError, match="changed after saving"):
        A.load(path)  # an edit by another HDF5 tool breaks the checksum
    with pytest.raises(A.AsyncsimError, match="format version 99 is not supported"):
        A.load(path, verify=False)
    with pytest.raises(A.AsyncsimError, match=r"verify=False applies to asyncsim \.h5"):
        A.load(FIX / "lif_norse.nir", profile="norse", verify=False)
    path2 = A.save(net, tmp_path / "m.h5")
    with pytest.raises(A.AsyncsimError, match="dt apply to NIR files"):
        A.load(path2, dt=1e-3)


def _checksummed(tmp_path):
    w = np.array([[0.123456789, -2.5], [0.0, 1.75]])
    net = A.Network(2, [A.Population("p", 2)], [A.Dense("d", "input", "p", w)])
    path = A.save(net, tmp_path / "n.h5")
    return net, path, path.read_bytes()


def test_native_checksum_header_is_the_sha256_of_the_hdf5_part(tmp_path):
    _, _, raw = _checksummed(tmp_path)
    text = raw[:512].rstrip(b"\0").decode()
    body = raw[512:]
    assert text == f"asyncsim-network sha256 v1\nsize {len(body)}\nsha256 " + (
        hashlib.sha256(body).hexdigest() + "\n"
    )
    assert body[:8] == b"\x89HDF\r\n\x1a\n"  # HDF5 finds its superblock after the block


def _refused(path, data, match):
    path.write_bytes(data)
    with pytest.raises(A.AsyncsimError, match=match) as exc:
        A.load(path)
    assert "asyncsim.load(path, verify=False)" in str(exc.value)  # the fix is named


def test_native_checksum_refuses_every_kind_of_damage(tmp_path):
    net, path, raw = _checksummed(tmp_path)
    # one bit of a weight: HDF5 would load it as a silently different number
    at = raw.index(np.float64(0.123456789).tobytes())
    bad = bytearray(raw)
    bad[at] ^= 1
    _refused(path, bytes(bad), "do not have the SHA-256 digest it records")
    path.write_bytes(bytes(bad))
    w = A.load(path, verify=False).projections[0].weight
    assert w[0, 0] != net.projections[0].weight[0, 0]
    _refused(path, raw[:-200], f"{len(raw) - 712} bytes follow the header, which records")
    _refused(path, raw + b"\0", "which records")
    _refused(path, raw[:300] + b"x" + raw[301:], "the header itself was altered")
    _refused(path, b"X" + raw[1:], "user block that is not an intact asyncsim checksum header")
    _refused(path, raw[:512], "0 bytes follow the header")
    # the damage that made HDF5 2.0.0 crash (segfault) in the fuzz test: the flags of a
    # variable-length string attribute's datatype; refused before HDF5 reads anything
    at = raw.index(b"target\0\0\x19") + 8
    _refused(path, raw[:at] + b"\xce\xaa\x7f" + raw[at + 3 :], "SHA-256")


def test_native_file_edited_on_purpose_can_be_saved_again(tmp_path):
    _, path, _ = _checksummed(tmp_path)
    with h5py.File(path, "a") as f:
        f["projections/0000/weight"][0, 1] = 9.0
    with pytest.raises(A.AsyncsimError, match="changed after saving"):
        A.load(path)
    A.save(A.load(path, verify=False), path, overwrite=True)
    assert A.load(path).projections[0].weight[0, 1] == 9.0


def test_native_file_without_header_is_read_unchecked(tmp_path):
    from asyncsim.io.native import check_integrity

    net, path, _ = _checksummed(tmp_path)
    plain = tmp_path / "plain.h5"
    with h5py.File(path, "r") as src, h5py.File(plain, "w") as dst:
        dst.attrs.update(src.attrs)
        for k in src:
            src.copy(k, dst)
    assert plain.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert check_integrity(path) is True
    assert check_integrity(plain) is False
    back = A.load(plain)
    np.testing.assert_array_equal(back.projections[0].weight, net.projections[0].weight)


def test_native_file_given_as_nir_or_as_inputs(tmp_path):
    _, path, raw = _checksummed(tmp_path)
    (tmp_path / "n.nir").write_bytes(raw)
    with pytest.raises(A.AsyncsimError, match=r"asyncsim network file; give it a \.h5 suffix"):
        A.load(tmp_path / "n.nir")
    with pytest.raises(A.AsyncsimError, match="asyncsim network file, not spike data"):
        A.load_inputs(path)
    (tmp_path / "n.model").write_bytes(raw)
    assert A.load(tmp_path / "n.model").projections[0].name == "d"


def test_nir_reader_failure_is_wrapped(tmp_path):
    path = tmp_path / "bad.nir"
    nir.write(path, graph(base_nodes(), BASE_EDGES))
    with h5py.File(path, "a") as f:
        del f["node/nodes/lif/tau"]
    with pytest.raises(A.AsyncsimError, match="the nir package cannot read this file"):
        A.load(path, dt=DT)


# --------------------------------------------------------------------------- fuzzing
def _conv_graph():
    return graph(
        {
            "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
            "cv": nir.Conv2d(
                input_shape=(6, 6),
                weight=np.ones((3, 2, 3, 3)) * 0.2,
                stride=1,
                padding=1,
                dilation=1,
                groups=1,
                bias=np.zeros(3),
            ),
            "if": nir.IF(r=np.full((3, 6, 6), 1 / DT), v_threshold=np.ones((3, 6, 6))),
            "pool": nir.SumPool2d(
                kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
            ),
            "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0, end_dim=-1),
            "fc": nir.Affine(weight=np.ones((4, 27)) * 0.1, bias=np.zeros(4)),
            "lif": nir.LIF(
                tau=np.full(4, 0.01), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.ones(4)
            ),
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        [
            ("input", "cv"),
            ("cv", "if"),
            ("if", "pool"),
            ("pool", "flat"),
            ("flat", "fc"),
            ("fc", "lif"),
            ("lif", "output"),
        ],
    )


def _rnn_graph():
    nodes = base_nodes(3, 4)
    nodes["lif"].r = np.full(4, 10.0)
    nodes["rec"] = nir.Linear(weight=np.eye(4) * 0.5)
    nodes["d"] = nir.Delay(delay=np.full(4, 2 * DT))
    return graph(nodes, [*BASE_EDGES, ("lif", "rec"), ("rec", "lif"), ("fc", "d"), ("d", "lif")])


BASES = [
    lambda: graph(base_nodes(), BASE_EDGES),
    _conv_graph,
    _rnn_graph,
    lambda: nir.read(FIX / "braille_noDelay_noBias_subtract.nir"),
]
BAD_VALUES = [
    np.nan,
    np.inf,
    -1.0,
    0.0,
    "text",
    None,
    np.zeros(0),
    np.zeros((2, 2, 2, 2, 2)),
    np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
    np.array(["a", "b"]),
    [1, [2, 3]],
    np.full(3, 1e300),
    3,
]


@st.composite
def mutated(draw):
    g = copy.deepcopy(BASES[draw(st.integers(0, len(BASES) - 1))]())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["drop_edge", "dup_edge", "bad_edge", "param", "drop_node", "retype", "swap"]
            )
        )
        names = sorted(g.nodes)
        if kind == "drop_edge" and g.edges:
            g.edges.pop(draw(st.integers(0, len(g.edges) - 1)))
        elif kind == "dup_edge" and g.edges:
            g.edges.append(g.edges[draw(st.integers(0, len(g.edges) - 1))])
        elif kind == "bad_edge":
            a = draw(st.sampled_from([*names, "ghost"]))
            b = draw(st.sampled_from([*names, "ghost"]))
            g.edges.append((a, b))
        elif kind == "param":
            node = g.nodes[draw(st.sampled_from(names))]
            fields = [f for f in vars(node) if f not in ("input_type", "output_type", "metadata")]
            if fields:
                setattr(node, draw(st.sampled_from(fields)), draw(st.sampled_from(BAD_VALUES)))
        elif kind == "drop_node":
            del g.nodes[draw(st.sampled_from(names))]
        elif kind == "retype":
            g.nodes[draw(st.sampled_from(names))] = draw(
                st.sampled_from(
                    [Mystery(), nir.Scale(scale=np.ones(5)), nir.Threshold(threshold=np.ones(2))]
                )
            )
        elif kind == "swap" and len(names) > 1:
            a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
            g.nodes[a], g.nodes[b] = g.nodes[b], g.nodes[a]
    return g


@settings(max_examples=int(os.environ.get("FUZZ_N", "200")), deadline=None)
@given(
    g=mutated(),
    dt=st.sampled_from([None, DT, 1e-4, 1.0]),
    profile=st.sampled_from([None, "snntorch", "sinabs", "norse", "generic"]),
)
def test_fuzz_loader_raises_only_asyncsim_errors(g, dt, profile):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = A.io.from_nir(g, dt=dt, profile=profile)
    except A.AsyncsimError as exc:
        assert str(exc)  # a message, never an empty error
        return
    # it loaded: it must be a valid, runnable network
    frames = np.ones((1, 2, *net.input_shape))
    A.Simulator(net, policy="layered").run(frames)


@settings(max_examples=int(os.environ.get("FUZZ_FILES_N", "60")), deadline=None)
@given(
    data=st.binary(min_size=0, max_size=64),
    cut=st.floats(0.0, 1.0),
    kind=st.sampled_from(["nir", "h5", "npz", "h5in"]),
)
def test_fuzz_damaged_files(tmp_path_factory, data, cut, kind):
    """Overwrite a few bytes (or truncate) model and input files: load or AsyncsimError."""
    d = tmp_path_factory.mktemp("dmg")
    if kind == "nir":
        src = (FIX / "lif_norse.nir").read_bytes()
    elif kind == "h5":
        net = A.Network(2, [A.Population("p", 2)], [A.Dense("d", "input", "p", np.eye(2))])
        src = A.save(net, d / "src.h5").read_bytes()
    elif kind == "npz":
        np.savez(d / "src.npz", inputs=np.ones((2, 3, 4)), labels=[0, 1])
        src = (d / "src.npz").read_bytes()
    else:
        with h5py.File(d / "src.h5", "w") as f:
            f["inputs"] = np.ones((2, 3, 4))
        src = (d / "src.h5").read_bytes()
    k = int(len(src) * cut)
    damaged = src[:k] if not data else src[:k] + data + src[k + len(data) :]
    path = d / ("x.nir" if kind == "nir" else "x.npz" if kind == "npz" else "x.h5")
    path.write_bytes(damaged)
    try:
        # a damage that makes HDF5 loop forever is cut off after 10 s (read_isolated)
        with warnings.catch_warnings(), mock.patch.dict(os.environ, {TIMEOUT: "10"}):
            warnings.simplefilter("ignore")
            if kind in ("nir", "h5"):
                A.load(path, **({"profile": "norse"} if kind == "nir" else {}))
            else:
                A.load_inputs(path)
    except A.AsyncsimError as exc:
        msg = str(exc)
        assert kind != "h5" or "damaged asyncsim" in msg or "not a readable HDF5" in msg
        return
    # asyncsim's own files carry a checksum: any change is refused
    assert kind != "h5" or damaged == src


# ----------------------------------------------------------- reading in a child process
DAMAGED = Path(__file__).parent / "fixtures" / "damaged"


def _segfault():
    os.kill(os.getpid(), signal.SIGSEGV)


def _asyncsim_error():
    raise A.AsyncsimError("the child's own message")


def test_read_isolated_returns_raises_and_survives_crashes_and_hangs(monkeypatch, tmp_path):
    from asyncsim.io._util import read_isolated

    f = tmp_path / "f.h5"
    f.write_bytes(b"x")
    value = {"w": np.arange(5.0), "pid": None}
    out = read_isolated(f, lambda: {**value, "pid": os.getpid()})
    np.testing.assert_array_equal(out["w"], value["w"])
    assert out["pid"] != os.getpid()  # computed in another process
    with pytest.raises(A.AsyncsimError, match=r"^the child's own message$"):
        read_isolated(f, _asyncsim_error)
    with pytest.raises(A.AsyncsimError, match=r"f\.h5: the HDF5 library crashed .*SIGSEGV"):
        read_isolated(f, _segfault)
    monkeypatch.setenv("ASYNCSIM_HDF5_TIMEOUT", "0.5")
    with pytest.raises(A.AsyncsimError, match=r"did not finish reading this file in 0\.5 s"):
        read_isolated(f, lambda: time.sleep(30))
    for no_limit in ("inf", "1e300"):  # too large for select(): each wait is capped
        monkeypatch.setenv("ASYNCSIM_HDF5_TIMEOUT", no_limit)
        assert read_isolated(f, lambda: 7) == 7
    monkeypatch.setenv("ASYNCSIM_HDF5_TIMEOUT", "soon")
    with pytest.raises(A.AsyncsimError, match="ASYNCSIM_HDF5_TIMEOUT='soon' must be a number"):
        read_isolated(f, lambda: 1)
    monkeypatch.delenv("ASYNCSIM_HDF5_TIMEOUT")
    monkeypatch.setenv("ASYNCSIM_ISOLATE_HDF5", "no")
    with pytest.raises(A.AsyncsimError, match="ASYNCSIM_ISOLATE_HDF5='no' must be 0"):
        read_isolated(f, lambda: 1)
    monkeypatch.setenv("ASYNCSIM_ISOLATE_HDF5", "0")
    assert read_isolated(f, os.getpid) == os.getpid()  # opted out: this process


def test_read_isolated_with_sigchld_ignored(tmp_path):
    """Where SIGCHLD is ignored, children are reaped at once and waitpid fails; the
    result, or the crash, must still come through."""
    from asyncsim.io._util import read_isolated

    f = tmp_path / "f.h5"
    f.write_bytes(b"x")
    old = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert read_isolated(f, lambda: [1, 2]) == [1, 2]
        with pytest.raises(A.AsyncsimError, match=r"crashed reading this file \(no result"):
            read_isolated(f, _segfault)
    finally:
        signal.signal(signal.SIGCHLD, old)


def test_files_that_crash_or_hang_hdf5_give_errors(monkeypatch):
    """Real damaged files (tests/fixtures/damaged/README.md): whatever the HDF5 library
    does with them (crash, loop, or, once fixed, report an error), loading raises."""
    monkeypatch.setenv("ASYNCSIM_HDF5_TIMEOUT", "3")
    with pytest.raises(A.AsyncsimError, match=r"hang_global_heap\.nir"):
        A.load(DAMAGED / "hang_global_heap.nir", profile="norse")
    with pytest.raises(A.AsyncsimError, match=r"crash_vlen_attribute\.h5"):
        A.load(DAMAGED / "crash_vlen_attribute.h5")


def test_input_h5_is_read_in_a_child_first(monkeypatch, tmp_path):
    """An HDF5 input file is read once in a child process before this one reads it: a
    read that crashes there (simulated: h5py.File segfaults in any other process) is an
    error here, not a crash."""
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["inputs"] = np.ones((2, 3, 4))
    parent, real = os.getpid(), h5py.File

    def file(*args, **kw):
        if os.getpid() != parent:
            _segfault()
        return real(*args, **kw)

    monkeypatch.setattr(h5py, "File", file)
    with pytest.raises(A.AsyncsimError, match=r"d\.h5: the HDF5 library crashed .*SIGSEGV"):
        A.load_inputs(tmp_path / "d.h5")
    monkeypatch.setenv("ASYNCSIM_ISOLATE_HDF5", "0")
    assert A.load_inputs(tmp_path / "d.h5")[0].shape == (2, 3, 4)
