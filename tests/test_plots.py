"""Figures: every plot is written (a valid PNG with the expected panels), never replaces a
file without permission, and asks for matplotlib when it is missing."""

from __future__ import annotations

import sys

import pytest

import asyncsim as A
from asyncsim import compare as C
from asyncsim import plots as P
from asyncsim.energy import PRESETS

from .workflow_helpers import tiny_data, tiny_net

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rows():
    net = tiny_net()
    x, y = tiny_data(6, 5)
    return C.compare(net, x, y, group_sizes=[1, 4, "inf"], seeds=[0, 1], energy=list(PRESETS))


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_sweep_decision_and_energy_plots(tmp_path, rows):
    w, h = _png_size(P.sweep_plot(rows, tmp_path / "s.png"))
    assert w > h > 300
    _png_size(P.decision_curve(rows, tmp_path / "d.png"))
    _png_size(P.energy_breakdown(rows, tmp_path / "e.png"))
    one = P.energy_breakdown(rows, tmp_path / "e1.png", presets=["truenorth"])
    assert _png_size(one)[1] < _png_size(tmp_path / "e.png")[1]  # one panel, not six
    assert P.sweep_plot(rows, tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


def test_raster_of_layered_and_asynchronous_runs(tmp_path):
    net = tiny_net()
    x, y = tiny_data(2, 4)
    rec = C.record_sample(net, x, 1, [C.RunSpec("layered", "inf"), C.RunSpec("momentum", "1")], y)
    w, h = _png_size(P.raster(rec, tmp_path / "r.png"))
    assert w > h  # two columns of panels side by side
    plain = {"fifo": A.Simulator(net).run(x, y)}
    with pytest.raises(A.AsyncsimError, match=r"has no events; run it with record_events=True"):
        P.raster(plain, tmp_path / "r2.png")


def test_plots_never_overwrite_without_permission(tmp_path, rows):
    target = tmp_path / "s.png"
    target.write_bytes(b"keep")
    with pytest.raises(A.AsyncsimError, match=r"already exists"):
        P.sweep_plot(rows, target)
    assert target.read_bytes() == b"keep"
    P.sweep_plot(rows, target, overwrite=True)
    assert target.read_bytes()[:8] == PNG


def test_bad_figure_names_and_missing_data(tmp_path, rows):
    with pytest.raises(A.AsyncsimError, match=r"use a .png, .svg or .pdf name"):
        P.sweep_plot(rows, tmp_path / "s.jpg")
    unlabeled = [dict(r, **{"curve.accuracy": None}) for r in rows]
    with pytest.raises(A.AsyncsimError, match=r"no labels"):
        P.decision_curve(unlabeled, tmp_path / "d.png")
    with pytest.raises(A.AsyncsimError, match=r"no asynchronous runs"):
        P.sweep_plot([r for r in rows if r["policy"] == "layered"], tmp_path / "x.png")


def test_missing_matplotlib_is_a_clear_error(tmp_path, rows, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(A.AsyncsimError, match=r"plotting needs matplotlib: pip install"):
        P.sweep_plot(rows, tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_import_asyncsim_does_not_import_matplotlib():
    import subprocess

    code = (
        "import sys, asyncsim, asyncsim.compare, asyncsim.plots, asyncsim.cli;"
        "bad = [m for m in ('matplotlib', 'torch', 'h5py') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
