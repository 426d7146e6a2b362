"""The two bring-your-own examples train, pass their gates and export (as `make examples` runs them)."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains and exports the worked examples

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "spec_file, dropped", [("examples/byo_callable/cylinder.toml", 0), ("examples/byo_csv/packed_bed.toml", 5)]
)
def test_byo_example(cli, tmp_path, spec_file, dropped):
    path = str(ROOT / spec_file)
    status, out, err = cli("gate", path)
    assert status == 0, out + err
    assert ("dropped 5 bad data row(s)" in out) == bool(dropped)
    assert cli("export", path)[0] == 0
    name = Path(spec_file).stem
    card = json.loads((tmp_path / "exported" / f"{name}.json").read_text())
    assert card["training"]["dropped_rows"] == dropped and card["gates_passed"]
