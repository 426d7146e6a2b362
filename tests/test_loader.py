"""The light loader: numpy + onnxruntime only, input policies, named columns, chunking, integrity."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import data, spec
from pipeline.loader import CHUNK_ROWS, LoaderError, load
from pipeline.runtime import domain

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT / "exported" / "water.onnx"


def test_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; from pipeline.loader import load; "
        "print(load('exported/paraboloid.onnx')([[0.3, 0.4]])[0, 0])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert abs(float(out) - 0.25) < 1e-3


def test_out_of_range_policies():
    card = load(WATER).card
    T, p = (vars(i) for i in card.inputs)
    bounds = card.bounds  # T <= T_sat(p) - 2 K
    # outside the box: T above its max
    X = np.array([[300.0, 1e6], [T["max"] + 80.0, 1e6]])
    with pytest.raises(
        LoaderError,
        match=re.escape(
            f"input 'T' = {T['max'] + 80.0:g} (row 1) is outside its valid range [{T['min']:g}, {T['max']:g}]"
        ),
    ):
        load(WATER)(X)
    clipped = load(WATER, out_of_range="clip")(X)
    onto = domain.clip(bounds, ["T", "p"], np.clip(X, [T["min"], p["min"]], [T["max"], p["max"]]))  # box, then bound
    assert onto[1, 0] < T["max"] and np.allclose(clipped[1], load(WATER)(onto[1:2])[0])
    with pytest.warns(UserWarning, match="1 input row\\(s\\) outside"):
        load(WATER, out_of_range="warn")(X)
    assert np.isfinite(load(WATER, out_of_range="allow")(X)).all()
    with pytest.raises(LoaderError, match="outside its valid range"):
        load(WATER).point(T["max"] + 80.0, 1e6)
    assert np.allclose(load(WATER, out_of_range="clip").point(T["max"] + 80.0, 1e6), clipped[1], rtol=1e-6)
    # inside the box but above the domain bound at 1 MPa
    limit = float(domain.bound_value(bounds[0], [1e6])[0])
    X = np.array([[300.0, 1e6], [limit + 40.0, 1e6]])
    assert T["min"] <= X[1, 0] <= T["max"]
    message = (
        f"T = {limit + 40.0:.6g} K is above {bounds[0]['label']} = {limit:.6g} K at p = 1.0000e+06 Pa (row 1), "
        f"outside the model's domain; 1 row(s) out of range"
    )
    with pytest.raises(LoaderError, match=re.escape(message)):
        load(WATER)(X)
    with pytest.raises(LoaderError, match=re.escape(message.split(" (row")[0])):
        load(WATER).point(*X[1])
    clipped = load(WATER, out_of_range="clip")(X)
    assert np.allclose(clipped[1], load(WATER)([[limit, 1e6]])[0])
    assert np.allclose(load(WATER, out_of_range="clip").point(*X[1]), clipped[1], rtol=1e-6)
    with pytest.warns(UserWarning, match="1 input row\\(s\\) outside the valid range or domain"):
        load(WATER, out_of_range="warn")(X)


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
