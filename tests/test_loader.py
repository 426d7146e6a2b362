"""The light loader: numpy + onnxruntime only, input policies, named columns, chunking, integrity."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import data, spec
from pipeline.loader import CHUNK_ROWS, LoaderError, load

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "exported" / "water.onnx"


def test_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; from pipeline.loader import load; "
            "print(load('exported/paraboloid.onnx')([[0.3, 0.4]])[0, 0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert abs(float(out) - 0.25) < 1e-3


def test_out_of_range_policies():
    X = np.array([[300.0, 1e6], [500.0, 1e6]])
    with pytest.raises(LoaderError, match="input 'T' = 500 \\(row 1\\) is outside its valid range \\[275, 420\\]"):
        load(WATER)(X)
    clipped = load(WATER, out_of_range="clip")(X)
    assert np.allclose(clipped[1], load(WATER)([[420.0, 1e6]])[0])
    with pytest.warns(UserWarning, match="1 input row\\(s\\) outside"):
        load(WATER, out_of_range="warn")(X)
    assert np.isfinite(load(WATER, out_of_range="allow")(X)).all()
    with pytest.raises(LoaderError, match="outside its valid range"):
        load(WATER).point(500.0, 1e6)
    assert np.allclose(load(WATER, out_of_range="clip").point(500.0, 1e6), clipped[1], rtol=1e-6)


def test_nonfinite_policies():
    X = np.array([[300.0, 1e6], [np.nan, 1e6]])
    with pytest.raises(LoaderError, match="1 input row\\(s\\) with NaN or inf \\(first: row 1"):
        load(WATER)(X)
    Y = load(WATER, nonfinite="nan")(X)
    assert np.isfinite(Y[0]).all() and np.isnan(Y[1]).all()
    with pytest.raises(LoaderError, match="out_of_range must be one of"):
        load(WATER, out_of_range="ignore")


def test_named_columns_scalars_and_dtypes():
    f = load(WATER)
    out = f.named(T=np.array([300.0, 350.0]), p=1e6)
    assert set(out) == {"rho", "mu", "k", "cp"} and out["rho"].shape == (2,)
    assert np.allclose(out["rho"][0], f([[300.0, 1e6]])[0, 0])
    assert np.allclose(f.point(300.0, 1e6), f([[300.0, 1e6]])[0], rtol=1e-6)
    assert f(np.array([[300.0, 1e6]], dtype=np.float32)).dtype == np.float32
    assert f([[300.0, 1e6]]).dtype == np.float64
    with pytest.raises(LoaderError, match="missing \\['p'\\]"):
        f.named(T=300.0)
    with pytest.raises(LoaderError, match="expected inputs of shape \\(N, 2\\)"):
        f(np.zeros((3, 3)))


def test_chunked_batches_equal_one_call():
    s = spec.load("water")
    X = data.sample(s, 3 * CHUNK_ROWS + 17, "uniform", 0)
    f = load(WATER)
    whole = f.session.run(["y"], {"x": X.astype(np.float32)})[0]
    assert np.array_equal(f(X.astype(np.float32)), whole)


def test_sha_mismatch_is_refused(tmp_path):
    shutil.copy(WATER, tmp_path / "water.onnx")
    card = (ROOT / "exported" / "water.json").read_text()
    (tmp_path / "water.json").write_text(card.replace('"onnx_sha256": "', '"onnx_sha256": "0'))
    with pytest.raises(LoaderError, match="does not match its card"):
        load(tmp_path / "water.onnx")
