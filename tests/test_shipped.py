"""The committed models in exported/: they match their cards and pass their gates in onnxruntime."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import data, spec
from pipeline.build.verify import gate_report
from pipeline.loader import load

EXPORTED = Path(__file__).resolve().parents[1] / "exported"


@pytest.mark.parametrize("name", spec.available())
def test_shipped_model_matches_card_and_gates(name):
    model_file = EXPORTED / f"{name}.onnx"
    assert model_file.is_file(), f"{model_file} is not committed (run `make export`)"
    card = json.loads(model_file.with_suffix(".json").read_text())
    assert card["onnx_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    s = spec.load(name)
    assert card["spec_sha256"] == hashlib.sha256(json.dumps(s.to_dict(), sort_keys=True).encode()).hexdigest(), (
        f"{name}'s spec changed since its model was exported: run `make train export`"
    )
    f = load(model_file)
    report = gate_report(s, f, data.build(s).sets())
    assert report.passed, report.table()
    assert np.all(np.isfinite(f(data.grid(s))))


@pytest.mark.parametrize("name", spec.available())
def test_shipped_model_runs_in_onnx_reference(name):
    """Portability: the ONNX reference implementation (a second, independent runtime) gives the same outputs."""
    import onnx
    import onnx.reference

    model_file = EXPORTED / f"{name}.onnx"
    X = data.sample(spec.load(name), 500, "uniform", 5).astype(np.float32)
    ref = onnx.reference.ReferenceEvaluator(onnx.load(model_file)).run(None, {"x": X})[0]
    assert np.allclose(ref, load(model_file)(X), rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("name", spec.available())
def test_shipped_model_runs_in_tract(name):
    """Portability: tract (Sonos' Rust inference engine, from PyPI) loads the model with its dynamic batch axis."""
    tract = pytest.importorskip("tract", reason="tract is not installed (it is in requirements.txt)")
    model_file = EXPORTED / f"{name}.onnx"
    runnable = tract.onnx().load(str(model_file)).into_model().into_runnable()
    for n in (1, 7, 500):
        X = data.sample(spec.load(name), n, "uniform", 6).astype(np.float32)
        got = runnable.run([X])[0].to_numpy()
        ref = load(model_file)(X)
        assert got.shape == ref.shape
        assert np.allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
