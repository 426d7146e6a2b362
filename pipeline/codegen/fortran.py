"""Graph -> one Fortran 2008 module, NAME_surrogate.f90 (computes in double whatever the precision asked for).

Entry points eval, eval_jac and eval_batch, with `x(n_inputs, n)` column-major batches and `dydx(n_outputs,
n_inputs)`; the same return codes and domain checks as the C (see the package docstring).
"""

from __future__ import annotations

import numpy as np

from ..runtime import domain
from .c import TANH_A, TANH_B, ident
from .graph import BINARY, UNARY, Graph
from .text import fortran_comment

UNARY_F = {
    "Tanh": "tanh_fast({})",
    "Sigmoid": "1.0_dp / (1.0_dp + exp(-{}))",
    "Relu": "max({}, 0.0_dp)",
    "Log": "log({})",
    "Exp": "exp({})",
}


def _num(v: float) -> str:
    return repr(float(v))


# --- Fortran -------------------------------------------------------------------------------------------------------


PART = 128
"""values (or, a level up, parts) per statement: 32 continuation lines of values, or 128 of parts, within F2008's 255"""


def _f_array(name: str, value: np.ndarray) -> str:
    """A Fortran parameter array; C-order [in][out] data become W(out, in) in column-major, same memory order.

    Long arrays are built from parts of at most PART values, and where there are more than PART parts, from
    groups of at most PART parts (and so on): a statement may have only 255 continuation lines (a 200 x 200 layer
    has 313 parts of 128 values).
    """
    items = [f"{v!r}_dp" for v in value.reshape(-1).astype(float).tolist()]
    parts, decls = [], []  # parts: (name, size)
    for p, start in enumerate(range(0, len(items), PART)):
        chunk = items[start : start + PART]
        lines = ", &\n        ".join(", ".join(chunk[i : i + 4]) for i in range(0, len(chunk), 4))
        parts.append((f"{ident(name)}_{p}", len(chunk)))
        decls.append(f"  real(dp), parameter :: {parts[-1][0]}({len(chunk)}) = [ &\n        {lines}]")
    level = 0
    while len(parts) > PART:  # only for wide layers: the arrays of every shipped model stay as they were
        groups = []
        for g, start in enumerate(range(0, len(parts), PART)):
            members = parts[start : start + PART]
            size = sum(n for _, n in members)
            groups.append((f"{ident(name)}_g{level}_{g}", size))
            joined = ", &\n        ".join(m for m, _ in members)
            decls.append(f"  real(dp), parameter :: {groups[-1][0]}({size}) = [ &\n        {joined}]")
        parts, level = groups, level + 1
    joined = ", &\n        ".join(m for m, _ in parts)  # one part a line: free-form Fortran lines end at 132 characters
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


F_SYNTAX = domain.Syntax(
    number=lambda v: f"{_num(v)}_dp", clamp="min(max({a}, {lo}), {hi})", integer="int({a})", item="{array}({k} + 1)"
)
"""how Fortran writes a domain bound's interpolation (runtime/domain.py)"""


def _f_bounds(graph: Graph) -> tuple[list[str], list[str]]:
    """Functions and checks for the card's domain bounds (pipeline/runtime/domain.py), as in the C."""
    names, funcs, checks = graph.card.input_names, [], []
    for m, b in enumerate(graph.card.bounds):
        table = domain.BoundTable.of_bound(b)
        steps = domain.interpolation(table, F_SYNTAX, "x_of", f"v_bound{m}")
        label = fortran_comment(
            f"{b['input']} {'<=' if b['side'] == 'max' else '>='} {b['label']} (a function of {b['of']})"
        )
        funcs.append(
            "\n".join(f"  ! {line}" for line in label)
            + f"""
  pure function bound{m}(x_of) result(v)
    real(dp), intent(in) :: x_of
    real(dp) :: v, xc, s, t, w
    integer :: k
{chr(10).join(f"    {var} = {expr}" for var, expr in steps)}
  end function bound{m}
"""
        )
        op = ">" if b["side"] == "max" else "<"
        i, j = names.index(b["input"]) + 1, names.index(b["of"]) + 1
        checks.append(f"    if (x({i}) {op} bound{m}(x({j}))) status = {graph.name}_err_range")
    return funcs, checks


def fortran_code(graph: Graph) -> str:
    """NAME_surrogate.f90: its sections in the order of the file, each written by its own emitter below."""
    return _f_head(graph) + _f_helpers(graph) + _f_entry_points(graph) + _f_forward(graph)


def _f_head(graph: Graph) -> str:
    """The module's comment, interface, constants: weights, ranges, tanh coefficients, bound tables."""
    n, card = graph.name, graph.card
    doc_lines = [f"x({k + 1}) {i.name} [{i.unit}] in [{i.min:g}, {i.max:g}]" for k, i in enumerate(card.inputs)] + [
        f"y({k + 1}) {o.name} [{o.unit}]" for k, o in enumerate(card.outputs)
    ]
    doc = "\n".join(f"  !   {part}" for line in doc_lines for part in fortran_comment(line))
    description = "\n".join(f"! {part}" for part in fortran_comment(f"{n}: {card.description}"))
    consts = "\n".join(_f_array(name, v) for name, v in graph.constants.items())
    tables = "\n".join(
        _f_array(name, np.array(v, dtype=float))
        for name, v in (
            ("lo", graph.lo),
            ("hi", graph.hi),
            ("ta", TANH_A),
            ("tb", TANH_B),
            *((f"bound{m}", b["table"]["values"]) for m, b in enumerate(card.bounds)),
        )
    )
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

"""


def _f_helpers(graph: Graph) -> str:
    """tanh_fast, the domain bounds' functions and the input check."""
    n, nl = graph.name, "\n"
    bound_funcs, bound_checks = _f_bounds(graph)
    return f"""  ! tanh as a 13/6 rational function on [-9, 9] (|error| < 3e-8), the same as the generated C.
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

"""


def _f_entry_points(graph: Graph) -> str:
    """eval, eval_jac and eval_batch: check, then the forward pass."""
    n = graph.name
    return f"""  ! One sample: x({n}_n_inputs) -> y({n}_n_outputs); returns {n}_ok or an error code (y set to NaN).
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

"""


def _f_forward(graph: Graph) -> str:
    """The forward pass, and with forward-mode derivatives (_f_jacobian)."""
    n, nl, last = graph.name, "\n", ident(graph.steps[-1].out)
    decls = "\n".join(sorted({f"    real(dp) :: {ident(s.out)}({s.size})" for s in graph.steps}))
    body = _f_body(graph)
    jdecls, jbody = _f_jacobian(graph)
    return f"""  pure subroutine forward({ident(graph.input)}, y)
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


def _f_body(graph: Graph) -> list[str]:
    """One statement (or loop) per node: each value a whole-array expression over a layer's neurons."""
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
    return body


def fortran_files(graph: Graph, precision: str) -> dict[str, str]:
    """One Fortran 2008 module, NAME_surrogate.f90 (computes in double whatever the precision)."""
    return {f"{graph.name}_surrogate.f90": fortran_code(graph)}
