"""benchmarks/plot_results.py (the scaling figure) and the atomic result writer of the
benchmark scripts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asyncsim import AsyncsimError
from asyncsim.bench import write_results

pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "plot_results.py"


def _size_row(neurons: int, fanout: int, policy: str) -> dict:
    return {
        "neurons": neurons,
        "fanout": fanout,
        "policy": policy,
        "marginal_ns_per_event": 1.0 + neurons / 1e5 + fanout / 1e3,
        "ns_per_neuron_timestep": 0.5,
    }


def _results(tmp_path: Path, size_rows: list[dict]) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    length = [
        {"policy": p, "timesteps": t, "ns_per_event": 0.4, "peak_rss_mb": 180.0}
        for p in ("layered", "fifo")
        for t in (10, 1000)
    ]
    (d / "scaling_size.json").write_text(json.dumps({"rows": size_rows}))
    (d / "scaling_length.json").write_text(json.dumps({"rows": length}))
    return d


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_plot_draws_one_line_per_policy_and_fanout_reproducibly(tmp_path):
    rows = [
        _size_row(n, k, p) for n in (1000, 10000) for k in (10, 1000) for p in ("layered", "fifo")
    ]
    d = _results(tmp_path, rows)
    out = tmp_path / "fig.svg"
    res = _run("--results", str(d), "--out", str(out))
    assert res.returncode == 0, res.stderr
    svg = out.read_text()
    labels = set(re.findall(r"(layered|fifo), fan-out (\d+)", svg))
    assert labels == {(p, k) for p in ("layered", "fifo") for k in ("10", "1000")}
    assert "fan-out 100<" not in svg  # no series the JSON does not hold
    first = out.read_bytes()
    assert _run("--results", str(d), "--out", str(out)).returncode == 0
    assert out.read_bytes() == first  # no date, stable ids: the committed SVG diffs cleanly


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "scaling_size.json not found: run python benchmarks/bench_scaling.py first"),
        ("field", "row 1 lacks marginal_ns_per_event"),
        ("row", "row 1 lacks neurons, fanout, policy"),
        ("empty", "holds no result rows"),
        ("suffix", "use a .png, .svg or .pdf name"),
    ],
)
def test_plot_rejects_bad_results_in_one_line(tmp_path, change, message):
    rows = [_size_row(1000, 10, "fifo"), _size_row(1000, 10, "layered")]
    if change == "field":
        del rows[1]["marginal_ns_per_event"]
    if change == "row":
        rows[1] = [1000, 10]  # a row that is not an object
    d = _results(tmp_path, [] if change == "empty" else rows)
    if change == "missing":
        (d / "scaling_size.json").unlink()
    out = tmp_path / ("fig.txt" if change == "suffix" else "fig.svg")
    res = _run("--results", str(d), "--out", str(out))
    assert res.returncode == 1
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_write_results_leaves_the_old_file_whole_when_writing_fails(tmp_path):
    path = tmp_path / "new" / "engine.md"
    write_results(path, "| a |\n")  # creates the directory
    assert path.read_text() == "| a |\n"
    with pytest.raises(UnicodeEncodeError):
        write_results(path, "| b |\n" + "\ud800")  # not encodable: fails mid-write
    assert path.read_text() == "| a |\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["engine.md"]  # no temp file left
    with pytest.raises(AsyncsimError, match="is a directory"):
        write_results(tmp_path / "new", "x")
