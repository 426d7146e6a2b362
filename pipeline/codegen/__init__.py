"""Exported ONNX model -> dependency-free C99 (header + source) or a Fortran 2008 module, for solvers to compile in.

    python -m pipeline codegen NAME --lang c|fortran [--precision float|double] [--dest generated/]

The code is generated from the .onnx file, not from the checkpoint, so it computes what ships; the file is
verified first, as the loader does (verify()): its sha256 against the card file beside it, and the card's name
against the name asked for. Each graph value is a per-sample vector; the generator walks the nodes in order and
emits one loop per node. Supported operators (everything the exporter emits for our networks): Gemm, Tanh,
Sigmoid, Relu, Log, Exp, and Add/Sub/Mul/Div of a value and a value or constant. Anything else is refused with the
operator's name.

Entry points, in double precision (C shown; Fortran has eval, eval_jac and eval_batch, with `x(n_inputs, n)`
column-major batches and `dydx(n_outputs, n_inputs)`):

    int NAME_eval(const double *x, double *y);                      /* one sample */
    int NAME_eval_jac(const double *x, double *y, double *dydx);    /* and dy/dx, row-major [n_outputs][n_inputs] */
    int NAME_eval_batch(size_t n, const double *x, double *y);      /* row-major n x N_INPUTS -> n x N_OUTPUTS */
    int NAME_eval_soa(size_t n, const double *const *x, double *const *y);   /* one array per input and output */

They return NAME_OK (0), NAME_ERR_NONFINITE (1) for a NaN or infinite input, or NAME_ERR_RANGE (2) for an input
outside the card's valid range or beyond one of its domain bounds (card.bounds, pipeline/runtime/domain.py); a failing
row's outputs are set to NaN (the batch returns the first error and goes on with the other rows).

The C computes in float with the model's float32 weights, as onnxruntime does (`--precision double`: in double),
with polynomial exp/log/tanh and GNU C vectors in the batched path: codegen_c.py says how and why. The Fortran
computes in double. Agreement with onnxruntime is tested on 10,000 random in-domain inputs per shipped surrogate,
for -O2, -O3 -march=native and -ffast-math builds: |c - ort| <= 1e-5 |ort| + 1e-6 max|ort|. The Jacobian is
analytic (forward mode through every node, the log transforms and scalings included) and tested against central
differences of the surrogate.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PipelineError
from ..runtime.files import atomic_write
from .c import c_code, c_files
from .fortran import fortran_files
from .graph import ATOL_FRACTION, PRECISIONS, RTOL, UNARY, Graph, Step, read_graph, verify

__all__ = [
    "ATOL_FRACTION",
    "LANGUAGES",
    "PRECISIONS",
    "RTOL",
    "UNARY",
    "Graph",
    "Step",
    "c_code",
    "generate",
    "read_graph",
    "verify",
]


def generate(
    model_path: Path, lang: str, out_dir: Path, precision: str = "float", expected_name: str | None = None
) -> list[Path]:
    """Write the generated files for one exported model (verified first); returns their paths.

    C: NAME.h, NAME.c, NAME-config.cmake (a CMake package) and NAME.pc (pkg-config). Fortran: NAME_surrogate.f90.
    """
    if lang not in LANGUAGES:
        raise PipelineError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    if precision not in PRECISIONS:
        raise PipelineError(f"--precision must be float or double, got {precision!r}")
    graph = read_graph(model_path, expected_name)
    files = {Path(out_dir) / name: text for name, text in LANGUAGES[lang](graph, precision).items()}
    for path, text in files.items():
        atomic_write(path, text.encode())
    return list(files)


LANGUAGES = {"c": c_files, "fortran": fortran_files}
"""codegen languages: name -> fn(graph, precision) -> {file name: text}; `--lang` offers each one"""
