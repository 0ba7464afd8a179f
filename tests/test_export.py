"""Result files: JSON / CSV / HDF5 parsed back and compared with the API's numbers;
atomic publication, no overwrite without permission, no half-written file on failure."""

from __future__ import annotations

import csv
import json
import os

import h5py
import numpy as np
import pytest

import asyncsim as A
from asyncsim import export as X
from asyncsim.compare import compare, measure, sweep

from .workflow_helpers import tiny_data, tiny_net


@pytest.fixture(scope="module")
def run_result():
    net = tiny_net()
    x, y = tiny_data(6, 5)
    res = A.Simulator(net, policy="momentum", group_size=2).run(x, y)
    return net, x, res, measure(res, net, x)


def test_json_run_round_trip(tmp_path, run_result):
    _net, _x, res, row = run_result
    path = X.write_run(tmp_path / "r.json", res, row, {"model": "tiny"}, arrays=True)
    doc = json.loads(path.read_text())
    assert doc["meta"] == {"model": "tiny", "kind": "run"}
    s = res.summary()
    for key in ("accuracy", "spikes_per_sample", "synops_per_sample", "forward_steps_per_sample"):
        assert doc["metrics"][key] == pytest.approx(s[key])
    assert doc["metrics"]["policy"] == "momentum" and doc["metrics"]["group_size"] == "2"
    assert [p["population"] for p in doc["populations"]] == res.population_names
    assert doc["populations"][1]["spikes_per_sample"] == pytest.approx(
        res.spikes[:, :, 1].sum() / res.n_samples
    )
    np.testing.assert_array_equal(np.array(doc["arrays"]["spikes"]), res.spikes)
    np.testing.assert_array_equal(np.array(doc["arrays"]["predictions"]), res.predictions)


def test_csv_run_round_trip(tmp_path, run_result):
    _net, _x, res, row = run_result
    path = X.write_run(tmp_path / "r.csv", res, row)
    with path.open(newline="") as fh:
        lines = list(csv.DictReader(fh))
    whole = {r["metric"]: r["value"] for r in lines if r["population"] == ""}
    assert float(whole["spikes_per_sample"]) == pytest.approx(res.spikes_per_sample())
    assert float(whole["energy.horowitz45-fp32.total_pj"]) == pytest.approx(row["energy_pj"])
    assert json.loads(whole["curve.accuracy"])[-1] == pytest.approx(res.accuracy)
    per_pop = {(r["population"], r["metric"]): r["value"] for r in lines if r["population"] != ""}
    for p, name in enumerate(res.population_names):
        assert float(per_pop[(name, "spikes_per_sample")]) == pytest.approx(
            res.spikes[:, :, p].sum() / res.n_samples
        )


def test_h5_run_round_trip(tmp_path, run_result):
    _net, _x, res, row = run_result
    path = X.write_run(tmp_path / "r.h5", res, row, {"model": "tiny"})
    with h5py.File(path, "r") as f:
        assert f.attrs["model"] == "tiny" and f.attrs["kind"] == "run"
        assert f["metrics"].attrs["synops_per_sample"] == pytest.approx(res.synops_per_sample())
        assert f["metrics"].attrs["policy"] == "momentum"
        for name in A.Result.array_names():
            if getattr(res, name) is not None:
                np.testing.assert_array_equal(f["arrays"][name][()], getattr(res, name))
        assert f["populations"]["h2"].attrs["neurons"] == 8


def test_compare_files_round_trip(tmp_path):
    net = tiny_net()
    x, y = tiny_data(4, 4)
    runs = sweep(net, x, y, group_sizes=[1, "inf"], seeds=[0, 1])
    rows = compare(net, x, y, group_sizes=[1, "inf"], seeds=[0, 1])
    X.write_compare(tmp_path / "c.json", rows, runs, {"model": "tiny"})
    X.write_compare(tmp_path / "c.csv", rows, runs)
    X.write_compare(tmp_path / "c.h5", rows, runs)
    doc = json.loads((tmp_path / "c.json").read_text())
    assert len(doc["rows"]) == len(rows) == 7 and len(doc["runs"]) == len(runs) == 9
    with (tmp_path / "c.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    with h5py.File(tmp_path / "c.h5", "r") as f:
        h5_spikes = f["rows"]["spikes_per_sample"][()]
        h5_policy = [v.decode() for v in f["rows"]["policy"][()]]
        h5_curve = f["rows"]["curve.accuracy"][()]
        assert f["runs"]["spikes_per_sample"].shape == (9,)
    for i, r in enumerate(rows):
        assert doc["rows"][i]["spikes_per_sample"] == pytest.approx(r["spikes_per_sample"])
        assert float(table[i]["spikes_per_sample"]) == pytest.approx(r["spikes_per_sample"])
        assert table[i]["policy"] == h5_policy[i] == r["policy"]
        assert h5_spikes[i] == pytest.approx(r["spikes_per_sample"])
        np.testing.assert_allclose(h5_curve[i], r["curve.accuracy"])
    # the JSON runs equal direct simulations
    lay = A.Simulator(net, policy="layered").run(x, y)
    assert doc["runs"][0]["spikes_per_sample"] == pytest.approx(lay.spikes_per_sample())


def test_never_overwrites_without_force(tmp_path, run_result):
    _net, _x, res, row = run_result
    target = tmp_path / "r.json"
    target.write_text("precious")
    with pytest.raises(A.AsyncsimError, match=r"already exists; pass --force"):
        X.write_run(target, res, row)
    assert target.read_text() == "precious"
    X.write_run(target, res, row, overwrite=True)
    assert json.loads(target.read_text())["metrics"]["policy"] == "momentum"
    assert os.listdir(tmp_path) == ["r.json"]  # no temporary file left behind


def test_refuses_when_the_file_appears_while_writing(tmp_path):
    target = tmp_path / "x.json"

    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write("{}")
        target.write_text("someone else")  # a concurrent writer wins the name

    with pytest.raises(A.AsyncsimError, match=r"appeared while writing"):
        X.atomic_write(target, write)
    assert target.read_text() == "someone else"
    assert os.listdir(tmp_path) == ["x.json"]


@pytest.mark.parametrize("suffix", [".json", ".csv", ".h5"])
def test_failure_during_write_leaves_no_file(tmp_path, monkeypatch, run_result, suffix):
    """Simulate a crash after part of the file has been written: the target must not
    exist and no temporary file may remain."""
    _net, _x, res, row = run_result
    target = tmp_path / f"r{suffix}"

    class Crash(RuntimeError):
        pass

    if suffix == ".json":

        def dump(obj, fh, **kw):
            fh.write('{"meta": {"half":')
            fh.flush()
            raise Crash

        monkeypatch.setattr(json, "dump", dump)
    elif suffix == ".csv":

        def cell(v):
            raise Crash

        monkeypatch.setattr(X, "_cell", cell)
    else:
        real = h5py.Group.create_dataset

        def create(self, name, *a, **kw):
            if name == "spikes":
                raise Crash
            return real(self, name, *a, **kw)

        monkeypatch.setattr(h5py.Group, "create_dataset", create)
    with pytest.raises(Crash):
        X.write_run(target, res, row)
    assert not target.exists()
    assert os.listdir(tmp_path) == []
    # and an existing file survives a failed --force rewrite untouched
    target.write_text("old")
    with pytest.raises(Crash):
        X.write_run(target, res, row, overwrite=True)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == [target.name]


def test_killed_writer_leaves_only_a_hidden_temporary(tmp_path):
    """A process killed mid-write (SIGKILL: no cleanup runs) never leaves the target."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, signal
        from asyncsim.export import atomic_write
        def write(tmp):
            with open(tmp, "w") as fh:
                fh.write('{{"partial": ')
                fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(tmp_path / "out.json")!r}, write)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert proc.returncode != 0
    names = os.listdir(tmp_path)
    assert "out.json" not in names
    assert all(n.startswith(".out.json.") and n.endswith(".tmp") for n in names)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("r.txt", r"unknown format '.txt'; use .json, .csv or .h5"),
        ("noext", r"unknown format '\(no suffix\)'"),
        ("missing_dir/r.json", r"directory .*missing_dir' does not exist"),
    ],
)
def test_bad_output_names(tmp_path, name, message):
    with pytest.raises(A.AsyncsimError, match=message):
        X.check_output(tmp_path / name)


def test_files_get_ordinary_permissions(tmp_path):
    p = X.write_json(tmp_path / "p.json", {"a": np.float32(1.5), "b": np.inf, "c": np.arange(2)})
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)
    assert json.loads(p.read_text()) == {"a": 1.5, "b": None, "c": [0, 1]}
