"""``python -m asyncsim``: the same command line as the ``asyncsim`` script."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(prog_name="asyncsim")
