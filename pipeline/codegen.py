"""Exported ONNX model -> dependency-free C99 (header + source) or a Fortran 2008 module, for solvers to compile in.

    python -m pipeline codegen NAME --lang c|fortran [--out generated/]

The code is generated from the .onnx file, not from the checkpoint, so it computes what ships. Each graph value is
a per-sample vector; the generator walks the nodes in order and emits one loop per node. Supported operators
(everything the exporter emits for our networks): Gemm, Tanh, Sigmoid, Relu, Log, Exp, and Add/Sub/Mul/Div of a
value and a value or constant. Anything else is refused with the operator's name.

Entry points, in double precision (C shown; Fortran has the same, with `x(n_inputs, n)` column-major batches):

    int NAME_eval(const double x[NAME_N_INPUTS], double y[NAME_N_OUTPUTS]);
    int NAME_eval_batch(size_t n, const double *x, double *y);   /* row-major n x N_INPUTS -> n x N_OUTPUTS */

They return NAME_OK (0), NAME_ERR_NONFINITE (1) for a NaN or infinite input, or NAME_ERR_RANGE (2) for an input
outside the card's valid range; a failing row's outputs are set to NaN (the batch returns the first error and goes
on with the other rows).

The C computes in float with the model's float32 weights, as onnxruntime does (the Fortran in double). tanh is a
rational approximation (the 13/6 minimax form used by Eigen and XNNPACK, clamped at |x| = 9; absolute error
< 3e-8 in double), because libm's tanh dominates the cost of a small network. eval_batch runs BLOCK samples at a
time with the samples in the innermost loops, so the compiler's SIMD lanes each carry one sample. Agreement with onnxruntime
is tested on 10,000 random in-domain inputs per shipped surrogate: |c - ort| <= 1e-5 |ort| + 1e-6 max|ort|.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from .files import atomic_write
from .loader import CARD_KEY
from .spec import PipelineError

UNARY = {"Tanh": "tanh_fast({})", "Sigmoid": "1.0f / (1.0f + expf(-{}))", "Relu": "({0} > 0.0f ? {0} : 0.0f)",
         "Log": "logf({})", "Exp": "expf({})"}
UNARY_F = {"Tanh": "tanh_fast({})", "Sigmoid": "1.0_dp / (1.0_dp + exp(-{}))", "Relu": "max({}, 0.0_dp)",
           "Log": "log({})", "Exp": "exp({})"}
BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
RTOL, ATOL_FRACTION = 1e-5, 1e-6  # agreement with onnxruntime: |c - ort| <= RTOL |ort| + ATOL_FRACTION max|ort|
TANH_A = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05, 5.12229709037114e-08,
          -8.60467152213735e-11, 2.00018790482477e-13, -2.76076847742355e-16)
TANH_B = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


@dataclass
class Step:
    """One node as the generators see it: an operator on per-sample vectors."""
    op: str
    out: str
    size: int
    args: list[str]
    """value names, or constant names (see Graph.constants)"""


@dataclass
class Graph:
    name: str
    input: str
    """the graph input's value name (the per-sample input vector)"""
    n_in: int
    n_out: int
    steps: list[Step]
    constants: dict[str, np.ndarray]
    """Gemm weights stored [in][out] (so the inner loop runs over outputs), biases and elementwise constants"""
    lo: list[float]
    hi: list[float]
    card: dict
    sha256: str


def read_graph(path: Path) -> Graph:
    """Parse an exported model into steps; refuses operators and forms the generators do not handle."""
    blob = Path(path).read_bytes()
    model = shape_inference.infer_shapes(onnx.load_from_string(blob))
    meta = {p.key: p.value for p in model.metadata_props}
    if CARD_KEY not in meta:
        raise PipelineError(f"{path}: no '{CARD_KEY}' metadata: not exported by this pipeline")
    card = json.loads(meta[CARD_KEY])
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    sizes = {v.name: v.type.tensor_type.shape.dim[-1].dim_value for v in (*g.input, *g.output, *g.value_info)}
    constants: dict[str, np.ndarray] = {}
    steps: list[Step] = []

    def operand(name: str, size: int) -> str:
        """A binary op's argument: constants are broadcast to the vector's size and stored."""
        if name in inits:
            constants.setdefault(name, np.broadcast_to(inits[name].reshape(-1), (size,)).copy())
        return name

    for node in g.node:
        size = sizes.get(node.output[0], 0)
        if node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise PipelineError(f"{path}: Gemm with transA/alpha/beta other than 0/1/1 is not supported")
            W = inits[node.input[1]]
            W = W.T if attrs.get("transB", 0) else W      # -> [in][out]
            constants[node.input[1]] = W
            bias = node.input[2] if len(node.input) > 2 else None
            if bias:
                constants[bias] = np.broadcast_to(inits[bias].reshape(-1), (W.shape[1],)).copy()
            steps.append(Step("Gemm", node.output[0], W.shape[1], [node.input[0], node.input[1], bias or ""]))
        elif node.op_type in UNARY:
            steps.append(Step(node.op_type, node.output[0], size, [node.input[0]]))
        elif node.op_type in BINARY:
            steps.append(Step(node.op_type, node.output[0], size, [operand(i, size) for i in node.input]))
        else:
            raise PipelineError(f"{path}: operator {node.op_type} (node {node.name}) is not supported by codegen; "
                                f"supported: Gemm, {', '.join([*UNARY, *BINARY])}")
    if len(card["inputs"]) != sizes[g.input[0].name]:
        raise PipelineError(f"{path}: the card names {len(card['inputs'])} inputs, the graph takes "
                            f"{sizes[g.input[0].name]}")
    return Graph(card["name"], g.input[0].name, sizes[g.input[0].name], sizes[g.output[0].name], steps, constants,
                 [v["min"] for v in card["inputs"]], [v["max"] for v in card["inputs"]], card,
                 hashlib.sha256(blob).hexdigest())


def ident(name: str) -> str:
    """A C/Fortran identifier for an ONNX value name."""
    return "v_" + "".join(c if c.isalnum() else "_" for c in name)


def _num(v: float) -> str:
    return repr(float(v))


# --- C --------------------------------------------------------------------------------------------------------------

BLOCK = 16  # samples per block in eval_batch: one AVX-512 register of floats, two of AVX2


def _float(v: float) -> str:
    """A C float literal that round-trips the float32 value (the ONNX weights are float32)."""
    return f"{float(np.float32(v)):.9e}f"


def _c_steps(graph: Graph, block: bool) -> tuple[list[str], list[str]]:
    """Declarations and loops for the graph's steps, per sample (`v[j]`) or per block of samples (`v[j][b]`)."""
    def at(name: str, i: str = "j") -> str:
        if name in graph.constants or not block:
            return f"{ident(name)}[{i}]"
        return f"{ident(name)}[{i}][b]"

    def loop(size: int, statement: str) -> str:
        inner = f"for (b = 0; b < BLOCK; ++b) {statement}" if block else statement
        return f"    for (j = 0; j < {size}; ++j) {inner}"

    per = "[BLOCK]" if block else ""
    decls = sorted({f"float {ident(s.out)}[{s.size}]{per};" for s in graph.steps})
    body = []
    for s in graph.steps:
        if s.op == "Gemm":
            src, W, bias = s.args
            rows, init = graph.constants[W].shape[0], f"{ident(bias)}[j]" if bias else "0.0f"
            weight = f"{ident(W)}[k * {s.size} + j]"
            if block:  # per neuron, a row of BLOCK sums stays in registers while k runs over the inputs
                body.append(f"    for (j = 0; j < {s.size}; ++j) {{\n"
                            f"        for (b = 0; b < BLOCK; ++b) {at(s.out)} = {init};\n"
                            f"        for (k = 0; k < {rows}; ++k) {{\n"
                            f"            const float w = {weight};\n"
                            f"            for (b = 0; b < BLOCK; ++b) {at(s.out)} += {at(src, 'k')} * w;\n"
                            f"        }}\n    }}")
            else:  # one dot product per neuron in a local sum: gcc vectorizes across neurons, sums stay in registers
                body.append(f"    for (j = 0; j < {s.size}; ++j) {{\n        float acc = {init};\n"
                            f"        for (k = 0; k < {rows}; ++k) acc += {at(src, 'k')} * {weight};\n"
                            f"        {at(s.out)} = acc;\n    }}")
        elif s.op in UNARY:
            body.append(loop(s.size, f"{at(s.out)} = {UNARY[s.op].format(at(s.args[0]))};"))
        else:
            body.append(loop(s.size, f"{at(s.out)} = {at(s.args[0])} {BINARY[s.op]} {at(s.args[1])};"))
    return decls, body


def c_code(graph: Graph) -> tuple[str, str]:
    """(header, source) of the C99 implementation."""
    n, N = graph.name, graph.name.upper()
    card = graph.card
    doc = "\n".join(f" *   x[{k}] {i['name']} [{i['unit']}] in [{i['min']:g}, {i['max']:g}]"
                    for k, i in enumerate(card["inputs"]))
    doc += "\n" + "\n".join(f" *   y[{k}] {o['name']} [{o['unit']}]" for k, o in enumerate(card["outputs"]))
    header = f"""/* {n}: {card['description']}
 * Generated by `python -m pipeline codegen {n} --lang c` from {n}.onnx (sha256 {graph.sha256}).
 * Dependency-free C99; link with -lm. Inputs and outputs are double; the network computes in float, with the
 * float32 weights of the ONNX model, as onnxruntime does.
{doc}
 */
#ifndef {N}_H
#define {N}_H
#include <stddef.h>

#define {N}_N_INPUTS {graph.n_in}
#define {N}_N_OUTPUTS {graph.n_out}
#define {N}_OK 0
#define {N}_ERR_NONFINITE 1
#define {N}_ERR_RANGE 2

/* One sample: x[{N}_N_INPUTS] in physical units -> y[{N}_N_OUTPUTS]. Returns {N}_OK or an error code. */
int {n}_eval(const double *x, double *y);
/* n samples, row-major: x[n][{N}_N_INPUTS] -> y[n][{N}_N_OUTPUTS]. Returns the first error code, or {N}_OK. */
int {n}_eval_batch(size_t n, const double *x, double *y);

#endif
"""
    consts = [f"static const float {ident(name)}[{value.size}] = {{{', '.join(_float(v) for v in value.reshape(-1))}}};"
              for name, value in graph.constants.items()]
    lo = ", ".join(_num(v) for v in graph.lo)
    hi = ", ".join(_num(v) for v in graph.hi)
    decls, body = _c_steps(graph, block=False)
    block_decls, block_body = _c_steps(graph, block=True)
    x, last = ident(graph.input), ident(graph.steps[-1].out)
    alpha = ", ".join(_float(a) for a in TANH_A)
    beta = ", ".join(_float(b) for b in TANH_B)
    nl = "\n"
    source = f"""/* Generated by `python -m pipeline codegen {n} --lang c` from {n}.onnx (sha256 {graph.sha256}). */
#include "{n}.h"
#include <math.h>

{nl.join(consts)}
static const double lo[{graph.n_in}] = {{{lo}}};
static const double hi[{graph.n_in}] = {{{hi}}};
static const float ta[7] = {{{alpha}}};
static const float tb[4] = {{{beta}}};

/* tanh as a 13/6 rational function on [-9, 9] (a few float ulps); branch-free so the loops vectorize. */
static float tanh_fast(float x)
{{
    const float c = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
    const float c2 = c * c, c4 = c2 * c2, c8 = c4 * c4;
    /* Estrin's scheme: the same polynomials as Horner's, with a dependency chain half as long */
    const float p = c * ((ta[0] + c2 * ta[1]) + c4 * (ta[2] + c2 * ta[3]) + c8 * ((ta[4] + c2 * ta[5]) + c4 * ta[6]));
    const float q = (tb[0] + c2 * tb[1]) + c4 * (tb[2] + c2 * tb[3]);
    return p / q;
}}

static int check(const double *x)
{{
    int k;
    for (k = 0; k < {graph.n_in}; ++k) {{
        if (!isfinite(x[k])) return {N}_ERR_NONFINITE;
        if (x[k] < lo[k] || x[k] > hi[k]) return {N}_ERR_RANGE;
    }}
    return {N}_OK;
}}

/* One sample: each value is a vector over a layer's neurons. */
static void forward(const double *x, double *y)
{{
    int j, k;
    float {x}[{graph.n_in}];
    {(nl + '    ').join(decls)}
    for (k = 0; k < {graph.n_in}; ++k) {x}[k] = (float)x[k];
{nl.join(body)}
    for (j = 0; j < {graph.n_out}; ++j) y[j] = {last}[j];
}}

/* BLOCK samples at once: each value is [neurons][BLOCK], and the innermost loops run across the samples, so
   every multiply-add and tanh fills a SIMD register instead of waiting on a dependent chain. */
#define BLOCK {BLOCK}
static void forward_block(const double *x, double *y)
{{
    int b, j, k;
    float {x}[{graph.n_in}][BLOCK];
    {(nl + '    ').join(block_decls)}
    for (b = 0; b < BLOCK; ++b)
        for (k = 0; k < {graph.n_in}; ++k) {x}[k][b] = (float)x[b * {graph.n_in} + k];
{nl.join(block_body)}
    for (b = 0; b < BLOCK; ++b)
        for (j = 0; j < {graph.n_out}; ++j) y[b * {graph.n_out} + j] = {last}[j][b];
}}

int {n}_eval(const double *x, double *y)
{{
    int j;
    const int status = check(x);
    if (status != {N}_OK) {{
        for (j = 0; j < {graph.n_out}; ++j) y[j] = NAN;
        return status;
    }}
    forward(x, y);
    return {N}_OK;
}}

int {n}_eval_batch(size_t n, const double *x, double *y)
{{
    size_t i = 0, r;
    int first = {N}_OK;
    while (i < n) {{
        const size_t m = n - i < BLOCK ? n - i : BLOCK;
        int valid = m == BLOCK;
        for (r = 0; r < m && valid; ++r) valid = check(x + (i + r) * {graph.n_in}) == {N}_OK;
        if (valid) {{
            forward_block(x + i * {graph.n_in}, y + i * {graph.n_out});
        }} else {{  /* a short tail, or a block with a bad row: one sample at a time */
            for (r = 0; r < m; ++r) {{
                const int status = {n}_eval(x + (i + r) * {graph.n_in}, y + (i + r) * {graph.n_out});
                if (status != {N}_OK && first == {N}_OK) first = status;
            }}
        }}
        i += m;
    }}
    return first;
}}
"""
    return header, source


# --- Fortran -------------------------------------------------------------------------------------------------------

def _f_array(name: str, value: np.ndarray) -> str:
    """A Fortran parameter array; C-order [in][out] data become W(out, in) in column-major, same memory order.

    Long arrays are built from parts of at most 128 values: a statement may have only 255 continuation lines.
    """
    items = [f"{v!r}_dp" for v in value.reshape(-1).astype(float).tolist()]
    parts, decls = [], []
    for p, start in enumerate(range(0, len(items), 128)):
        chunk = items[start:start + 128]
        lines = ", &\n        ".join(", ".join(chunk[i:i + 4]) for i in range(0, len(chunk), 4))
        parts.append(f"{ident(name)}_{p}")
        decls.append(f"  real(dp), parameter :: {parts[-1]}({len(chunk)}) = [ &\n        {lines}]")
    joined = ", ".join(parts)
    if value.ndim == 2:
        rows, cols = value.shape
        decls.append(f"  real(dp), parameter :: {ident(name)}({cols}, {rows}) = reshape([{joined}], [{cols}, {rows}])")
    else:
        decls.append(f"  real(dp), parameter :: {ident(name)}({value.size}) = [{joined}]")
    return "\n".join(decls)


def fortran_code(graph: Graph) -> str:
    n = graph.name
    card = graph.card
    doc = "\n".join(f"  !   x({k + 1}) {i['name']} [{i['unit']}] in [{i['min']:g}, {i['max']:g}]"
                    for k, i in enumerate(card["inputs"]))
    doc += "\n" + "\n".join(f"  !   y({k + 1}) {o['name']} [{o['unit']}]" for k, o in enumerate(card["outputs"]))
    consts = "\n".join(_f_array(name, v) for name, v in graph.constants.items())
    decls = "\n".join(sorted({f"    real(dp) :: {ident(s.out)}({s.size})" for s in graph.steps}))
    body = []
    for s in graph.steps:
        out = ident(s.out)
        if s.op == "Gemm":
            src, W, b = s.args
            body.append(f"    {out} = {ident(b) if b else '0.0_dp'}")
            body.append(f"    do k = 1, {graph.constants[W].shape[0]}\n"
                        f"      {out} = {out} + {ident(src)}(k) * {ident(W)}(:, k)\n    end do")
        elif s.op in UNARY:
            if s.op == "Tanh":
                body.append(f"    do j = 1, {s.size}\n      {out}(j) = tanh_fast({ident(s.args[0])}(j))\n    end do")
            else:
                body.append(f"    {out} = {UNARY_F[s.op].format(ident(s.args[0]))}")
        else:
            body.append(f"    {out} = {ident(s.args[0])} {BINARY[s.op]} {ident(s.args[1])}")
    last = ident(graph.steps[-1].out)
    tables = "\n".join(_f_array(name, np.array(v, dtype=float)) for name, v in
                        (("lo", graph.lo), ("hi", graph.hi), ("ta", TANH_A), ("tb", TANH_B)))
    return f"""! {n}: {card['description']}
! Generated by `python -m pipeline codegen {n} --lang fortran` from {n}.onnx (sha256 {graph.sha256}).
! Fortran 2008, no dependencies.
module {n}_surrogate
  use, intrinsic :: iso_fortran_env, only: dp => real64
  use, intrinsic :: ieee_arithmetic, only: ieee_is_finite, ieee_value, ieee_quiet_nan
  implicit none
  private
  public :: {n}_eval, {n}_eval_batch
  integer, parameter, public :: {n}_n_inputs = {graph.n_in}, {n}_n_outputs = {graph.n_out}
  integer, parameter, public :: {n}_ok = 0, {n}_err_nonfinite = 1, {n}_err_range = 2
  ! Inputs and outputs, physical units:
{doc}
{consts}
{tables}

contains

  ! tanh as a 13/6 rational function on [-9, 9] (|error| < 3e-8), the same as the generated C.
  elemental function tanh_fast(x) result(t)
    real(dp), intent(in) :: x
    real(dp) :: t, c, c2
    c = min(max(x, -9.0_dp), 9.0_dp)
    c2 = c * c
    t = c * (v_ta(1) + c2 * (v_ta(2) + c2 * (v_ta(3) + c2 * (v_ta(4) + c2 * (v_ta(5) + c2 * (v_ta(6) &
        + c2 * v_ta(7))))))) / (v_tb(1) + c2 * (v_tb(2) + c2 * (v_tb(3) + c2 * v_tb(4))))
  end function tanh_fast

  ! One sample: x({n}_n_inputs) -> y({n}_n_outputs); returns {n}_ok or an error code (y set to NaN).
  function {n}_eval(x, y) result(status)
    real(dp), intent(in) :: x({graph.n_in})
    real(dp), intent(out) :: y({graph.n_out})
    integer :: status
    if (.not. all(ieee_is_finite(x))) then
      status = {n}_err_nonfinite
    else if (any(x < v_lo) .or. any(x > v_hi)) then
      status = {n}_err_range
    else
      status = {n}_ok
    end if
    if (status /= {n}_ok) then
      y = ieee_value(0.0_dp, ieee_quiet_nan)
      return
    end if
    call forward(x, y)
  end function {n}_eval

  ! n samples, one per column: x({n}_n_inputs, n) -> y({n}_n_outputs, n); returns the first error code.
  function {n}_eval_batch(n, x, y) result(status)
    integer, intent(in) :: n
    real(dp), intent(in) :: x({graph.n_in}, n)
    real(dp), intent(out) :: y({graph.n_out}, n)
    integer :: status, i, s
    status = {n}_ok
    do i = 1, n
      s = {n}_eval(x(:, i), y(:, i))
      if (s /= {n}_ok .and. status == {n}_ok) status = s
    end do
  end function {n}_eval_batch

  pure subroutine forward({ident(graph.input)}, y)
    real(dp), intent(in) :: {ident(graph.input)}({graph.n_in})
    real(dp), intent(out) :: y({graph.n_out})
{decls}
    integer :: j, k
{chr(10).join(body)}
    y = {last}
    j = 0
    k = 0
  end subroutine forward

end module {n}_surrogate
"""


def generate(model_path: Path, lang: str, out_dir: Path) -> list[Path]:
    """Write the generated files for one exported model; returns their paths."""
    graph = read_graph(model_path)
    if lang == "c":
        header, source = c_code(graph)
        files = {out_dir / f"{graph.name}.h": header, out_dir / f"{graph.name}.c": source}
    elif lang == "fortran":
        files = {out_dir / f"{graph.name}_surrogate.f90": fortran_code(graph)}
    else:
        raise PipelineError(f"--lang must be c or fortran, got {lang!r}")
    for path, text in files.items():
        atomic_write(path, text.encode())
    return list(files)
