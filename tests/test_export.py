"""End to end: train on a small budget -> verify -> export -> load in onnxruntime -> compare with the reference."""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import pytest

from pipeline.build import data, spec
from pipeline.cli import EXIT_BAD_INPUT, EXIT_GATES_FAILED
from pipeline.loader import load, make_session, read_card

pytestmark = pytest.mark.slow  # every test trains, verifies and exports a network


@pytest.fixture
def exported(cli, write_spec, tmp_path):
    path = write_spec(name="tiny")
    assert cli("train", path)[0] == 0
    assert cli("verify", path)[0] == 0
    status, out, err = cli("export", path)
    assert status == 0, err
    return path, tmp_path / "exported"


def test_end_to_end(exported):
    spec_path, out = exported
    model_file = out / "tiny.onnx"
    proto = onnx.load(model_file)
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 2
    assert {n.op_type for n in proto.graph.node} <= {"Gemm", "Tanh"}  # scaling folded into the Gemms

    s = spec.load(spec_path)
    X = data.sample(s, 1000, "uniform", 99)
    f = load(model_file)
    Y = f(X)
    assert Y.shape == (1000, 1) and Y.dtype == np.float64
    assert np.max(np.abs(Y - data.evaluate(s, X))) < 1e-2  # the spec's max_abs gate
    for batch in (1, 2, 7, 1000):  # the batch axis is dynamic
        assert f(X[:batch]).shape == (batch, 1)
    assert np.isclose(f.point(*X[0]), Y[0], rtol=1e-6).all()
    ref = onnx.reference.ReferenceEvaluator(proto).run(None, {"x": X.astype(np.float32)})[0]
    assert np.allclose(ref, Y, rtol=1e-5, atol=1e-6)


def test_card_in_file_and_metadata(exported):
    _, out = exported
    card = json.loads((out / "tiny.json").read_text())
    blob = (out / "tiny.onnx").read_bytes()
    assert card["onnx_sha256"] == hashlib.sha256(blob).hexdigest()
    embedded = read_card(make_session(out / "tiny.onnx"))
    assert embedded.to_dict() == {k: v for k, v in card.items() if k != "onnx_sha256"}
    assert card["inputs"][0] == {"name": "x", "unit": "1", "min": 0.0, "max": 1.0, "scale": "linear"}
    assert card["onnx"]["opset"] == 18 and card["onnx"]["dtype"] == "float32"
    assert card["gates"] == {"rmse": 1e-3, "max_abs": 1e-2}
    assert card["achieved"]["grid"]["z"]["max_abs"] <= 1e-2
    assert {"torch", "onnx", "onnxruntime", "numpy"} <= set(card["versions"])
    assert card["parity"]["max_abs_diff_onnxruntime_vs_torch"] < 1e-5


def test_export_is_reproducible(exported, cli):
    """Same spec and seed -> same bytes: export again, and train + export again."""
    spec_path, out = exported
    first = (out / "tiny.onnx").read_bytes()
    assert cli("export", spec_path)[0] == 0
    assert (out / "tiny.onnx").read_bytes() == first
    assert cli("train", spec_path)[0] == 0 and cli("export", spec_path)[0] == 0
    assert (out / "tiny.onnx").read_bytes() == first


def test_failing_model_never_replaces_a_good_one(exported, cli, write_spec):
    spec_path, out = exported
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_spec(name="tiny", rmse=1e-9, max_abs=1e-9, steps=3)  # same name, impossible gates
    assert cli("train", spec_path)[0] == EXIT_GATES_FAILED  # the checkpoint is written all the same
    status, _, err = cli("export", spec_path)
    assert status == EXIT_BAD_INPUT and "fails its gates" in err and "left unchanged" in err
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_report_is_written_beside_the_model(exported):
    _, out = exported
    report = out / "tiny_report"
    assert {"README.md", "loss.png", "parity.png", "error_map.png"} <= {p.name for p in report.iterdir()}
    assert "![Parity on held-out samples](parity.png)" in (report / "README.md").read_text()
    assert (report / "error_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unwritable_output_is_one_line_and_leaves_nothing(cli, write_spec, tmp_path):
    path = write_spec(name="tiny")
    assert cli("train", path)[0] == 0
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    status, _, err = cli("export", path, out=blocker)
    assert status == EXIT_BAD_INPUT and err.startswith("error: cannot write") and err.count("\n") == 1
    assert blocker.read_text().startswith("a file")
    assert not list(tmp_path.glob("**/*.tmp"))


def test_export_of_the_same_model_keeps_the_committed_files(exported, cli, monkeypatch):
    """A retrained model that reproduces the exported one within rounding leaves every file as it was (bytes and
    modification times), and says so; one that differs, or another spec, is written."""
    from pipeline.build import export

    spec_path, out = exported
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    status, text, _ = cli("export", spec_path)
    assert status == 0 and "reproduces" in text and "committed files stay" in text and "wrote" not in text
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before

    monkeypatch.setattr(export, "REPRODUCE_RTOL", -1.0)  # no model is within a negative tolerance
    status, text, _ = cli("export", spec_path)
    assert status == 0 and "wrote" in text and "reproduces" not in text


def test_export_of_another_spec_is_written(exported, cli):
    spec_path, out = exported
    path = Path(spec_path)
    path.write_text(path.read_text().replace('description = "', 'description = "changed: '))
    assert cli("train", spec_path)[0] == 0  # the same weights, under a spec with another sha256
    status, text, _ = cli("export", spec_path)
    assert status == 0 and "wrote" in text and "changed: " in json.loads((out / "tiny.json").read_text())["description"]
