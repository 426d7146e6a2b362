"""The water surrogate inside code_saturne (examples/code_saturne): a short run of the heated channel, with the
surrogate and with CoolProp, compared cell by cell; and the case's helpers, which need no code_saturne."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.card import Card
from pipeline.loader import CARD_KEY, DIGEST_KEY, seal
from pipeline.runtime import domain

pytestmark = pytest.mark.slow  # runs a CFD case

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "examples" / "code_saturne"
SUMMARY = re.compile(
    r"^code_saturne: cells=(\d+) iterations=(\d+) max_abs_dT_K=(\S+) max_rel_drho=(\S+) "
    r"property_time_share=(\S+)%$"
)


@pytest.fixture(scope="module")
def run_case():
    spec = importlib.util.spec_from_file_location("run_case", CASE / "run_case.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_code_saturne = pytest.mark.skipif(
    shutil.which("code_saturne") is None,
    reason="code_saturne is not installed (.ci/run installs it; on Debian: apt-get install code-saturne)",
)


def skip_unless_supported(run_case):
    found = run_case.version()
    if not found.startswith(run_case.SUPPORTED_VERSION + "."):
        pytest.skip(
            f"code_saturne {found or '(unknown version)'} is installed; the case's user sources are "
            f"written for {run_case.SUPPORTED_VERSION} (Debian 12's code-saturne)"
        )


@needs_code_saturne
def test_short_run_matches_coolprop(run_case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("USER", "ci")  # code_saturne needs USER; CI containers may not set it
    skip_unless_supported(run_case)
    assert run_case.main(["--steps", "20", "--work", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    match = SUMMARY.match(lines[-1])
    assert match, lines[-1]
    cells, iterations, dT, drho, share = match.groups()
    assert int(cells) >= 500 and int(iterations) == 20
    # the surrogate's density is within 2e-5 of CoolProp (its card); the temperature follows within millikelvin
    assert float(dT) < 0.05 and float(drho) < 1e-4
    assert 0.0 < float(share) < 100.0
    assert sum(line.startswith("code_saturne:") for line in lines) == 1
    # the heated wall spreads the temperature by tens of kelvin within the 20 steps
    fields = np.genfromtxt(tmp_path / "REFERENCE" / "RESU" / "run" / "case_fields.csv", delimiter=",", names=True)
    assert fields["T"].max() - fields["T"].min() > 20.0
    assert fields["rho"].max() / fields["rho"].min() > 1.005  # and the density field follows it
    # code_saturne compiles user C with -pedantic -Wfloat-equal -Wcast-qual ...: neither the generated C nor the
    # case's sources (C and Fortran) draw a warning
    log = (tmp_path / "SURROGATE" / "RESU" / "run" / "compile.log").read_text()
    assert "water.c" in log and not [line for line in log.splitlines() if "warning:" in line.lower()]


@needs_code_saturne
def test_cells_outside_the_valid_range_are_clipped_and_counted(run_case, tmp_path, capsys, monkeypatch):
    """The water model with its T range cut to [275, 300] K: the cells near the 360 K walls fall outside."""
    monkeypatch.setenv("USER", "ci")
    skip_unless_supported(run_case)
    model = onnx.load(str(ROOT / "exported" / "water.onnx"))
    props = {p.key: p.value for p in model.metadata_props if p.key != DIGEST_KEY}
    card = json.loads(props[CARD_KEY])
    card["inputs"][0]["max"] = 300.0
    props[CARD_KEY] = json.dumps(card)
    onnx.helper.set_model_props(model, props)  # the old digest dropped: sealed again below, as export would
    (tmp_path / "water.onnx").write_bytes(seal(model.SerializeToString()))
    assert (
        run_case.main(["--steps", "5", "--work", str(tmp_path / "study"), "--model", str(tmp_path / "water.onnx")]) == 0
    )
    out = capsys.readouterr().out
    assert "reach beyond the model's valid range [275, 300] K" in out
    clipped = int(re.search(r"^surrogate: .*, (\d+) cell evaluation\(s\) outside the valid range", out, re.M)[1])
    assert clipped > 0
    listing = (tmp_path / "study" / "SURROGATE" / "RESU" / "run" / "listing").read_text()
    assert re.search(r"water properties: \d+ cell\(s\) outside T in \[275, 300\] K at p = 1e\+06 Pa", listing)
    assert f"water properties: {clipped} cell evaluation(s) outside the valid range over the run" in listing


def test_reference_table_interpolates_within_1e6(run_case):
    text, spacing, err = run_case.reference_table(280.0, 380.0)
    assert err < 1e-6 and spacing < 0.1 and "#define REF_N" in text


def test_mesh_is_a_gmsh_hexahedral_channel(run_case, tmp_path):
    cells = run_case.write_mesh(tmp_path / "channel.msh")
    lines = (tmp_path / "channel.msh").read_text().splitlines()
    assert cells == run_case.NX * run_case.NY >= 500
    assert lines[1] == "2.2 0 8" and int(lines[lines.index("$Elements") + 1]) == cells


def test_valid_range_is_read_from_the_card(run_case):
    card = json.loads((ROOT / "exported" / "water.json").read_text())
    # the card's box for T, narrowed at the case pressure by the card's own domain bounds (T <= T_sat(p) - 2 K)
    T_max = card["inputs"][0]["max"]
    for b in card.get("domain", {}).get("bounds", []):
        assert (b["input"], b["side"], b["of"]) == ("T", "max", "p")  # the shipped water's bound
        T_max = min(T_max, float(domain.bound_value(b, np.array([run_case.P0]))[0]))
    assert run_case.valid_temperatures(Card.from_dict(card)) == (card["inputs"][0]["min"], T_max)
    # a domain bound T <= T_max(p) narrows the range at the case pressure...
    p_lo, p_hi = card["inputs"][1]["min"], card["inputs"][1]["max"]
    card["domain"] = {
        "bounds": [
            {
                "input": "T",
                "side": "max",
                "of": "p",
                "label": "T_max(p)",
                "table": {"scale": "linear", "lo": p_lo, "hi": p_hi, "values": [380.0, 380.0]},
                "interpolation_error": 0.0,
            }
        ]
    }
    assert run_case.valid_temperatures(Card.from_dict(card))[1] == 380.0
    # ...and a model with no valid temperature at the case's pressure is refused, in one line
    card["domain"]["bounds"][0]["table"]["values"] = [270.0, 270.0]
    with pytest.raises(SystemExit) as stop:
        run_case.valid_temperatures(Card.from_dict(card))
    assert stop.value.code == 2
