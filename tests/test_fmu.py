"""FMI 2.0 export: FMPy validates every shipped surrogate's FMU and simulates it (co-simulation and model exchange)
to onnxruntime's outputs on random in-domain inputs; out-of-domain inputs are FMI errors naming the input."""

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline import codegen
from pipeline.cli import EXIT_BAD_INPUT
from pipeline.codegen import fmu
from pipeline.loader import CARD_KEY, DIGEST_KEY, load, seal
from pipeline.runtime import domain

fmpy = pytest.importorskip("fmpy", reason=f"fmpy is not installed: pip install {fmu.FMPY_PIN}")
from fmpy.fmi1 import FMICallException  # noqa: E402
from fmpy.validation import validate_fmu  # noqa: E402

# slow: compiles FMUs and simulates them
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler 'cc' (apt-get install gcc)"),
]

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"
SHIPPED = sorted(p.stem for p in EXPORTED.glob("*.onnx"))
# as in the codegen tests: |fmu - ort| <= 1e-5 |ort| + 1e-6 max|ort| (the floor only matters near zero outputs)
RTOL, ATOL_FRACTION = codegen.RTOL, codegen.ATOL_FRACTION


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> path of its FMU, built once for the module."""
    dest = tmp_path_factory.mktemp("fmu")
    return {name: fmu.build(EXPORTED / f"{name}.onnx", dest) for name in SHIPPED}


def random_inputs(card: dict, n: int, seed: int = 0) -> np.ndarray:
    """n points uniform in the card's box, kept only where they satisfy its domain bounds."""
    rng = np.random.default_rng(seed)
    lo = np.array([i["min"] for i in card["inputs"]])
    hi = np.array([i["max"] for i in card["inputs"]])
    X = lo + (hi - lo) * rng.random((20 * n, len(lo)))
    bounds = card.get("domain", {}).get("bounds", [])
    X = X[~domain.violations(bounds, [i["name"] for i in card["inputs"]], X).any(axis=1)]
    return X[:n]


def simulate(path: Path, card: dict, X: np.ndarray, fmi_type: str, **kwargs):
    """Drive the FMU with X as input signals, one row per second, through fmpy.simulate_fmu."""
    names = [i["name"] for i in card["inputs"]]
    outs = [o["name"] for o in card["outputs"]]
    t = np.arange(len(X), dtype=float)
    signal = np.array([(ti, *row) for ti, row in zip(t, X)], dtype=[("time", float)] + [(n, float) for n in names])
    return fmpy.simulate_fmu(
        str(path),
        fmi_type=fmi_type,
        input=signal,
        output=names + outs,
        start_time=0.0,
        stop_time=float(len(X)),
        output_interval=1.0,
        step_size=1.0 if fmi_type == "CoSimulation" else None,
        **kwargs,
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_fmpy_finds_no_problem(built, name):
    assert validate_fmu(str(built[name])) == []


@pytest.mark.parametrize("fmi_type", ["CoSimulation", "ModelExchange"])
@pytest.mark.parametrize("name", SHIPPED)
def test_simulation_matches_onnxruntime(built, name, fmi_type):
    model = load(EXPORTED / f"{name}.onnx")
    card = model.card.to_dict()
    X = random_inputs(card, 40, seed=len(name))
    result = simulate(built[name], card, X, fmi_type)
    names = [i["name"] for i in card["inputs"]]
    recorded = np.stack([result[n] for n in names], axis=1)
    # every random input was applied (a co-simulation records a step's inputs at its end, hence the set test)
    assert {tuple(r) for r in X} <= {tuple(r) for r in recorded}
    Y = np.stack([result[o["name"]] for o in card["outputs"]], axis=1)
    expected = model(recorded)
    tol = RTOL * np.abs(expected) + ATOL_FRACTION * np.abs(expected).max(axis=0)
    assert np.all(np.abs(Y - expected) <= tol), np.max(np.abs(Y - expected) / np.abs(expected))


def test_names_units_and_start_values_come_from_the_card(built):
    md = fmpy.read_model_description(str(built["water"]))
    card = json.loads((EXPORTED / "water.json").read_text())
    variables = {v.name: v for v in md.modelVariables}
    for i in card["inputs"]:
        v = variables[i["name"]]
        assert v.causality == "input" and v.variability == "continuous" and v.unit == i["unit"]
        assert i["min"] <= float(v.start) <= i["max"] and float(v.min) == i["min"] and float(v.max) == i["max"]
    for o in card["outputs"]:
        v = variables[o["name"]]
        assert v.causality == "output" and v.unit == o["unit"]
    assert md.coSimulation is not None and md.modelExchange is not None
    with zipfile.ZipFile(built["water"]) as z:
        files = set(z.namelist())
    assert {"sources/water.c", "sources/water.h", "sources/fmu_water.c", "binaries/linux64/water.so"} <= files


@pytest.mark.parametrize("fmi_type", ["CoSimulation", "ModelExchange"])
def test_out_of_range_input_is_an_fmi_error_naming_it(built, fmi_type):
    card = json.loads((EXPORTED / "water.json").read_text())
    T_max = card["inputs"][0]["max"]
    messages = []
    X = np.array([[300.0, 1e6], [T_max + 10.0, 1e6]])
    with pytest.raises(FMICallException, match="status 3"):
        simulate(built["water"], card, X, fmi_type, logger=lambda *a: messages.append(a[-1].decode()))
    assert any(m.startswith(f"input T = {T_max + 10:g} K is outside its valid range") for m in messages), messages


def with_domain(tmp_path: Path) -> Path:
    """The shipped water model with a hand-made domain bound in its card: T <= 300 K + 10 K per MPa of p."""
    model = onnx.load(str(EXPORTED / "water.onnx"))
    props = {p.key: p.value for p in model.metadata_props if p.key != DIGEST_KEY}
    card = json.loads(props[CARD_KEY])
    p_lo, p_hi = card["inputs"][1]["min"], card["inputs"][1]["max"]
    card["domain"] = {
        "bounds": [
            {
                "input": "T",
                "side": "max",
                "of": "p",
                "label": "T_max(p)",
                "table": {
                    "scale": "linear",
                    "lo": p_lo,
                    "hi": p_hi,
                    "values": [300.0 + 1e-5 * p for p in np.linspace(p_lo, p_hi, 5)],
                },
                "interpolation_error": 0.0,
            }
        ]
    }
    props[CARD_KEY] = json.dumps(card)
    onnx.helper.set_model_props(model, props)  # the old digest dropped: sealed again, as export would
    path = tmp_path / "water.onnx"
    path.write_bytes(seal(model.SerializeToString()))
    return path


def test_domain_bounds_give_in_domain_start_values_and_named_errors(tmp_path):
    path = fmu.build(with_domain(tmp_path), tmp_path / "out")
    assert validate_fmu(str(path)) == []
    card = codegen.read_graph(tmp_path / "water.onnx").card.to_dict()
    md = fmpy.read_model_description(str(path))
    start = np.array([[float(v.start) for v in md.modelVariables if v.causality == "input"]])
    assert not domain.violations(card["domain"]["bounds"], ["T", "p"], start).any()
    assert not domain.violations(card["domain"]["bounds"], ["T", "p"], random_inputs(card, 20)).any()
    messages = []
    # T = 330 K is inside the box but above the bound at p = 1 MPa (310 K)
    with pytest.raises(FMICallException):
        simulate(
            path,
            card,
            np.array([[290.0, 1e6], [330.0, 1e6]]),
            "CoSimulation",
            logger=lambda *a: messages.append(a[-1].decode()),
        )
    assert any(m.startswith("input T = 330 K is above T_max(p) = 310 K at p = 1000000 Pa") for m in messages), messages


def test_cli_writes_the_fmu_and_refuses_a_missing_model(cli, tmp_path):
    status, out, _ = cli("fmu", "water", "--dest", str(tmp_path / "fmus"), out=EXPORTED)
    assert status == 0 and (tmp_path / "fmus" / "water.fmu").is_file()
    assert "inputs T [K], p [Pa]" in out and "co-simulation and model exchange" in out
    status, _, err = cli("fmu", "water", "--dest", str(tmp_path / "fmus"), out=tmp_path / "nothing")
    assert status == EXIT_BAD_INPUT and err.startswith("error: no exported model at") and err.count("\n") == 1


def test_heated_tank_example_runs_the_fmu_in_a_system_simulation(built, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("heated_tank", ROOT / "examples" / "fmu" / "heated_tank.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--fmu", str(built["water"]), "--plot", str(tmp_path / "tank.png")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    diff = float(line.split("max |T_fmu - T_coolprop| = ")[1].split(" K")[0])
    assert line.startswith("heated tank: 360 steps") and diff < 0.01 and (tmp_path / "tank.png").is_file()


def test_a_missing_compiler_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(fmu.PipelineError, match="^no C compiler 'no-such-cc' on PATH"):
        fmu.build(EXPORTED / "water.onnx", tmp_path)
    assert not (tmp_path / "water.fmu").exists()
