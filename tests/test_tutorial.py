"""docs/tutorial.md is executable: every ``$`` command of its ``console`` blocks and every
``python`` block runs, in document order, in a fresh directory next to the shipped model.

The printed output is checked loosely, so that numbers may be regenerated without
touching this test but renamed rows, columns or populations are caught: the label of each
shown output line (the text before the first run of two spaces) must start some line of
the actual output. An error line shown in the document must be printed exactly, with a
non-zero exit status.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncsim.cli import main

from .workflow_helpers import HAVE_IO

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "tutorial.md"
MODEL = ROOT / "models" / "digits" / "model.nir"

BLOCK = re.compile(r"^```(console|python)\n(.*?)^```", re.S | re.M)


def parse(text: str) -> list[tuple[str, str, list[str]]]:
    """``[(kind, code, shown_output_lines)]`` in document order; a console block yields
    one entry per ``$`` command."""
    steps: list[tuple[str, str, list[str]]] = []
    for kind, body in BLOCK.findall(text):
        if kind == "python":
            steps.append(("python", body, []))
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                steps.append(("console", line[2:], []))
            elif steps and steps[-1][0] == "console":
                steps[-1][2].append(line)
    return steps


def label(line: str) -> str:
    return re.split(r"\s{2,}", line.strip())[0]


def test_the_tutorial_parses_into_commands():
    steps = parse(DOC.read_text())
    cmds = [c for k, c, _ in steps if k == "console"]
    assert any(c.startswith("asyncsim compare models/digits/model.nir") for c in cmds)
    assert any(c.startswith("asyncsim inspect") for c in cmds)
    assert any(k == "python" for k, _, _ in steps)


@pytest.mark.slow
@pytest.mark.skipif(not MODEL.exists(), reason="the demo model models/digits is not present")
@pytest.mark.skipif(not HAVE_IO, reason="asyncsim.io (model and data readers) is not present")
def test_every_tutorial_command_runs(tmp_path, monkeypatch):
    (tmp_path / "models").symlink_to(ROOT / "models", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__tutorial__"}
    for kind, code, shown in parse(DOC.read_text()):
        if kind == "python":
            exec(compile(code, str(DOC), "exec"), namespace)
            continue
        argv = shlex.split(code)
        if argv[0] != "asyncsim":
            subprocess.run(code, shell=True, check=True, cwd=tmp_path)
            continue
        res = CliRunner().invoke(main, argv[1:])
        if shown and shown[0].startswith("error:"):
            assert res.exit_code != 0, code
            assert res.stderr.strip() == shown[0], code
            continue
        assert res.exit_code == 0, f"{code}\n{res.output}"
        actual = [ln.strip() for ln in res.stdout.splitlines()]
        for line in shown:
            if line.strip() in ("", "..."):
                continue
            want = label(line)
            assert any(a.startswith(want) for a in actual), (
                f"tutorial output of '{code}' is stale: no line starts with {want!r}"
            )
    assert (tmp_path / "figures" / "decision_curve.png").exists()
    assert (tmp_path / "my_curve.png").exists()
