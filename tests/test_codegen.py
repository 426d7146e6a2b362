"""Generated C and Fortran: compiled with real compilers, matched against onnxruntime on 10,000 inputs each."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from pipeline import codegen, data, spec
from pipeline.loader import CARD_KEY, load
from pipeline.spec import PipelineError

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"
RTOL, ATOL_FRACTION = codegen.RTOL, codegen.ATOL_FRACTION
GFORTRAN = shutil.which("gfortran")
needs_gfortran = pytest.mark.skipif(GFORTRAN is None, reason="gfortran is not installed (.ci/run installs it; "
                                    "on Debian: apt-get install gfortran)")

C_DRIVER = """#include <stdio.h>
#include "{n}.h"
int main(void) {{
    long n, i; int k;
    double x[{N}_N_INPUTS], y[{N}_N_OUTPUTS];
    if (scanf("%ld", &n) != 1) return 3;
    for (i = 0; i < n; ++i) {{
        for (k = 0; k < {N}_N_INPUTS; ++k) if (scanf("%lf", &x[k]) != 1) return 3;
        printf("%d", {n}_eval(x, y));
        for (k = 0; k < {N}_N_OUTPUTS; ++k) printf(" %.17g", y[k]);
        printf("\\n");
    }}
    return 0;
}}
"""

C_BATCH_DRIVER = """#include <stdio.h>
#include <stdlib.h>
#include "{n}.h"
int main(void) {{
    long n, i; int k;
    double *x, *y;
    if (scanf("%ld", &n) != 1) return 3;
    x = malloc(sizeof(double) * n * {N}_N_INPUTS);
    y = malloc(sizeof(double) * n * {N}_N_OUTPUTS);
    for (i = 0; i < n * {N}_N_INPUTS; ++i) if (scanf("%lf", &x[i]) != 1) return 3;
    printf("%d\\n", {n}_eval_batch((size_t)n, x, y));
    for (i = 0; i < n; ++i) {{
        for (k = 0; k < {N}_N_OUTPUTS; ++k) printf("%.17g ", y[i * {N}_N_OUTPUTS + k]);
        printf("\\n");
    }}
    return 0;
}}
"""

F_DRIVER = """program driver
  use, intrinsic :: iso_fortran_env, only: dp => real64
  use {n}_surrogate
  implicit none
  integer :: n, i, status
  real(dp) :: x({n}_n_inputs), y({n}_n_outputs)
  read (*, *) n
  do i = 1, n
    read (*, *) x
    status = {n}_eval(x, y)
    write (*, '(i0, *(1x, es25.17e3))') status, y
  end do
end program driver
"""


def build_and_run(name: str, lang: str, X: np.ndarray, tmp: Path, exported: Path = EXPORTED):
    """Generate, compile and run a driver over X; returns (status codes, outputs)."""
    codegen.generate(exported / f"{name}.onnx", lang, tmp)
    exe = tmp / f"{name}_{lang}"
    if lang == "c":
        (tmp / "driver.c").write_text(C_DRIVER.format(n=name, N=name.upper()))
        cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-I", str(tmp),
               str(tmp / f"{name}.c"), str(tmp / "driver.c"), "-lm", "-o", str(exe)]
    else:
        (tmp / "driver.f90").write_text(F_DRIVER.format(n=name))
        cmd = [GFORTRAN, "-std=f2008", "-Wall", "-Wextra", "-Werror", "-O2", "-J", str(tmp),
               str(tmp / f"{name}_surrogate.f90"), str(tmp / "driver.f90"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    stdin = f"{len(X)}\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in X) + "\n"
    out = subprocess.run([str(exe)], input=stdin, check=True, capture_output=True, text=True).stdout
    table = np.array([line.split() for line in out.splitlines()], dtype=float)
    return table[:, 0].astype(int), table[:, 1:]


@pytest.mark.parametrize("lang", ["c", pytest.param("fortran", marks=needs_gfortran)])
@pytest.mark.parametrize("name", spec.available())
def test_generated_code_matches_onnxruntime(name, lang, tmp_path):
    s = spec.load(name)
    X = data.sample(s, 10_000, "uniform", seed=2024)
    status, Y = build_and_run(name, lang, X, tmp_path)
    ref = load(EXPORTED / f"{name}.onnx")(X.astype(np.float32)).astype(np.float64)
    assert (status == 0).all()
    allowed = RTOL * np.abs(ref) + ATOL_FRACTION * np.abs(ref).max(axis=0)
    worst = np.max(np.abs(Y - ref) / allowed)
    assert worst <= 1.0, f"{name} {lang}: {worst:.2f}x the tolerance"


@pytest.mark.parametrize("lang", ["c", pytest.param("fortran", marks=needs_gfortran)])
def test_error_codes(lang, tmp_path):
    s = spec.load("colebrook")
    X = np.array([[1e5, 1e-4], [np.nan, 1e-4], [1e5, np.inf], [1e3, 1e-4], [1e5, 0.1], [4e3, 1e-6]])
    status, Y = build_and_run("colebrook", lang, X, tmp_path)
    assert status.tolist() == [0, 1, 1, 2, 2, 0]
    assert np.isnan(Y[1:5]).all() and np.isfinite(Y[[0, 5]]).all()
    assert abs(Y[0, 0] / data.evaluate(s, X[:1])[0, 0] - 1) < 5e-4


def test_c_header_documents_the_interface(tmp_path):
    header = codegen.generate(EXPORTED / "water.onnx", "c", tmp_path)[0].read_text()
    assert "int water_eval(const double *x, double *y);" in header
    assert "x[0] T [K] in [275, 420]" in header and "y[1] mu [Pa s]" in header
    assert "#define WATER_ERR_RANGE 2" in header


def test_unsupported_operator_is_named(tmp_path):
    graph = helper.make_graph([helper.make_node("Cos", ["x"], ["y"], name="cosine")], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {CARD_KEY: '{"name": "c", "inputs": [{"name": "x", "min": 0, "max": 1}]}'})
    path = tmp_path / "c.onnx"
    onnx.save(model, path)
    with pytest.raises(PipelineError, match="operator Cos \\(node cosine\\) is not supported by codegen"):
        codegen.generate(path, "c", tmp_path)


def test_mixed_log_and_linear_columns(cli, write_spec, tmp_path):
    """A graph with masked Log/Exp (Mul/Add with constants) generates code that matches onnxruntime too."""
    from tests.conftest import PARABOLOID
    text = PARABOLOID.replace('min = 0.0\nmax = 1.0', 'min = 1.0\nmax = 100.0\nscale = "log"', 1)
    text = text.replace('unit = "1"\n\n[sampling]', 'unit = "1"\ntransform = "log"\n\n[sampling]')
    path = write_spec(text.format(name="mixed", steps=30, rmse=1e9, max_abs=1e9))
    assert cli("train", path)[0] == 0 and cli("export", path)[0] == 0
    out = tmp_path / "exported"
    assert "Mul" in {n.op_type for n in onnx.load(out / "mixed.onnx").graph.node}
    X = data.sample(spec.load(path), 2000, "uniform", seed=1)
    status, Y = build_and_run("mixed", "c", X, tmp_path / "gen", exported=out)
    ref = load(out / "mixed.onnx")(X)
    assert (status == 0).all() and np.allclose(Y, ref, rtol=RTOL, atol=ATOL_FRACTION * np.abs(ref).max())


def test_c_batch_equals_single_calls(tmp_path):
    """eval_batch runs blocks of samples through a separate code path: it must agree with eval, row by row,
    including a block that holds a bad row and a tail shorter than a block."""
    s = spec.load("water")
    X = data.sample(s, 8 * 40 + 5, "uniform", seed=3)
    X[17, 0] = np.nan     # a non-finite input inside a block
    X[100, 1] = 2e7       # out of range
    status, single = build_and_run("water", "c", X, tmp_path)
    (tmp_path / "batch.c").write_text(C_BATCH_DRIVER.format(n="water", N="WATER"))
    exe = tmp_path / "batch"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I", str(tmp_path),
                    str(tmp_path / "water.c"), str(tmp_path / "batch.c"), "-lm", "-o", str(exe)], check=True)
    stdin = f"{len(X)}\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in X) + "\n"
    lines = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True).stdout.splitlines()
    assert int(lines[0]) == 1  # the first error in row order: the NaN at row 17
    batch = np.array([line.split() for line in lines[1:]], dtype=float)
    assert status[17] == 1 and status[100] == 2
    assert np.isnan(batch[[17, 100]]).all()
    ok = status == 0
    assert np.allclose(batch[ok], single[ok], rtol=1e-12, atol=0)
