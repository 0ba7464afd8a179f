"""The command line (click's CliRunner): every command, its output files parsed back and
checked against the Python API, and the error paths with their one-line messages."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import asyncsim as A
from asyncsim import cli as CLI
from asyncsim import compare as C
from asyncsim.cli import main

from .workflow_helpers import (
    HAVE_IO,
    MODEL_SUFFIX,
    install_fake_io,
    tiny_data,
    tiny_net,
    write_data,
    write_model,
)

install_fake_io()


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A model file and a data file (12 samples x 6 timesteps) in a fresh directory."""
    monkeypatch.chdir(tmp_path)
    net = tiny_net()
    x, y = tiny_data(12, 6)
    write_model(net, tmp_path / f"tiny{MODEL_SUFFIX}")
    write_data(tmp_path / "data.npz", x, y)
    return {"model": f"tiny{MODEL_SUFFIX}", "data": "data.npz", "net": net, "x": x, "y": y}


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(res, code: int, *fragments: str) -> str:
    """Exit status ``code``, nothing on stdout, exactly one ``error: ...`` line on stderr
    containing every fragment, no traceback."""
    assert res.exit_code == code, (res.exit_code, res.output)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


# ---------------------------------------------------------------------- run
def test_run_prints_a_summary_and_writes_json_matching_the_api(files):
    res = invoke(
        "run", files["model"], "-i", files["data"], "--policy", "momentum", "-F", "2",
        "--out", "r.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    api = A.Simulator(files["net"], policy="momentum", group_size=2).run(files["x"], files["y"])
    s = api.summary()
    assert "policy momentum, F=2" in res.stdout
    assert f"{s['spikes_per_sample']:.4g}" in res.stdout
    assert "h2" in res.stdout and "wrote r.json" in res.stdout
    doc = json.loads(Path("r.json").read_text())
    for key, val in s.items():
        assert doc["metrics"][key] == (pytest.approx(val) if isinstance(val, float) else val)
    assert doc["meta"]["model"] == files["model"] and doc["meta"]["command"] == "run"
    assert doc["populations"] == json.loads(json.dumps(api.per_population()))
    assert res.stderr == ""  # no progress bar when not interactive


def test_run_csv_and_h5_outputs(files):
    assert invoke("run", files["model"], "-i", files["data"], "-o", "r.csv", "-q").exit_code == 0
    assert invoke("run", files["model"], "-i", files["data"], "-o", "r.h5", "-q").exit_code == 0
    api = A.Simulator(files["net"], policy="fifo").run(files["x"], files["y"])
    with open("r.csv", newline="") as fh:
        rows = {(r["population"], r["metric"]): r["value"] for r in csv.DictReader(fh)}
    assert float(rows[("", "synops_per_sample")]) == pytest.approx(api.synops_per_sample())
    assert float(rows[("h1", "spikes_per_sample")]) == pytest.approx(
        api.spikes[:, :, 0].sum() / api.n_samples
    )
    with h5py.File("r.h5", "r") as f:
        np.testing.assert_array_equal(f["arrays"]["spikes"][()], api.spikes)
        np.testing.assert_array_equal(f["arrays"]["predictions"][()], api.predictions)
        assert f["metrics"].attrs["accuracy"] == pytest.approx(api.accuracy)


def test_run_json_on_stdout_quiet_samples_and_labels_file(files):
    other = (files["y"] + 1) % 4
    np.save("other.npy", other)
    res = invoke(
        "run", files["model"], "-i", files["data"], "--labels", "other.npy", "--samples", "5",
        "--policy", "random", "--seed", "3", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    api = A.Simulator(files["net"], policy="random", seed=3).run(files["x"][:5], other[:5])
    assert doc["metrics"]["samples"] == 5
    assert doc["metrics"]["accuracy"] == pytest.approx(api.accuracy)
    assert doc["metrics"]["spikes_per_sample"] == pytest.approx(api.spikes_per_sample())
    quiet = invoke("run", files["model"], "-i", files["data"], "-q")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_run_with_a_user_energy_table(files):
    Path("chip.json").write_text(json.dumps({"name": "chip", "costs_pj": {"spikes": 2.0}}))
    res = invoke("run", files["model"], "-i", files["data"], "--energy", "chip.json", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    api = A.Simulator(files["net"]).run(files["x"], files["y"])
    assert doc["metrics"]["energy_preset"] == "chip"
    assert doc["metrics"]["energy_pj"] == pytest.approx(2.0 * api.spikes_per_sample())
    assert "truenorth" in doc["metrics"]["energy"]  # the built-in presets come along


@pytest.mark.skipif(not HAVE_IO, reason="asyncsim.io (event binning) is not present")
def test_run_on_tonic_style_events(tmp_path, monkeypatch):
    """Structured (x, y, t, p) events are binned by asyncsim.load_inputs with the CLI's
    --time-window / --timesteps; the result equals the API on the same frames."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    w = rng.normal(0.4, 0.3, (3, 2 * 4 * 4))
    net = A.Network((2, 4, 4), [A.Population("o", 3, threshold=1.0, beta=0.9)],
                    [A.Dense("d", "input", "o", w)])  # fmt: skip
    write_model(net, tmp_path / f"ev{MODEL_SUFFIX}")
    n = 200
    ev = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, 5000, n))
    np.save("events.npy", ev)
    res = invoke(
        "run", f"ev{MODEL_SUFFIX}", "-i", "events.npy", "--time-window", "1000",
        "--timesteps", "5", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    frames, _ = A.load_inputs("events.npy", input_shape=(2, 4, 4), time_window=1000, n_timesteps=5)
    api = A.Simulator(net).run(frames)
    doc = json.loads(res.stdout)
    assert doc["metrics"]["timesteps"] == 5
    assert doc["metrics"]["spikes_per_sample"] == pytest.approx(api.spikes_per_sample())
    assert doc["metrics"]["input_synops_per_sample"] == pytest.approx(
        api.input_synops.sum() / api.n_samples
    )


# ---------------------------------------------------------------------- compare
def test_compare_table_files_and_plots_match_the_api(files):
    res = invoke(
        "compare", files["model"], "-i", files["data"], "--group-sizes", "1,inf",
        "--seeds", "0,1", "-o", "c.json", "--plot", "figs",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    api = C.compare(files["net"], files["x"], files["y"], group_sizes=[1, "inf"], seeds=[0, 1])
    table = res.stdout.splitlines()
    for r in api:
        name = "layered" if r["policy"] == "layered" else f"{r['policy']} F={r['group_size']}"
        line = next(t for t in table if t.startswith(name))
        assert f"{r['spikes_per_sample']:.4g}" in line
        if r["policy"] != "layered":
            assert f"(x{r['spikes_per_sample_rel']:.2f})" in line
    doc = json.loads(Path("c.json").read_text())
    assert [r["run"] for r in doc["rows"]] == [r["run"] for r in api]
    for got, want in zip(doc["rows"], api, strict=True):
        for key in ("accuracy", "spikes_per_sample", "first_output_spikes", "energy_pj_rel"):
            assert got[key] == pytest.approx(want[key])
    assert len(doc["runs"]) == 1 + 2 + 2 + 4
    assert doc["meta"]["samples"] == 12 and doc["meta"]["timesteps"] == 6
    for name in ("raster.png", "decision_curve.png", "sweep.png", "energy.png"):
        assert (Path("figs") / name).read_bytes()[:4] == b"\x89PNG"
        assert f"wrote figs/{name}" in res.stdout


def test_compare_default_sweep_json_and_csv(files):
    res = invoke(
        "compare", files["model"], "-i", files["data"], "--policies", "fifo", "--samples", "4",
        "--json", "-o", "c.csv",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    # widest layer 12: F = 1, 2, 4, 8, 16, inf
    assert [r["group_size"] for r in doc["rows"]] == ["-", "1", "2", "4", "8", "16", "inf"]
    with open("c.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == [r["run"] for r in doc["rows"]]
    lay = A.Simulator(files["net"], policy="layered").run(files["x"][:4], files["y"][:4])
    assert float(rows[0]["spikes_per_sample"]) == pytest.approx(lay.spikes_per_sample())


def test_compare_without_labels_still_runs(files):
    write_data(Path("nolabels.npz"), files["x"])
    res = invoke("compare", files["model"], "-i", "nolabels.npz", "--group-sizes", "1", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert all(r["accuracy"] is None for r in rows)


# ---------------------------------------------------------------------- inspect
def test_inspect_text_and_json(files):
    res = invoke("inspect", files["model"])
    assert res.exit_code == 0, res.output
    assert "h1" in res.stdout and "fc2" in res.stdout and "dense 320" in res.stdout
    assert "trainer: hand-made" in res.stdout
    doc = json.loads(invoke("inspect", files["model"], "--json").stdout)
    assert doc["dense_synops_per_timestep"] == 16 * 12 + 12 * 8 + 8 * 4
    assert [p["neurons"] for p in doc["populations"]] == [12, 8, 4]
    assert doc["populations"][0]["fan_in"] == {"mean": 16.0, "max": 16}
    assert doc["populations"][1]["fan_out"] == {"mean": 4.0, "max": 4}
    assert doc["populations"][2]["fan_out"]["max"] == 0
    assert doc["populations"][0]["beta"] == [0.8, 0.8]
    measured = json.loads(invoke("inspect", files["model"], "-i", files["data"], "--json").stdout)
    lay = A.Simulator(files["net"], policy="layered").run(files["x"], files["y"])
    per_t = (lay.synops.sum() + lay.input_synops.sum()) / (12 * 6)
    assert measured["measured"]["effective_synops_per_timestep"] == pytest.approx(per_t)


def test_inspect_counts_zero_weights_in_dense_but_not_in_fan_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    net = A.Network(3, [A.Population("p", 2)], [A.Dense("d", "input", "p", w)])
    write_model(net, tmp_path / f"m{MODEL_SUFFIX}")
    doc = json.loads(invoke("inspect", f"m{MODEL_SUFFIX}", "--json").stdout)
    assert doc["dense_synops_per_timestep"] == 6
    assert doc["nonzero_synapses"] == 3
    assert doc["populations"][0]["fan_in"] == {"mean": 1.5, "max": 2}
    assert doc["input_fan_out"] == {"mean": 1.0, "max": 2}
    assert doc["connection_sparsity"] == pytest.approx(0.5)


def test_inspect_fan_in_of_a_sparse_projection(tmp_path, monkeypatch):
    # indexed (CSR) segments store an offset into the target list, not a neuron: the
    # fan-in must follow the list (in a population placed after another one)
    monkeypatch.chdir(tmp_path)
    src = [0, 0, 1, 2, 2, 2]
    tgt = [4, 1, 4, 4, 0, 1]
    net = A.Network(
        3,
        [A.Population("a", 2), A.Population("p", 5)],
        [
            A.Dense("d", "input", "a", np.ones((2, 3))),
            A.Sparse("s", "input", "p", source_index=src, target_index=tgt, weight=[1.0] * 6),
        ],
    )
    write_model(net, tmp_path / f"m{MODEL_SUFFIX}")
    doc = json.loads(invoke("inspect", f"m{MODEL_SUFFIX}", "--json").stdout)
    expected = np.bincount(tgt, minlength=5)  # [1, 2, 0, 0, 3]
    assert doc["populations"][1]["fan_in"] == {"mean": expected.mean(), "max": 3}
    assert doc["populations"][0]["fan_in"] == {"mean": 3.0, "max": 3}


# ---------------------------------------------------------------------- bench, presets
def test_bench_json_and_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke(
        "bench", "--sizes", "30,10,4", "--timesteps", "4", "--samples", "2", "--repeats", "1",
        "--policies", "layered,momentum", "--group-sizes", "1", "--json", "-o", "b.json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert [(r["policy"], r["group_size"]) for r in rows] == [("layered", "-"), ("momentum", "1")]
    assert json.loads(Path("b.json").read_text())["rows"][1]["policy"] == "momentum"
    text = invoke("bench", "--sizes", "30,10,4", "--timesteps", "2", "--samples", "1",
                  "--repeats", "1", "--policies", "fifo")  # fmt: skip
    assert text.exit_code == 0 and "samples/s" in text.stdout


def test_presets_lists_every_preset_with_its_scope_and_source():
    res = invoke("presets")
    assert res.exit_code == 0
    for name in ("horowitz45-fp32", "horowitz45-int8", "loihi-davies2018", "loihi-sanafe"):
        assert name in res.stdout
    assert "truenorth  [all-in]" in res.stdout and "Merolla" in res.stdout
    doc = json.loads(invoke("presets", "--json").stdout)
    assert doc["presets"]["truenorth"]["costs_pj"] == {"synops": 26.0}


def test_help_and_version():
    res = invoke("--help")
    assert res.exit_code == 0 and "compare" in res.stdout and "inspect" in res.stdout
    assert invoke().exit_code == 0
    assert A.__version__ in invoke("--version").stdout
    assert "--group-size" in invoke("run", "--help").stdout


# ---------------------------------------------------------------------- errors
def test_missing_files(files):
    assert_one_line_error(
        invoke("run", "nope.nir", "-i", files["data"]), 2, "'MODEL'", "'nope.nir' does not exist"
    )
    assert_one_line_error(
        invoke("run", files["model"], "-i", "nope.npz"), 2, "'--input'", "'nope.npz' does not exist"
    )
    assert_one_line_error(invoke("run", files["model"]), 2, "Missing option '--input'")


def test_bad_model_file(files):
    Path("bad.nir").write_text("this is not a model")
    line = assert_one_line_error(invoke("run", "bad.nir", "-i", files["data"]), 1, "bad.nir")
    assert "model" in line or "nir" in line.lower()
    assert_one_line_error(invoke("inspect", "bad.nir"), 1, "bad.nir")
    raw = bytearray(A.save(files["net"], "net.h5").read_bytes())
    raw[-100] ^= 1  # one bit anywhere in an asyncsim network file: refused by its checksum
    Path("net.h5").write_bytes(raw)
    for cmd in (["run", "net.h5", "-i", files["data"]], ["inspect", "net.h5"]):
        assert_one_line_error(invoke(*cmd), 1, "net.h5: damaged asyncsim network file")


def test_width_mismatch(files):
    write_data(Path("narrow.npz"), np.ones((4, 5, 10), np.uint8), np.zeros(4, int))
    assert_one_line_error(invoke("run", files["model"], "-i", "narrow.npz"), 1, "(4, 5, 10)", "16")


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["--policy", "lifo"], 2, ["'--policy'", "'lifo' is not one of", "'momentum'"]),
        (["--frobnicate"], 2, ["No such option '--frobnicate'"]),
        (["-F", "0"], 1, ["group size F = '0' must be >= 1"]),
        (["-F", "many"], 1, ["group size F = 'many' must be an integer >= 1 or 'inf'"]),
        (["--stop", "soon"], 1, ["unknown stop rule 'soon'"]),
        (["--policy", "layered", "--stop", "output"], 1, ["stop rule 'output:0' applies to"]),
        (["--seed", "-1"], 2, ["'--seed'", "-1"]),
        (["--energy", "loihi3"], 1, ["unknown energy preset 'loihi3'"]),
        (["--out", "r.txt"], 1, ["unknown format '.txt'; use .json, .csv or .h5"]),
        (["--samples", "0"], 2, ["'--samples'"]),
    ],
)
def test_bad_option_values(files, args, code, fragments):
    assert_one_line_error(
        invoke("run", files["model"], "-i", files["data"], *args), code, *fragments
    )


def test_compare_option_errors(files):
    base = ["compare", files["model"], "-i", files["data"]]
    assert_one_line_error(invoke(*base, "--policies", "fifo,lifo"), 1, "unknown policy 'lifo'")
    assert_one_line_error(invoke(*base, "--seeds", "a,b"), 1, "--seeds 'a,b'")
    assert_one_line_error(invoke(*base, "--group-sizes", "1,0"), 1, "group size F = '0'")
    assert_one_line_error(
        invoke(*base, "--plot", "figs", "--raster-sample", "99"), 1, "--raster-sample 99"
    )
    np.save("labels.npy", np.zeros(3, int))
    assert_one_line_error(invoke(*base, "--labels", "labels.npy"), 1, "labels shape (3,)")
    Path("afile").write_text("")
    assert_one_line_error(invoke(*base, "--plot", "afile"), 2, "'--plot'", "'afile' is a file")
    # a run that fails before simulating leaves no figure directory behind
    assert_one_line_error(invoke(*base, "--plot", "newdir", "--seeds", "x"), 1, "--seeds")
    assert not Path("newdir").exists()


def test_outputs_are_never_overwritten_without_force(files):
    Path("r.json").write_text("keep me")
    assert_one_line_error(
        invoke("run", files["model"], "-i", files["data"], "-o", "r.json"),
        1,
        "'r.json' already exists; pass --force",
    )
    assert Path("r.json").read_text() == "keep me"
    res = invoke("run", files["model"], "-i", files["data"], "-o", "r.json", "--force", "-q")
    assert res.exit_code == 0
    assert json.loads(Path("r.json").read_text())["metrics"]["policy"] == "fifo"
    # figures too
    Path("figs").mkdir()
    Path("figs/sweep.png").write_bytes(b"old")
    base = ["compare", files["model"], "-i", files["data"], "--group-sizes", "1", "--plot", "figs"]
    assert_one_line_error(invoke(*base), 1, "figs/sweep.png' already exists")
    assert Path("figs/sweep.png").read_bytes() == b"old"
    assert invoke(*base, "--force", "-q").exit_code == 0
    assert Path("figs/sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_unexpected_errors_are_one_line_unless_debug(files, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(A.Simulator, "run", boom)
    assert_one_line_error(
        invoke("run", files["model"], "-i", files["data"]),
        1,
        "unexpected RuntimeError: boom second line",
        "--debug",
    )
    res = invoke("--debug", "run", files["model"], "-i", files["data"])
    assert res.exit_code == 1 and isinstance(res.exception, RuntimeError)


def test_os_errors_are_one_line(files, monkeypatch):
    def deny(*a, **k):
        raise PermissionError(13, "Permission denied", "r.json")

    monkeypatch.setattr("asyncsim.export.atomic_write", deny)
    assert_one_line_error(
        invoke("run", files["model"], "-i", files["data"], "-o", "r.json"),
        1,
        "Permission denied: r.json",
    )


# ---------------------------------------------------------------------- progress, module
def test_progress_bar_only_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    with CLI.Progress("momentum F=1", True) as bar:
        for i in range(1, 5):
            bar(i, 4)
    assert "momentum F=1" in err.getvalue() and "4/4" in err.getvalue()
    err2 = Tty()
    monkeypatch.setattr(sys, "stderr", err2)
    with CLI.Progress("x", False) as bar:  # --quiet
        bar(1, 1)
    assert err2.getvalue() == ""


def test_python_dash_m_asyncsim(files):
    env = dict(os.environ, PYTHONPATH=str(Path(A.__file__).resolve().parent.parent))
    ok = subprocess.run(
        [sys.executable, "-m", "asyncsim", "--help"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0 and "Usage: asyncsim" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "asyncsim", "run", "missing.nir", "-i", "x.npz"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: Invalid value for ") and bad.stderr.count("\n") == 1
    assert "does not exist" in bad.stderr
