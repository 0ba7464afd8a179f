"""The README's Python examples run as written and print what the README says."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run(monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(ROOT)  # the examples use paths relative to the repository
    out = io.StringIO()
    for block in blocks:
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), {})
    printed = out.getvalue()
    # the second example claims SEMANTICS.md statement 6: 7 spikes in each timestep
    assert "[[7 7 7 7 7]]" in printed
    assert os.path.exists(ROOT / "models" / "digits" / "model.nir")
