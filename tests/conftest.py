"""Shared helpers: small specs written to a temporary folder, and the CLI run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

# `pipeline` is imported as installed: `make venv` installs this checkout editable (pip install -e . --no-deps), and
# `python -m pytest` run from the checkout finds it in the working directory; no test edits sys.path.
ROOT = Path(__file__).resolve().parents[1]

PARABOLOID = """
spec_version = 1
name = "{name}"
description = "test paraboloid"

[reference]
callable = "pipeline.references:paraboloid"

[[inputs]]
name = "x"
unit = "1"
min = 0.0
max = 1.0

[[inputs]]
name = "y"
unit = "1"
min = 0.0
max = 1.0

[[outputs]]
name = "z"
unit = "1"

[sampling]
count = 500
holdout = 500
grid = 51

[model]
widths = [8, 8]

[training]
max_steps = {steps}
check_every = 5
device = "cpu"

[gates]
rmse = {rmse}
max_abs = {max_abs}
"""


@pytest.fixture
def write_spec(tmp_path):
    """write_spec(text=None, **fields) -> path of a .toml spec in tmp_path (the paraboloid template by default)."""

    def write(
        text: str | None = None, name: str = "tiny", steps: int = 200, rmse: float = 1e-3, max_abs: float = 1e-2
    ) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            text if text is not None else PARABOLOID.format(name=name, steps=steps, rmse=rmse, max_abs=max_abs)
        )
        return str(path)

    return write


@pytest.fixture
def cli(tmp_path, capsys):
    """cli("train", spec, ...) -> (exit status, stdout, stderr), with runs/ and exported/ in tmp_path."""
    from pipeline.cli import main

    def run(command: str, *args: str, out: Path | None = None):
        status = main(
            [
                command,
                "--runs",
                str(tmp_path / "runs"),
                "--out",
                str(out or tmp_path / "exported"),
                *(["--quiet"] if command in ("train", "gate") else []),
                *args,
            ]
        )
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
