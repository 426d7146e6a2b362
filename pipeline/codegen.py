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
outside the card's valid range or beyond one of its domain bounds (card.bounds, pipeline/domain.py); a failing
row's outputs are set to NaN (the batch returns the first error and goes on with the other rows).

The C computes in float with the model's float32 weights, as onnxruntime does (`--precision double`: in double),
with polynomial exp/log/tanh and GNU C vectors in the batched path: codegen_c.py says how and why. The Fortran
computes in double. Agreement with onnxruntime is tested on 10,000 random in-domain inputs per shipped surrogate,
for -O2, -O3 -march=native and -ffast-math builds: |c - ort| <= 1e-5 |ort| + 1e-6 max|ort|. The Jacobian is
analytic (forward mode through every node, the log transforms and scalings included) and tested against central
differences of the surrogate.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from . import codegen_c, loader
from .card import Card, CardError
from .codegen_c import ident
from .codegen_text import check_name, fortran_comment
from .files import atomic_write
from .loader import CARD_KEY
from .spec import PipelineError

UNARY = ("Tanh", "Sigmoid", "Relu", "Log", "Exp")
UNARY_F = {
    "Tanh": "tanh_fast({})",
    "Sigmoid": "1.0_dp / (1.0_dp + exp(-{}))",
    "Relu": "max({}, 0.0_dp)",
    "Log": "log({})",
    "Exp": "exp({})",
}
BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
RTOL, ATOL_FRACTION = 1e-5, 1e-6  # agreement with onnxruntime: |c - ort| <= RTOL |ort| + ATOL_FRACTION max|ort|
TANH_A, TANH_B = codegen_c.TANH_A, codegen_c.TANH_B
PRECISIONS = ("float", "double")


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
    card: Card
    sha256: str


def verify(path: Path, blob: bytes, card: Card, expected_name: str | None = None) -> None:
    """Refuse a model file that is not the one its card describes, before any code is generated from it.

    The checks the loader makes: the name inside the model's card against the name asked for (or the file's stem),
    so that a renamed model cannot write another surrogate's code; the sha256 of the file against `onnx_sha256` in
    the card file NAME.json beside it (a flipped weight byte, or water.onnx copied over paraboloid.onnx); and, where
    the loader has it (loader.verify_integrity), the digest the model carries inside itself.
    """
    path = Path(path)
    name = card.name
    expected = expected_name or path.stem
    if name != expected:
        raise PipelineError(
            f"{path}: the model inside is '{name}', not '{expected}': refusing to generate its code under another name"
        )
    card_file = path.with_suffix(".json")
    if card_file.is_file():
        try:
            recorded = json.loads(card_file.read_text()).get("onnx_sha256")
        except (ValueError, AttributeError):
            raise PipelineError(f"{card_file}: not a valid card file (JSON)") from None
        actual = hashlib.sha256(blob).hexdigest()
        if recorded != actual:
            raise PipelineError(
                f"{path.name}: sha256 {actual[:12]}... does not match its card {card_file.name} "
                f"({str(recorded)[:12]}...): the model and card are out of step"
            )
    integrity = getattr(loader, "verify_integrity", None)
    if integrity is not None:  # the bytes checked are the bytes the code is generated from
        try:
            integrity(blob, expected)
        except loader.LoaderError as e:
            raise PipelineError(f"{path}: {e}") from None


def _check_numbers(path: Path, card: Card) -> None:
    """Numbers from the card become C and Fortran literals: each must be a finite number (inf or NaN would be
    written as an undefined name), and each range must not be empty."""
    try:
        for i in card.inputs:
            lo, hi = float(i.min), float(i.max)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"input '{i.name}' has the range [{lo}, {hi}]")
        for b in card.bounds:
            tab = b["table"]
            values = np.asarray(tab["values"], dtype=float)
            lo, hi = float(tab["lo"]), float(tab["hi"])
            usable = len(values) >= 2 and np.isfinite(values).all() and lo < hi and tab["scale"] in ("log", "linear")
            if not usable or (tab["scale"] == "log" and lo <= 0):
                raise ValueError(f"the domain bound on '{b.get('input')}' has a table that is not usable")
    except (KeyError, TypeError, ValueError) as e:
        raise PipelineError(f"{path}: the model card cannot be turned into code: {e}") from None


def read_graph(path: Path, expected_name: str | None = None) -> Graph:
    """Parse an exported model into steps, after verify(); refuses operators and forms the generators do not
    handle, and files that are not ONNX models, with one line."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the model: {e.strerror}") from None
    try:
        model = onnx.load_from_string(blob)
        meta = {p.key: p.value for p in model.metadata_props}
        if CARD_KEY not in meta:
            raise PipelineError(f"{path}: no '{CARD_KEY}' metadata: not exported by this pipeline")
        card = Card.from_dict(json.loads(meta[CARD_KEY]), str(path))
        model = shape_inference.infer_shapes(model)
    except PipelineError:
        raise
    except CardError as e:
        raise PipelineError(str(e)) from None
    except Exception as e:  # protobuf's DecodeError, a truncated file, JSON errors: one line, not a traceback
        raise PipelineError(
            f"{path}: not a readable ONNX model ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'truncated or corrupt'})"
        ) from None
    verify(path, blob, card, expected_name)
    check_name(card.name)
    _check_numbers(path, card)
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
            W = W.T if attrs.get("transB", 0) else W  # -> [in][out]
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
            raise PipelineError(
                f"{path}: operator {node.op_type} (node {node.name}) is not supported by codegen; "
                f"supported: Gemm, {', '.join([*UNARY, *BINARY])}"
            )
    if len(card.inputs) != sizes[g.input[0].name]:
        raise PipelineError(
            f"{path}: the card names {len(card.inputs)} inputs, the graph takes {sizes[g.input[0].name]}"
        )
    return Graph(
        card.name,
        g.input[0].name,
        sizes[g.input[0].name],
        sizes[g.output[0].name],
        steps,
        constants,
        [v.min for v in card.inputs],
        [v.max for v in card.inputs],
        card,
        hashlib.sha256(blob).hexdigest(),
    )


def _num(v: float) -> str:
    return repr(float(v))


# --- Fortran -------------------------------------------------------------------------------------------------------


def _f_array(name: str, value: np.ndarray) -> str:
    """A Fortran parameter array; C-order [in][out] data become W(out, in) in column-major, same memory order.

    Long arrays are built from parts of at most 128 values: a statement may have only 255 continuation lines.
    """
    items = [f"{v!r}_dp" for v in value.reshape(-1).astype(float).tolist()]
    parts, decls = [], []
    for p, start in enumerate(range(0, len(items), 128)):
        chunk = items[start : start + 128]
        lines = ", &\n        ".join(", ".join(chunk[i : i + 4]) for i in range(0, len(chunk), 4))
        parts.append(f"{ident(name)}_{p}")
        decls.append(f"  real(dp), parameter :: {parts[-1]}({len(chunk)}) = [ &\n        {lines}]")
    joined = ", &\n        ".join(parts)  # one part a line: free-form Fortran lines end at 132 characters
    if value.ndim == 2:
        rows, cols = value.shape
        decls.append(
            f"  real(dp), parameter :: {ident(name)}({cols}, {rows}) = reshape([ &\n        {joined}], "
            f"[{cols}, {rows}])"
        )
    else:
        decls.append(f"  real(dp), parameter :: {ident(name)}({value.size}) = [ &\n        {joined}]")
    return "\n".join(decls)


def _f_jacobian(graph: Graph) -> tuple[list[str], list[str]]:
    """Forward-mode derivatives in Fortran: d_v(size, n_in) = d v / d x beside each value v(size)."""
    n_in = graph.n_in
    deriv = {graph.input: "d_" + ident(graph.input)[2:]}
    decls = [f"    real(dp) :: d_{ident(graph.input)[2:]}({n_in}, {n_in})"]
    body = [
        f"    d_{ident(graph.input)[2:]} = 0.0_dp",
        f"    do i = 1, {n_in}",
        f"      d_{ident(graph.input)[2:]}(i, i) = 1.0_dp",
        "    end do",
    ]
    for s in graph.steps:
        out = "d_" + ident(s.out)[2:]
        decls.append(f"    real(dp) :: {out}({s.size}, {n_in})")
        a, y = s.args[0], ident(s.out)
        da = None if a in graph.constants else deriv.get(a)
        deriv[s.out] = out
        if s.op == "Gemm":
            body.append(f"    {out} = matmul({ident(s.args[1])}, {da})")
            continue
        factor = {
            "Tanh": f"(1.0_dp - {y}**2)",
            "Sigmoid": f"{y} * (1.0_dp - {y})",
            "Relu": f"merge(1.0_dp, 0.0_dp, {ident(a)} > 0.0_dp)",
            "Log": f"1.0_dp / {ident(a)}",
            "Exp": y,
        }.get(s.op)
        if factor:
            body.append(f"    do i = 1, {n_in}\n      {out}(:, i) = {factor} * {da}(:, i)\n    end do")
            continue
        b = s.args[1]
        db = None if b in graph.constants else deriv.get(b)
        xa, xb = ident(a), ident(b)
        terms = {
            "Add": [f"{da}(:, i)" if da else "", f"+ {db}(:, i)" if db else ""],
            "Sub": [f"{da}(:, i)" if da else "", f"- {db}(:, i)" if db else ""],
            "Mul": [f"{da}(:, i) * {xb}" if da else "", f"+ {xa} * {db}(:, i)" if db else ""],
            "Div": [f"{da}(:, i) / {xb}" if da else "", f"- {xa} * {db}(:, i) / {xb}**2" if db else ""],
        }[s.op]
        expr = " ".join(t for t in terms if t).removeprefix("+ ") or "0.0_dp"
        body.append(f"    do i = 1, {n_in}\n      {out}(:, i) = {expr}\n    end do")
    return decls, body + [f"    dydx = {deriv[graph.steps[-1].out]}"]


def _f_bounds(graph: Graph) -> tuple[list[str], list[str]]:
    """Functions and checks for the card's domain bounds (pipeline/domain.py), as in the C."""
    bounds, names = graph.card.bounds, graph.card.input_names
    funcs, checks = [], []
    for m, b in enumerate(bounds):
        tab = b["table"]
        log = tab["scale"] == "log"
        s_lo = float(np.log10(tab["lo"])) if log else float(tab["lo"])
        s_hi = float(np.log10(tab["hi"])) if log else float(tab["hi"])
        n = len(tab["values"])
        i, j = names.index(b["input"]) + 1, names.index(b["of"]) + 1
        label = fortran_comment(
            f"{b['input']} {'<=' if b['side'] == 'max' else '>='} {b['label']} (a function of {b['of']})"
        )
        funcs.append(
            "\n".join(f"  ! {line}" for line in label)
            + f"""
  pure function bound{m}(x_of) result(v)
    real(dp), intent(in) :: x_of
    real(dp) :: v, s, t, w, xc
    integer :: k
    xc = min(max(x_of, {_num(tab["lo"])}_dp), {_num(tab["hi"])}_dp)
    s = {"log10(xc)" if log else "xc"}
    t = (s - ({_num(s_lo)}_dp)) / ({_num(s_hi)}_dp - ({_num(s_lo)}_dp)) * {n - 1}
    k = min(max(int(t), 0), {n - 2})
    w = t - k
    v = v_bound{m}(k + 1) + w * (v_bound{m}(k + 2) - v_bound{m}(k + 1))
  end function bound{m}
"""
        )
        op = ">" if b["side"] == "max" else "<"
        checks.append(f"    if (x({i}) {op} bound{m}(x({j}))) status = {graph.name}_err_range")
    return funcs, checks


def fortran_code(graph: Graph) -> str:
    n = graph.name
    card = graph.card
    doc_lines = [f"x({k + 1}) {i.name} [{i.unit}] in [{i.min:g}, {i.max:g}]" for k, i in enumerate(card.inputs)] + [
        f"y({k + 1}) {o.name} [{o.unit}]" for k, o in enumerate(card.outputs)
    ]
    doc = "\n".join(f"  !   {part}" for line in doc_lines for part in fortran_comment(line))
    description = "\n".join(f"! {part}" for part in fortran_comment(f"{n}: {card.description}"))
    consts = "\n".join(_f_array(name, v) for name, v in graph.constants.items())
    decls = "\n".join(sorted({f"    real(dp) :: {ident(s.out)}({s.size})" for s in graph.steps}))
    body = []
    for s in graph.steps:
        out = ident(s.out)
        if s.op == "Gemm":
            src, W, b = s.args
            body.append(f"    {out} = {ident(b) if b else '0.0_dp'}")
            body.append(
                f"    do k = 1, {graph.constants[W].shape[0]}\n"
                f"      {out} = {out} + {ident(src)}(k) * {ident(W)}(:, k)\n    end do"
            )
        elif s.op in UNARY:
            body.append(f"    {out} = {UNARY_F[s.op].format(ident(s.args[0]))}")
        else:
            body.append(f"    {out} = {ident(s.args[0])} {BINARY[s.op]} {ident(s.args[1])}")
    jdecls, jbody = _f_jacobian(graph)
    bound_funcs, bound_checks = _f_bounds(graph)
    bounds = card.bounds
    last = ident(graph.steps[-1].out)
    tables = "\n".join(
        _f_array(name, np.array(v, dtype=float))
        for name, v in (
            ("lo", graph.lo),
            ("hi", graph.hi),
            ("ta", TANH_A),
            ("tb", TANH_B),
            *((f"bound{m}", b["table"]["values"]) for m, b in enumerate(bounds)),
        )
    )
    nl = "\n"
    return f"""{description}
! Generated by `python -m pipeline codegen {n} --lang fortran` from {n}.onnx (sha256 {graph.sha256}).
! Fortran 2008, no dependencies.
module {n}_surrogate
  use, intrinsic :: iso_fortran_env, only: dp => real64, int64
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
  implicit none
  private
  public :: {n}_eval, {n}_eval_jac, {n}_eval_batch
  integer, parameter, public :: {n}_n_inputs = {graph.n_in}, {n}_n_outputs = {graph.n_out}
  integer, parameter, public :: {n}_ok = 0, {n}_err_nonfinite = 1, {n}_err_range = 2
  ! the exponent bits of a double: all set for NaN and infinity (read from the bits, so -ffast-math keeps the test)
  integer(int64), parameter :: exponent_bits = int(z'7FF0000000000000', int64)
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
{nl.join(bound_funcs)}
  ! {n}_ok, or the error code of the first input that is non-finite or outside the valid domain.
  function check(x) result(status)
    real(dp), intent(in) :: x({graph.n_in})
    integer :: status
    status = {n}_ok
    if (any(iand(transfer(x, 0_int64, {graph.n_in}), exponent_bits) == exponent_bits)) then
      status = {n}_err_nonfinite
      return
    end if
    if (any(x < v_lo) .or. any(x > v_hi)) status = {n}_err_range
{nl.join(bound_checks)}
  end function check

  ! One sample: x({n}_n_inputs) -> y({n}_n_outputs); returns {n}_ok or an error code (y set to NaN).
  function {n}_eval(x, y) result(status)
    real(dp), intent(in) :: x({graph.n_in})
    real(dp), intent(out) :: y({graph.n_out})
    integer :: status
    status = check(x)
    if (status /= {n}_ok) then
      y = ieee_value(0.0_dp, ieee_quiet_nan)
      return
    end if
    call forward(x, y)
  end function {n}_eval

  ! One sample and its Jacobian dydx(i, j) = d y(i) / d x(j), physical units; the same error codes.
  function {n}_eval_jac(x, y, dydx) result(status)
    real(dp), intent(in) :: x({graph.n_in})
    real(dp), intent(out) :: y({graph.n_out}), dydx({graph.n_out}, {graph.n_in})
    integer :: status
    status = check(x)
    if (status /= {n}_ok) then
      y = ieee_value(0.0_dp, ieee_quiet_nan)
      dydx = ieee_value(0.0_dp, ieee_quiet_nan)
      return
    end if
    call forward_jac(x, y, dydx)
  end function {n}_eval_jac

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
{nl.join(body)}
    y = {last}
    j = 0
    k = 0
  end subroutine forward

  pure subroutine forward_jac({ident(graph.input)}, y, dydx)
    real(dp), intent(in) :: {ident(graph.input)}({graph.n_in})
    real(dp), intent(out) :: y({graph.n_out}), dydx({graph.n_out}, {graph.n_in})
{decls}
{nl.join(jdecls)}
    integer :: i, j, k
{nl.join(body)}
    y = {last}
{nl.join(jbody)}
    j = 0
    k = 0
  end subroutine forward_jac

end module {n}_surrogate
"""


def c_code(graph: Graph, precision: str = "float") -> tuple[str, str]:
    """The C header and source of a graph (what `generate` writes; the FMU and the code_saturne case embed them)."""
    return codegen_c.header(graph, precision), codegen_c.source(graph, precision)


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


def c_files(graph: Graph, precision: str) -> dict[str, str]:
    """NAME.h, NAME.c, a CMake package file and a pkg-config file."""
    header, source = c_code(graph, precision)
    return {
        f"{graph.name}.h": header,
        f"{graph.name}.c": source,
        f"{graph.name}-config.cmake": codegen_c.cmake_config(graph.name),
        f"{graph.name}.pc": codegen_c.pkg_config(graph),
    }


def fortran_files(graph: Graph, precision: str) -> dict[str, str]:
    """One Fortran 2008 module, NAME_surrogate.f90 (computes in double whatever the precision)."""
    return {f"{graph.name}_surrogate.f90": fortran_code(graph)}


LANGUAGES = {"c": c_files, "fortran": fortran_files}
"""codegen languages: name -> fn(graph, precision) -> {file name: text}; `--lang` offers each one"""
