"""The C99 generator: header, source, a CMake package and a pkg-config file (see codegen.py for the entry points).

The source is written for solvers' own builds, where the flags are `-O2` without `-march`:

* Every math function the network calls (exp, log, tanh, sigmoid) is a polynomial written out in the source, so
  no libm call stops the compiler from vectorizing; the error bounds are stated with each one below.
* eval_batch / eval_soa run LANES samples at a time as 32-byte GNU C vectors (`__attribute__((vector_size))`,
  gcc and clang: 8 floats or 4 doubles), one lane per sample; each layer is a loop over blocks of 8 neurons
  (_gemm_blocked). Other compilers, or -DNAME_NO_VECTOR, take the portable path: the same code one sample at a
  time.
* eval (and so the Python backend's point()) puts a layer's neurons in the lanes instead (_neurons_in_lanes),
  where the target has 32-byte vector registers; elsewhere it is scalar code.
* On x86-64 the batched loop and eval's vector code are compiled a second time for AVX2+FMA
  (`__attribute__((target))`) and chosen at run time with `__builtin_cpu_supports`, so the SSE2-only build that
  plain -O2 gives still runs 8-lane AVX2 code on a machine that has it (-DNAME_NO_DISPATCH turns this off).
* Sums are formed in onnxruntime's order, sum_k x_k w_kj and then the bias, and every single-sample result
  (eval, the Jacobian's y, the batched loop's tail) comes from the same function, so they agree to the bit.
* The input checks read the bits of each double, so -ffast-math (which lets the compiler assume that no NaN
  exists) cannot turn them off.
* Precision "float" (the default) computes with the float32 weights, as onnxruntime does; "double" computes the
  same network in double precision (the weights are still the float32 values of the model). Its exp has no
  vector int64 conversion below AVX-512 and half the lanes: it costs several times the float code.
* `extern "C"` guards; every external symbol and macro starts with the surrogate's name, internal ones are
  static and prefixed too, so several surrogates link into one program (C or C++); no mutable global state.

source() lists the sections of NAME.c in file order, each written by its own emitter (preamble, bit helpers, math,
domain bounds, input checks, the forward passes, eval, the Jacobian, the batched loop); a domain bound's
interpolation is runtime/domain.py's interpolation() in C_SYNTAX, which the FMU's wrapper shares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..runtime import domain
from .text import c_comment

TANH_A = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
TANH_B = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)
# Polynomial degrees. exp: Taylor series of e^r on |r| <= ln2/2 after range reduction; the truncation error is
# below r^(d+1)/(d+1)! = 5e-9 (float, d = 7) and 2e-17 (double, d = 13). log: 2 atanh(z), z = (m-1)/(m+1) with
# m in [sqrt(1/2), sqrt(2)), |z| <= 0.1716; terms up to z^(2K+1), relative truncation error below
# z^(2K+2)/(2K+3) = 5e-10 (float, K = 4) and 2e-17 (double, K = 9).
EXP_DEGREE = {"float": 7, "double": 13}
LOG_TERMS = {"float": 4, "double": 9}


def ident(name: str) -> str:
    """A C/Fortran identifier for an ONNX value name."""
    return "v_" + "".join(c if c.isalnum() else "_" for c in name)


class _Types:
    """What differs between precisions: literal suffix, integer type of the same width, exponent layout."""

    def __init__(self, precision: str):
        self.precision = precision
        self.double = precision == "double"
        self.real = "double" if self.double else "float"
        self.int = "int64_t" if self.double else "int32_t"
        self.uint = "uint64_t" if self.double else "uint32_t"
        self.mant, self.bias = (52, 1023) if self.double else (23, 127)
        self.exp_lo, self.exp_hi = (-708.0, 709.0) if self.double else (-87.0, 88.0)
        self.shift = 1100 if self.double else 200  # makes x*log2(e) + 0.5 positive, so truncation is floor

    def lit(self, v: float) -> str:
        """A literal of the working precision that holds v (float32 values are exact either way)."""
        if self.double:
            return repr(float(v))
        return f"{float(np.float32(v)):.9e}f"


def _math(p: str, t: _Types, vector: bool, ops: set[str]) -> str:
    """The polynomial exp/log/tanh/sigmoid used by the graph, for scalars (`vector` False) or vectors.

    Both are written from the same templates (one emitter per function below) so that the batched and the
    single-sample paths compute the same function; only selection and bit reinterpretation are spelled differently
    (_spelling).
    """
    sp = _spelling(p, t, vector)
    out = []
    if ops & {"Exp", "Sigmoid"} or ("Tanh" in ops and t.double):
        out.append(_exp(p, t, sp))
    if "Log" in ops:
        out.append(_log(p, t, sp))
    if "Tanh" in ops:
        out.append(_tanh_double(p, t, sp) if t.double else _tanh_float(p, t, sp))
    if "Sigmoid" in ops:
        out.append(_sigmoid(p, t, sp))
    text = "\n".join(out)
    if vector:  # vectors in and out through pointers: no vector is passed by value (see source())
        T, fn = sp.T, sp.fn
        head = re.escape(f"{fn} {T} ") + r"(\w+_v)" + re.escape(f"({T} x)\n{{\n")
        text = re.sub(head, lambda m: f"{fn} void {m.group(1)}({T} *px)\n{{\n    {T} x = *px;\n", text)
        text = re.sub(r"\n    return (.*);\n}", r"\n    *px = \1;\n}", text)
    return text


class _Spelling(NamedTuple):
    """How the math templates spell types and operations, for scalars or for vectors (each template unpacks it)."""

    T: str  # the real type
    I: str  # the integer type of the same width
    s: str  # the functions' name suffix
    L: Callable[[float], str]  # a literal
    fn: str  # the functions' qualifiers
    sel: Callable[[str, str, str], str]  # mask ? a : b
    to_int: Callable[[str], str]
    to_real: Callable[[str], str]
    bits: Callable[[str], str]  # the bits of a real, as an integer
    from_bits: Callable[[str], str]
    splat: Callable[[str], str]  # a scalar as a value of the type
    in_place: Callable[[str, str], str]  # v = f(v) as a statement


def _spelling(p: str, t: _Types, vector: bool) -> _Spelling:
    """The spelling for scalars (`vector` False) or GNU C vectors."""
    T = f"{p}_vec" if vector else f"{p}_real"
    I = f"{p}_ivec" if vector else t.int
    s = "_v" if vector else ""
    fn = f"{p.upper()}_VECTOR_FN" if vector else "static inline"  # vector helpers: always inlined (see source())
    if vector:
        sel = lambda m, a, b: f"{p.upper()}_SEL({m}, {a}, {b})"  # noqa: E731
        to_int = lambda v: f"__builtin_convertvector({v}, {p}_ivec)"  # noqa: E731
        to_real = lambda v: f"__builtin_convertvector({v}, {p}_vec)"  # noqa: E731
        bits = lambda v: f"(({p}_ivec)({v}))"  # noqa: E731
        from_bits = lambda v: f"(({p}_vec)({v}))"  # noqa: E731
        splat = lambda v: f"({p}_zero + {v})"  # noqa: E731
    else:
        sel = lambda m, a, b: f"({m} ? {a} : {b})"  # noqa: E731
        to_int = lambda v: f"({t.int})({v})"  # noqa: E731
        to_real = lambda v: f"({p}_real)({v})"  # noqa: E731
        bits = lambda v: f"{p}_bits({v})"  # noqa: E731
        from_bits = lambda v: f"{p}_from_bits({v})"  # noqa: E731
        splat = lambda v: v  # noqa: E731
    in_place = (lambda f, v: f"{p}_{f}_v(&{v});") if vector else (lambda f, v: f"{v} = {p}_{f}({v});")  # noqa: E731
    return _Spelling(T, I, s, t.lit, fn, sel, to_int, to_real, bits, from_bits, splat, in_place)


def _exp(p: str, t: _Types, sp: _Spelling) -> str:
    """e^x."""
    T, I, s, L, fn, sel, to_int, to_real, bits, from_bits, splat, in_place = sp
    d = EXP_DEGREE[t.precision]
    # Horner form of sum_{k<=d} r^k / k!: one multiply-add per degree
    coefficients = [1.0 / math.factorial(k) for k in range(d + 1)]
    poly = L(coefficients[d])
    for c in reversed(coefficients[:d]):
        poly = f"({L(c)} + r * {poly})"
    return f"""/* e^x: x = i ln2 + r with |r| <= ln2/2, e^r by its Taylor series to degree {d} (truncation error
   < {"2e-17" if t.double else "5e-9"} relative), 2^i from the exponent bits; x is clamped to [{t.exp_lo:g}, {t.exp_hi:g}]. */
{fn} {T} {p}_exp{s}({T} x)
{{
    {I} i;
    {T} r;
    x = {sel(f"x < {L(t.exp_lo)}", splat(L(t.exp_lo)), "x")};
    x = {sel(f"x > {L(t.exp_hi)}", splat(L(t.exp_hi)), "x")};
    i = {to_int(f"x * {L(1.4426950408889634)} + {L(0.5 + t.shift)}")} - {t.shift};
    r = x - {to_real("i")} * {L(0.693145751953125)};
    r = r - {to_real("i")} * {L(1.4286068203094172e-06)};
    return {poly} * {from_bits(f"(i + {t.bias}) << {t.mant}")};
}}
"""


def _log(p: str, t: _Types, sp: _Spelling) -> str:
    """log x."""
    T, I, s, L, fn, sel, to_int, to_real, bits, from_bits, splat, in_place = sp
    vector = s == "_v"
    K = LOG_TERMS[t.precision]
    series = L(1.0 / (2 * K + 1))
    for k in range(K - 1, -1, -1):
        series = f"({L(1.0 / (2 * k + 1))} + z2 * {series})"
    mask = f"0x{(1 << t.mant) - 1:x}"
    one = f"0x{t.bias << t.mant:x}"
    return f"""/* log x for a positive normal x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(z), z = (m-1)/(m+1),
   by its series to z^{2 * K + 1} (relative truncation error < {"2e-17" if t.double else "5e-10"}). */
{fn} {T} {p}_log{s}({T} x)
{{
    const {I} b = {bits("x")};
    {I} e = (b >> {t.mant}) - {t.bias};
    {T} m = {from_bits(f"(b & {mask}) | {one}")}, z, z2;
    const {I if vector else "int"} big = m > {L(1.4142135623730951)};
    m = {sel("big", f"m * {L(0.5)}", "m")};
    e = {"e - big" if vector else "e + big"};
    z = (m - {L(1.0)}) / (m + {L(1.0)});
    z2 = z * z;
    return {to_real("e")} * {L(0.6931471805599453)} + {L(2.0)} * z * {series};
}}
"""


def _tanh_float(p: str, t: _Types, sp: _Spelling) -> str:
    """tanh in float: a rational function."""
    T, I, s, L, fn, sel, to_int, to_real, bits, from_bits, splat, in_place = sp
    A, B = [t.lit(a) for a in TANH_A], [t.lit(b) for b in TANH_B]
    return f"""/* tanh as a 13/6 rational function on [-9, 9] (absolute error < 3e-8); Estrin's scheme: the same polynomials
   as Horner's, with a dependency chain half as long. */
{fn} {T} {p}_tanh{s}({T} x)
{{
    const {T} c = {sel(f"x < {L(-9.0)}", splat(L(-9.0)), sel(f"x > {L(9.0)}", splat(L(9.0)), "x"))};
    const {T} c2 = c * c, c4 = c2 * c2, c8 = c4 * c4;
    const {T} q = ({B[0]} + c2 * {B[1]}) + c4 * ({B[2]} + c2 * {B[3]});
    return c * (({A[0]} + c2 * {A[1]}) + c4 * ({A[2]} + c2 * {A[3]}) + c8 * (({A[4]} + c2 * {A[5]}) + c4 * {A[6]})) / q;
}}
"""


def _tanh_double(p: str, t: _Types, sp: _Spelling) -> str:
    """tanh in double, through exp."""
    T, I, s, L, fn, sel, to_int, to_real, bits, from_bits, splat, in_place = sp
    return f"""/* tanh x = 1 - 2 / (e^(2x) + 1), on x clamped to [-20, 20] (tanh(20) = 1 in double); absolute error ~1e-16. */
{fn} {T} {p}_tanh{s}({T} x)
{{
    {T} e;
    x = {sel(f"x < {L(-20.0)}", splat(L(-20.0)), sel(f"x > {L(20.0)}", splat(L(20.0)), "x"))};
    e = {L(2.0)} * x;
    {in_place("exp", "e")}
    return {L(1.0)} - {L(2.0)} / (e + {L(1.0)});
}}
"""


def _sigmoid(p: str, t: _Types, sp: _Spelling) -> str:
    """The logistic function, through exp."""
    T, I, s, L, fn, sel, to_int, to_real, bits, from_bits, splat, in_place = sp
    return f"""{fn} {T} {p}_sigmoid{s}({T} x)
{{
    {T} e = -x;
    {in_place("exp", "e")}
    return {L(1.0)} / ({L(1.0)} + e);
}}
"""


GEMM_BLOCK = 8
"""output neurons computed together in the batched path: that many independent multiply-add chains (the latency
of one FMA is 4 cycles on current x86 and two issue per cycle, so 8 keep both units busy), each sample vector
loaded once for all of them, and 8 accumulators plus the operands fit the 16 vector registers of AVX2."""


def _gemm_blocked(p: str, t: _Types, size: int, rows: int, out: str, src_k: str, W: str, bias: str | None) -> str:
    """A Gemm over vectors (one lane per sample) as loops: blocks of GEMM_BLOCK neurons, k innermost.

    Why loops and not straight-line code: written out, a 32 x 32 layer is ~2,000 instructions of ~9 bytes, with
    its neighbours more than the 32 KiB instruction cache holds, and the batched loop ran at about one instruction
    a cycle, fetch-bound (friedel: 4,900 instructions per block of 8 samples). Each neuron's sum is
    sum_k x_k w_kj, then + bias: onnxruntime's order (its GEMM adds the bias to the finished sum), which keeps the
    float result closer to it where the bias and the sum nearly cancel."""

    def block(j: str, n: int) -> list[str]:
        acc = [f"a{b}" for b in range(n)]
        lines = [
            f"        {p}_vec {', '.join(f'{a} = {p}_zero' for a in acc)};",
            f"        for (k = 0; k < {rows}; ++k) {{",
            f"            const {p}_vec h = {src_k};",
            f"            const {p}_real *w = {W} + k * {size} + {j};",
            *(f"            {a} += h * w[{b}];" for b, a in enumerate(acc)),
            "        }",
        ]
        lines += [
            f"        {out}[{j} + {b}] = {a}" + (f" + {p}_{ident(bias)}[{j} + {b}]" if bias else "") + ";"
            for b, a in enumerate(acc)
        ]
        return lines

    J, lines = GEMM_BLOCK, []
    if size >= J:
        lines += [f"    for (j = 0; j + {J} <= {size}; j += {J}) {{", *block("j", J), "    }"]
    if size % J:
        lines += ["    {", *block(str(size - size % J), size % J), "    }"]
    return "\n".join(lines)


def _body(graph, p: str, t: _Types, vector: bool) -> tuple[list[str], list[str]]:
    """Declarations and statements of the forward pass: each graph value is an array over its neurons, of
    scalars or of vectors (one lane per sample)."""
    T = f"{p}_vec" if vector else f"{p}_real"
    s = "_v" if vector else ""
    unary = {
        "Tanh": f"{p}_tanh{s}({{}})",
        "Sigmoid": f"{p}_sigmoid{s}({{}})",
        "Log": f"{p}_log{s}({{}})",
        "Exp": f"{p}_exp{s}({{}})",
        "Relu": f"{p.upper()}_SEL({{0}} > {t.lit(0)}, {{0}}, {p}_zero)"
        if vector
        else f"({{0}} > {t.lit(0)} ? {{0}} : {t.lit(0)})",
    }
    binary = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}

    def at(name: str, i: str = "j") -> str:
        return f"{p}_{ident(name)}[{i}]" if name in graph.constants else f"{ident(name)}[{i}]"

    decls = sorted({f"{T} {ident(st.out)}[{st.size}];" for st in graph.steps})
    body = []
    for st in graph.steps:
        if st.op == "Gemm":
            src, W, bias = st.args
            rows = graph.constants[W].shape[0]
            if vector:
                body.append(_gemm_blocked(p, t, st.size, rows, ident(st.out), at(src, "k"), f"{p}_{ident(W)}", bias))
                continue
            body.append(
                f"    for (j = 0; j < {st.size}; ++j) {{\n"
                f"        {T} acc = {t.lit(0)};\n"
                f"        for (k = 0; k < {rows}; ++k) acc += {at(src, 'k')} * {p}_{ident(W)}[k * {st.size} + j];\n"
                f"        {ident(st.out)}[j] = acc{f' + {at(bias)}' if bias else ''};\n    }}"
            )
        elif st.op in unary and vector and st.op != "Relu":
            body.append(
                f"    for (j = 0; j < {st.size}; ++j) {{\n        {ident(st.out)}[j] = {at(st.args[0])};\n"
                f"        {p}_{st.op.lower()}_v(&{ident(st.out)}[j]);\n    }}"
            )
        elif st.op in unary:
            body.append(
                f"    for (j = 0; j < {st.size}; ++j) {ident(st.out)}[j] = {unary[st.op].format(at(st.args[0]))};"
            )
        else:
            body.append(
                f"    for (j = 0; j < {st.size}; ++j) {ident(st.out)}[j] = "
                f"{at(st.args[0])} {binary[st.op]} {at(st.args[1])};"
            )
    return decls, body


UNROLL_MAX_WEIGHTS = 256
"""In the single-sample path, layers up to this many weights are written out as straight-line code (values stay
in registers, the weights become immediate constants); larger ones as loops over arrays, which the compiler
vectorizes across a layer's neurons. The batched path always uses loops (see _gemm_blocked)."""


def _unrolled(graph, p: str, t: _Types, x: str, y: str, to_out: str) -> list[str] | None:
    """The single-sample forward pass as straight-line code, one local per neuron; None when a layer is too large
    for it."""
    if any(s.op == "Gemm" and graph.constants[s.args[1]].size > UNROLL_MAX_WEIGHTS for s in graph.steps):
        return None
    T, L = f"{p}_real", t.lit
    value = {graph.input: [f"{x}[{k}]" for k in range(graph.n_in)]}

    def operand(name: str, j: int) -> str:
        return L(graph.constants[name][j]) if name in graph.constants else value[name][j]

    lines = []
    for st in graph.steps:
        o = ident(st.out)
        names = [f"{o}_{j}" for j in range(st.size)]
        value[st.out] = names
        if st.op == "Gemm":
            # GEMM_BLOCK neurons at a time, their sums interleaved term by term: independent multiply-add chains
            # side by side, where one sum after another waits on each add. Bias last, as onnxruntime adds it.
            src, W, bias = st.args
            w, xs = graph.constants[W], value[src]
            for j0 in range(0, st.size, GEMM_BLOCK):
                js = range(j0, min(j0 + GEMM_BLOCK, st.size))
                lines += [f"    {T} {names[j]} = {xs[0]} * {L(w[0, j])};" for j in js]
                lines += [f"    {names[j]} += {xs[k]} * {L(w[k, j])};" for k in range(1, len(xs)) for j in js]
                if bias:
                    lines += [f"    {names[j]} += {L(graph.constants[bias][j])};" for j in js]
            continue
        for j, nm in enumerate(names):
            a = value[st.args[0]][j]
            if st.op == "Relu":
                expr = f"({a} > {L(0)} ? {a} : {L(0)})"
            elif st.op in ("Tanh", "Sigmoid", "Log", "Exp"):
                expr = f"{p}_{st.op.lower()}({a})"
            else:
                op = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}[st.op]
                expr = f"{operand(st.args[0], j)} {op} {operand(st.args[1], j)}"
            lines.append(f"    const {T} {nm} = {expr};")
    lines += [f"    {y}[{j}] = {to_out}{v};" for j, v in enumerate(value[graph.steps[-1].out])]
    return lines


def _neurons_in_lanes(graph, p: str, t: _Types) -> tuple[str, str]:
    """One sample with a layer's neurons in the lanes of the vectors (constants, body of {p}_forward_one).

    The scalar single-sample code spends its time in the activations (a tanh per neuron, each with a division)
    and in chains of scalar multiply-adds; here one vector operation does 8 neurons (4 in double): a layer is
    `for k: out[:] += x_k * W[k][:]` over ceil(size / LANES) vectors, the weights stored padded with zeros to whole
    vectors. Lanes past a layer's size hold harmless values (finite: the math functions clamp) that no later layer
    reads. Per lane the arithmetic is the scalar path's: the same sum in the same order, then the bias."""
    lanes = 4 if t.double else 8
    L = t.lit

    def vectors(n: int) -> int:
        return -(-n // lanes)

    def padded(values) -> str:
        v = list(values) + [0.0] * (vectors(len(values)) * lanes - len(values))
        return ", ".join("{" + ", ".join(L(a) for a in v[i : i + lanes]) + "}" for i in range(0, len(v), lanes))

    consts, lines = [], []
    for name, value in graph.constants.items():
        if value.ndim == 2:  # a Gemm's weights, [k][j]: row k padded to whole vectors
            rows = ", ".join("{" + padded(row) + "}" for row in value)
            consts.append(
                f"static const {p}_vec {p}_{ident(name)}_n[{value.shape[0]}][{vectors(value.shape[1])}] = {{{rows}}};"
            )
        else:
            consts.append(
                f"static const {p}_vec {p}_{ident(name)}_n[{vectors(value.size)}] = {{{padded(value.reshape(-1))}}};"
            )
    x = ident(graph.input)
    decls = [f"{p}_vec {x}[{vectors(graph.n_in)}];"]
    decls += sorted({f"{p}_vec {ident(st.out)}[{vectors(st.size)}];" for st in graph.steps})
    lines += [
        f"    for (j = 0; j < {vectors(graph.n_in)}; ++j) {x}[j] = {p}_zero;",
        f"    for (k = 0; k < {graph.n_in}; ++k) {x}[k / {lanes}][k % {lanes}] = ({p}_real)x[k];",
    ]

    def at(name: str) -> str:
        return f"{p}_{ident(name)}_n[j]" if name in graph.constants else f"{ident(name)}[j]"

    for st in graph.steps:
        out, m = ident(st.out), vectors(st.size)
        if st.op == "Gemm":
            src, W, bias = st.args
            for j0 in range(0, m, GEMM_BLOCK):  # at most GEMM_BLOCK accumulators at a time, as in _gemm_blocked
                js = range(j0, min(j0 + GEMM_BLOCK, m))
                lines += [
                    "    {",
                    f"        {p}_vec {', '.join(f'a{j} = {p}_zero' for j in js)};",
                    f"        for (k = 0; k < {graph.constants[W].shape[0]}; ++k) {{",
                    f"            const {p}_real h = {ident(src)}[k / {lanes}][k % {lanes}];",
                    *(f"            a{j} += h * {p}_{ident(W)}_n[k][{j}];" for j in js),
                    "        }",
                    *(
                        f"        {out}[{j}] = a{j}" + (f" + {p}_{ident(bias)}_n[{j}]" if bias else "") + ";"
                        for j in js
                    ),
                    "    }",
                ]
        elif st.op == "Relu":
            lines.append(
                f"    for (j = 0; j < {m}; ++j) {out}[j] = {p.upper()}_SEL({at(st.args[0])} > {L(0)}, {at(st.args[0])}, {p}_zero);"
            )
        elif st.op in ("Tanh", "Sigmoid", "Log", "Exp"):
            lines.append(
                f"    for (j = 0; j < {m}; ++j) {{\n        {out}[j] = {at(st.args[0])};\n"
                f"        {p}_{st.op.lower()}_v(&{out}[j]);\n    }}"
            )
        else:
            op = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}[st.op]
            lines.append(f"    for (j = 0; j < {m}; ++j) {out}[j] = {at(st.args[0])} {op} {at(st.args[1])};")
    last = ident(graph.steps[-1].out)
    lines.append(f"    for (j = 0; j < {graph.n_out}; ++j) y[j] = (double){last}[j / {lanes}][j % {lanes}];")
    body = "\n".join(["    int j, k;", *(f"    {d}" for d in decls), *lines])
    return "\n".join(consts), body


def _jacobian_body(graph, p: str, t: _Types) -> tuple[list[str], list[str]]:
    """Forward-mode derivatives: beside each value v[size], dv[size][n_in] = d v / d x, carried node by node."""
    n_in = graph.n_in
    deriv = {graph.input: f"d_{ident(graph.input)[2:]}"}
    decls, body = [f"{p}_real d_{ident(graph.input)[2:]}[{graph.n_in}][{n_in}];"], []
    body.append(
        f"    for (j = 0; j < {n_in}; ++j) for (i = 0; i < {n_in}; ++i) "
        f"d_{ident(graph.input)[2:]}[j][i] = j == i ? {t.lit(1)} : {t.lit(0)};"
    )

    def val(name: str, i: str = "j") -> str:
        return f"{p}_{ident(name)}[{i}]" if name in graph.constants else f"{ident(name)}[{i}]"

    def d(name: str, i: str = "j") -> str | None:
        return None if name in graph.constants else f"{deriv[name]}[{i}][i]"

    for st in graph.steps:
        out = f"d_{ident(st.out)[2:]}"
        deriv[st.out] = out
        decls.append(f"{p}_real {out}[{st.size}][{n_in}];")
        a = st.args[0]
        if st.op == "Gemm":
            src, W, _ = st.args
            rows = graph.constants[W].shape[0]
            body.append(
                f"    for (j = 0; j < {st.size}; ++j) for (i = 0; i < {n_in}; ++i) {{\n"
                f"        {p}_real acc = {t.lit(0)};\n"
                f"        for (k = 0; k < {rows}; ++k) acc += {p}_{ident(W)}[k * {st.size} + j] * {d(src, 'k')};\n"
                f"        {out}[j][i] = acc;\n    }}"
            )
            continue
        y, x = f"{ident(st.out)}[j]", val(a)
        if st.op == "Tanh":
            expr = f"({t.lit(1)} - {y} * {y}) * {d(a)}"
        elif st.op == "Sigmoid":
            expr = f"{y} * ({t.lit(1)} - {y}) * {d(a)}"
        elif st.op == "Relu":
            expr = f"({x} > {t.lit(0)} ? {d(a)} : {t.lit(0)})"
        elif st.op == "Log":
            expr = f"{d(a)} / {x}"
        elif st.op == "Exp":
            expr = f"{y} * {d(a)}"
        else:
            b = st.args[1]
            da, db, xb = d(a), d(b), val(b)
            zero = t.lit(0)
            if st.op in ("Add", "Sub"):
                sign = "+" if st.op == "Add" else "-"
                expr = " ".join(filter(None, [da or "", f"{sign} {db}" if db else ""])) or zero
                if expr.startswith("+ "):
                    expr = expr[2:]
            elif st.op == "Mul":
                expr = " + ".join(filter(None, [f"{da} * {xb}" if da else "", f"{x} * {db}" if db else ""])) or zero
            else:  # Div: (da b - a db) / b^2
                num = " - ".join(filter(None, [f"{da} * {xb}" if da else "", f"{x} * {db}" if db else ""]))
                if not da and db:
                    num = f"-{x} * {db}"
                expr = f"({num}) / ({xb} * {xb})" if num else zero
        body.append(f"    for (j = 0; j < {st.size}; ++j) for (i = 0; i < {n_in}; ++i) {out}[j][i] = {expr};")
    return decls, body + [
        f"    for (j = 0; j < {graph.n_out}; ++j) for (i = 0; i < {n_in}; ++i) "
        f"dydx[j * {n_in} + i] = {deriv[graph.steps[-1].out]}[j][i];"
    ]


C_SYNTAX = domain.Syntax(
    number=lambda v: repr(float(v)),
    clamp="{a} < {lo} ? {lo} : ({a} > {hi} ? {hi} : {a})",
    integer="(int){a}",
    item="{array}[{k}]",
)
"""how C writes a domain bound's interpolation (runtime/domain.py); the FMU's wrapper uses it too"""


def bound_function(table: domain.BoundTable, name: str) -> str:
    """`static double name(double x)`: the bound at x, after `static const double name_values[n]` (its table)."""
    steps = "\n".join(
        f"    {var} = {expr};" for var, expr in domain.interpolation(table, C_SYNTAX, "x", f"{name}_values")
    )
    return f"""static const double {name}_values[{table.n}] = {{{", ".join(repr(v) for v in table.values)}}};
static double {name}(double x)
{{
    double xc, s, t, w, v;
    int k;
{steps}
    return v;
}}
"""


def _bounds(graph, p: str) -> tuple[str, str]:
    """Tables and the check of the card's non-box domain (pipeline/runtime/domain.py): returns (definitions, checks)."""
    names, defs, checks = graph.card.input_names, [], []
    for m, b in enumerate(graph.card.bounds):
        table = domain.BoundTable.of_bound(b)
        relation = f"{b['input']} {'<=' if b['side'] == 'max' else '>='} {b['label']}, a function of {b['of']}"
        defs.append(f"/* {c_comment(f'bound {m}: {relation}')} */\n" + bound_function(table, f"{p}_bound{m}"))
        op = ">" if b["side"] == "max" else "<"
        i, j = names.index(b["input"]), names.index(b["of"])
        checks.append(f"    if (x[{i}] {op} {p}_bound{m}(x[{j}])) return {graph.name.upper()}_ERR_RANGE;")
    return "\n".join(defs), "\n".join(checks)


def header(graph, precision: str) -> str:
    n, N = graph.name, graph.name.upper()
    card = graph.card
    doc = "\n".join(
        c_comment(f" *   x[{k}] {i.name} [{i.unit}] in [{i.min:g}, {i.max:g}]") for k, i in enumerate(card.inputs)
    )
    doc += "\n" + "\n".join(c_comment(f" *   y[{k}] {o.name} [{o.unit}]") for k, o in enumerate(card.outputs))
    bounds = card.bounds
    if bounds:
        doc += "\n *   and " + "; ".join(
            c_comment(f"{b['input']} {'<=' if b['side'] == 'max' else '>='} {b['label']}") for b in bounds
        )
    return f"""/* {c_comment(f"{n}: {card.description}")}
 * Generated by `python -m pipeline codegen {n} --lang c --precision {precision}` from {n}.onnx
 * (sha256 {graph.sha256}). Dependency-free C99 (+ libm{" for log10" if bounds else ""}); computes in {precision}.
 * Inputs and outputs are double, in physical units:
{doc}
 */
#ifndef {N}_H
#define {N}_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {N}_N_INPUTS {graph.n_in}
#define {N}_N_OUTPUTS {graph.n_out}
#define {N}_OK 0
#define {N}_ERR_NONFINITE 1
#define {N}_ERR_RANGE 2
#define {N}_SHA256 "{graph.sha256}"

/* One sample: x[{N}_N_INPUTS] -> y[{N}_N_OUTPUTS]. Returns {N}_OK, or an error code with y set to NaN. */
int {n}_eval(const double *x, double *y);
/* One sample and its Jacobian dydx[{N}_N_OUTPUTS][{N}_N_INPUTS] (row-major, d y[i] / d x[j] at [i][j], physical units);
   the same error codes (y and dydx NaN on error). */
int {n}_eval_jac(const double *x, double *y, double *dydx);
/* n samples, row-major: x[n][{N}_N_INPUTS] -> y[n][{N}_N_OUTPUTS]. Returns the first error code in row order, or
   {N}_OK; a failing row's outputs are NaN, the other rows are evaluated. */
int {n}_eval_batch(size_t n, const double *x, double *y);
/* n samples as structure of arrays (CFD fields): x[k][i] is input k of sample i, y[j][i] output j; same codes. */
int {n}_eval_soa(size_t n, const double *const *x, double *const *y);
/* n Jacobians, row-major: dydx[n][{N}_N_OUTPUTS][{N}_N_INPUTS]; same codes. */
int {n}_eval_jac_batch(size_t n, const double *x, double *y, double *dydx);
/* eval_batch and eval_jac_batch without the input checks, for callers that applied their own policy (they
   extrapolate); NaN in, NaN out, except in a -ffast-math build (which assumes there is no NaN: a NaN input may come
   out finite). Only the checked entry points above refuse NaN in every build. */
void {n}_eval_batch_unchecked(size_t n, const double *x, double *y);
void {n}_eval_jac_batch_unchecked(size_t n, const double *x, double *y, double *dydx);

#ifdef __cplusplus
}}
#endif
#endif
"""


def source(graph, precision: str) -> str:
    """NAME.c: its sections in the order of the file, each written by its own emitter below."""
    t, p = _Types(precision), graph.name  # p: the prefix of every internal name
    ops = {s.op for s in graph.steps}
    bound_defs, bound_checks = _bounds(graph, p)
    return "".join(
        [
            _preamble(graph, precision, t, p),
            _bit_helpers(p, t, ops) + "\n",
            _math(p, t, False, ops) + "\n",
            bound_defs + "\n",
            _input_checks(graph, p, bound_checks),
            _forward_scalar(graph, p, t),
            _forward_vector(graph, p, t, ops),
            _forward_one(graph, p, t),
            _eval(graph, p),
            _jacobian(graph, p, t),
            _batched(graph, p),
        ]
    )


def _preamble(graph, precision: str, t: _Types, p: str) -> str:
    """The file comment, includes, the real type, the weights and biases, and the inputs' ranges."""
    n, N = graph.name, graph.name.upper()
    consts = [
        f"static const {p}_real {p}_{ident(name)}[{value.size}] = {{{', '.join(t.lit(v) for v in value.reshape(-1))}}};"
        for name, value in graph.constants.items()
    ]
    lo = ", ".join(repr(float(v)) for v in graph.lo)
    hi = ", ".join(repr(float(v)) for v in graph.hi)
    nl = "\n"
    return f"""/* Generated by `python -m pipeline codegen {n} --lang c --precision {precision}` from {n}.onnx (sha256 {graph.sha256}).
   See {n}.h for the interface. Build with any C99 or C++ compiler; no flag is required for speed: the batched
   path uses GNU C vectors where the compiler has them (-D{N}_NO_VECTOR turns them off). */
#include "{n}.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef {t.real} {p}_real;

{nl.join(consts)}
static const double {p}_lo[{graph.n_in}] = {{{lo}}};
static const double {p}_hi[{graph.n_in}] = {{{hi}}};

"""


def _bit_helpers(p: str, t: _Types, ops: set[str]) -> str:
    """Reading a float's bits and back, for the polynomial log (and exp, sigmoid, double tanh) of _math."""
    helpers = (
        f"""static {t.int} {p}_bits({p}_real v)
{{
    {t.int} b;
    memcpy(&b, &v, sizeof b);
    return b;
}}
"""
        if "Log" in ops
        else ""
    )
    if "Log" in ops or ops & {"Exp", "Sigmoid"} or ("Tanh" in ops and t.double):
        helpers += f"""
static {p}_real {p}_from_bits({t.int} b)
{{
    {p}_real v;
    memcpy(&v, &b, sizeof v);
    return v;
}}
"""
    return helpers


def _input_checks(graph, p: str, bound_checks: str) -> str:
    """The checks of an input row: finite, inside the ranges, inside the domain bounds (_bounds' checks)."""
    N = graph.name.upper()
    bound_checks_ok = bound_checks.replace(f"return {N}_ERR_RANGE;", "return 0;")
    return f"""/* 1 when v is NaN or infinite, read from its bits: unlike isfinite(), -ffast-math cannot optimize it away. */
static inline int {p}_nonfinite(double v)
{{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return (b & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL;
}}

static inline int {p}_check_bounds(const double *x)
{{
    (void)x;
{bound_checks_ok}
    return 1;
}}

static inline int {p}_check(const double *x)
{{
    int k;
    for (k = 0; k < {graph.n_in}; ++k)
        if ({p}_nonfinite(x[k])) return {N}_ERR_NONFINITE;
    for (k = 0; k < {graph.n_in}; ++k)
        if (x[k] < {p}_lo[k] || x[k] > {p}_hi[k]) return {N}_ERR_RANGE;
{bound_checks}
    return {N}_OK;
}}

/* 1 when {p}_check would return {N}_OK: the batched loop's test of each row (a block with a bad row is redone
   row by row through NAME_eval, which tells the codes apart). Branch-free over the inputs, so the compiler can
   do it in vector registers; the NaN test reads bits, as {p}_nonfinite does. */
static inline int {p}_ok(const double *x)
{{
    int k, bad = 0;
    for (k = 0; k < {graph.n_in}; ++k) {{
        uint64_t b;
        memcpy(&b, &x[k], sizeof b);
        bad |= ((b & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL) | (x[k] < {p}_lo[k]) | (x[k] > {p}_hi[k]);
    }}
    return !bad && {p}_check_bounds(x);
}}

"""


def _forward_scalar(graph, p: str, t: _Types) -> str:
    """One sample, scalar: unrolled for small nets (_unrolled), else one loop per node (_body)."""
    unrolled = _unrolled(graph, p, t, "xr", "y", "(double)")
    if unrolled:
        forward = "\n".join(
            [
                f"    {p}_real xr[{graph.n_in}];",
                "    int k;",
                f"    for (k = 0; k < {graph.n_in}; ++k) xr[k] = ({p}_real)x[k];",
                *unrolled,
            ]
        )
    else:  # each value an array over a layer's neurons
        decls, body = _body(graph, p, t, vector=False)
        x_, last_ = ident(graph.input), ident(graph.steps[-1].out)
        forward = "\n".join(
            [
                "    int j, k;",
                f"    {p}_real {x_}[{graph.n_in}];",
                *(f"    {d}" for d in decls),
                f"    for (k = 0; k < {graph.n_in}; ++k) {x_}[k] = ({p}_real)x[k];",
                *body,
                f"    for (j = 0; j < {graph.n_out}; ++j) y[j] = (double){last_}[j];",
            ]
        )
    return f"""/* One sample. */
static void {p}_forward(const double *x, double *y)
{{
{forward}
}}

"""


def _forward_vector(graph, p: str, t: _Types, ops: set[str]) -> str:
    """LANES samples at once in GNU C vectors, and whether the batched loop is also compiled for AVX2+FMA."""
    N, x, last = graph.name.upper(), ident(graph.input), ident(graph.steps[-1].out)
    vdecls, vbody = _body(graph, p, t, vector=True)
    forward_v = "\n".join(
        [
            "    int j, k;",
            *(f"    {d}" for d in vdecls),
            *vbody,
            f"    for (j = 0; j < {graph.n_out}; ++j) y[j] = {last}[j];",
            "    (void)k;",
        ]
    )
    return f"""#if (defined(__GNUC__) || defined(__clang__)) && !defined({N}_NO_VECTOR)
/* LANES samples at once, one per lane of a 32-byte GNU C vector: every multiply-add, exp and tanh fills a SIMD
   register (two where the target has 16-byte registers only: SSE2, NEON). Vectors go in and out of the static,
   always-inlined vector functions through pointers, never by value, so the ABI for passing 32-byte vectors
   (which differs with and without AVX) never comes into play. */
#define {N}_VECTOR_FN static inline __attribute__((always_inline))
typedef {p}_real {p}_vec __attribute__((vector_size(32)));
typedef {t.int} {p}_ivec __attribute__((vector_size(32)));
#define {N}_LANES {8 if not t.double else 4}
static const {p}_vec {p}_zero = {{0}};

/* mask ? a : b, lane by lane (C has no ?: for vectors) */
#define {N}_SEL(mask, a, b) (({p}_vec)(((mask) & ({p}_ivec)(a)) | (~(mask) & ({p}_ivec)(b))))

{_math(p, t, True, ops)}
{N}_VECTOR_FN void {p}_forward_v(const {p}_vec *{x}, {p}_vec *y)
{{
{forward_v}
}}
#else
#define {N}_LANES 1
#endif
/* A build without -march (a solver's usual -O2) still runs AVX2 and FMA where the machine has them: the batched
   loop is compiled twice, for x86-64 with AVX2+FMA and for the build's own target, and the first is chosen at run
   time by a CPU feature test (function multi-versioning; x86-64 with gcc >= 8 or clang; -D{N}_NO_DISPATCH turns
   it off). */
#if {N}_LANES > 1 && defined(__x86_64__) && !defined(__AVX2__) && !defined({N}_NO_DISPATCH) \
    && (defined(__clang__) || __GNUC__ >= 8)
#define {N}_DISPATCH 1
#endif

"""


def _forward_one(graph, p: str, t: _Types) -> str:
    """One sample with a layer's neurons in the lanes (_neurons_in_lanes), where the target has AVX."""
    N = graph.name.upper()
    one_consts, forward_one = _neurons_in_lanes(graph, p, t)
    return f"""/* One sample with a layer's neurons in the lanes (see codegen_c._neurons_in_lanes): NAME_eval's path where the
   target has 32-byte vector registers (AVX), natively or by the same run-time choice as the batched loop. On a
   target with 16-byte registers only (SSE2, NEON) the compiler splits 32-byte vectors through memory, which costs
   more than it saves for one sample: there NAME_eval keeps the scalar code. */
#if {N}_LANES > 1 && (defined(__AVX__) || defined({N}_DISPATCH))
{one_consts}

#if defined(__AVX__)
static void {p}_forward_one(const double *x, double *y)
{{
{forward_one}
    (void){p}_forward;  /* the scalar code is the other targets' path, unused here */
}}
#else
__attribute__((target("avx2,fma"))) static void {p}_forward_one_avx2(const double *x, double *y)
{{
{forward_one}
}}
static void {p}_forward_one(const double *x, double *y)
{{
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {p}_forward_one_avx2(x, y);
    else {p}_forward(x, y);
}}
#endif
#else
#define {p}_forward_one {p}_forward
#endif

"""


def _eval(graph, p: str) -> str:
    """NAME_eval: check, then the fastest one-sample path."""
    n, N = graph.name, graph.name.upper()
    return f"""int {n}_eval(const double *x, double *y)
{{
    int j;
    const int status = {p}_check(x);
    if (status != {N}_OK) {{
        for (j = 0; j < {graph.n_out}; ++j) y[j] = NAN;
        return status;
    }}
    {p}_forward_one(x, y);
    return {N}_OK;
}}

"""


def _jacobian(graph, p: str, t: _Types) -> str:
    """The analytic Jacobian (_jacobian_body) and its entry points, one sample and batched."""
    n, N, x, last = graph.name, graph.name.upper(), ident(graph.input), ident(graph.steps[-1].out)
    decls, body = _body(graph, p, t, vector=False)
    jdecls, jbody = _jacobian_body(graph, p, t)
    nl, ind = "\n", "\n    "
    return f"""/* y and dydx at one sample, unchecked: forward-mode derivatives node by node (d v / d x beside each value v). */
static void {p}_jac(const double *x, double *y, double *dydx)
{{
    int i, j, k;
    {p}_real {x}[{graph.n_in}];
    {ind.join(decls)}
    {ind.join(jdecls)}
    for (k = 0; k < {graph.n_in}; ++k) {x}[k] = ({p}_real)x[k];
{nl.join(body)}
{nl.join(jbody)}
    {p}_forward_one(x, y);  /* y as NAME_eval computes it, to the last bit (the vector code may contract to FMA) */
    (void)k;
    (void){last};
}}

int {n}_eval_jac(const double *x, double *y, double *dydx)
{{
    int j;
    const int status = {p}_check(x);
    if (status != {N}_OK) {{
        for (j = 0; j < {graph.n_out}; ++j) y[j] = NAN;
        for (j = 0; j < {graph.n_out * graph.n_in}; ++j) dydx[j] = NAN;
        return status;
    }}
    {p}_jac(x, y, dydx);
    return {N}_OK;
}}

void {n}_eval_jac_batch_unchecked(size_t n, const double *x, double *y, double *dydx)
{{
    size_t r;
    for (r = 0; r < n; ++r) {p}_jac(x + r * {graph.n_in}, y + r * {graph.n_out}, dydx + r * {graph.n_out * graph.n_in});
}}

int {n}_eval_jac_batch(size_t n, const double *x, double *y, double *dydx)
{{
    size_t r;
    int first = {N}_OK;
    for (r = 0; r < n; ++r) {{
        const int status = {n}_eval_jac(x + r * {graph.n_in}, y + r * {graph.n_out}, dydx + r * {graph.n_out * graph.n_in});
        if (status != {N}_OK && first == {N}_OK) first = status;
    }}
    return first;
}}


"""


def _batched(graph, p: str) -> str:
    """The batched entry points around one loop (_run_loop), dispatched to AVX2+FMA."""
    n, N = graph.name, graph.name.upper()
    run_loop = _run_loop(graph, p, N, n)
    return f"""/* The batched paths share one loop: sample i's input k is xs[k][i * stride_x], its output j ys[j][i * stride_y]. */
static int {p}_run_here(size_t n, const double *const *xs, size_t stride_x, double *const *ys, size_t stride_y, int checked)
{run_loop}
#if defined({N}_DISPATCH)
__attribute__((target("avx2,fma"))) static int {p}_run_avx2(size_t n, const double *const *xs, size_t stride_x, double *const *ys, size_t stride_y, int checked)
{run_loop}
static int {p}_run(size_t n, const double *const *xs, size_t stride_x, double *const *ys, size_t stride_y, int checked)
{{
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return {p}_run_avx2(n, xs, stride_x, ys, stride_y, checked);
    return {p}_run_here(n, xs, stride_x, ys, stride_y, checked);
}}
#else
#define {p}_run {p}_run_here
#endif

int {n}_eval_batch(size_t n, const double *x, double *y)
{{
    const double *xs[{graph.n_in}];
    double *ys[{graph.n_out}];
    int k;
    for (k = 0; k < {graph.n_in}; ++k) xs[k] = x + k;
    for (k = 0; k < {graph.n_out}; ++k) ys[k] = y + k;
    return {p}_run(n, xs, {graph.n_in}, ys, {graph.n_out}, 1);
}}

void {n}_eval_batch_unchecked(size_t n, const double *x, double *y)
{{
    const double *xs[{graph.n_in}];
    double *ys[{graph.n_out}];
    int k;
    for (k = 0; k < {graph.n_in}; ++k) xs[k] = x + k;
    for (k = 0; k < {graph.n_out}; ++k) ys[k] = y + k;
    {p}_run(n, xs, {graph.n_in}, ys, {graph.n_out}, 0);
}}

int {n}_eval_soa(size_t n, const double *const *x, double *const *y)
{{
    return {p}_run(n, x, 1, y, 1, 1);
}}
"""


def _run_loop(graph, p: str, N: str, n: str) -> str:
    """The body of the batched loop (sample i's input k is xs[k][i * stride_x], its output j ys[j][i * stride_y]),
    written once: source() compiles it under two names, for the build's target and for AVX2+FMA."""
    return f"""{{
    size_t i = 0;
    int b, j, k, first = {N}_OK;
    double row[{graph.n_in}], out[{graph.n_out}];
#if {N}_LANES > 1
    for (; i + {N}_LANES <= n; i += {N}_LANES) {{
        {p}_vec xv[{graph.n_in}], yv[{graph.n_out}];
        {p}_real lanes[{graph.n_in}][{N}_LANES];  /* the block transposed: input k of sample b at [k][b] */
        int valid = 1;
        for (b = 0; b < {N}_LANES; ++b) {{
            for (k = 0; k < {graph.n_in}; ++k) row[k] = xs[k][(i + b) * stride_x];
            if (checked && !{p}_ok(row)) valid = 0;
            for (k = 0; k < {graph.n_in}; ++k) lanes[k][b] = ({p}_real)row[k];
        }}
        memcpy(xv, lanes, sizeof xv);  /* whole vectors at once (lane by lane, gcc warns of uninitialized ones) */
        if (valid) {{
            {p}_forward_v(xv, yv);
            for (j = 0; j < {graph.n_out}; ++j)
                for (b = 0; b < {N}_LANES; ++b) ys[j][(i + b) * stride_y] = (double)yv[j][b];
            continue;
        }}
        for (b = 0; b < {N}_LANES; ++b) {{  /* a block with a bad row: one sample at a time */
            int status;
            for (k = 0; k < {graph.n_in}; ++k) row[k] = xs[k][(i + b) * stride_x];
            status = {n}_eval(row, out);
            if (status != {N}_OK && first == {N}_OK) first = status;
            for (j = 0; j < {graph.n_out}; ++j) ys[j][(i + b) * stride_y] = out[j];
        }}
    }}
#endif
    for (; i < n; ++i) {{  /* the tail, or every sample without vectors */
        int status = {N}_OK;
        for (k = 0; k < {graph.n_in}; ++k) row[k] = xs[k][i * stride_x];
        if (checked) status = {n}_eval(row, out);
        else {p}_forward_one(row, out);
        if (status != {N}_OK && first == {N}_OK) first = status;
        for (j = 0; j < {graph.n_out}; ++j) ys[j][i * stride_y] = out[j];
    }}
    (void)b;
    return first;
}}
"""


def cmake_config(name: str) -> str:
    """NAME-config.cmake: `find_package(NAME CONFIG PATHS <folder>)` then `target_link_libraries(app NAME::NAME)`."""
    return f"""# Generated by `python -m pipeline codegen {name} --lang c`: a CMake package for the generated surrogate.
#   find_package({name} REQUIRED CONFIG PATHS <this folder>)
#   target_link_libraries(my_solver PRIVATE {name}::{name})
# The target compiles {name}.c into the consumer with the consumer's own flags (no prebuilt library).
if(NOT TARGET {name}::{name})
  add_library({name}::{name} INTERFACE IMPORTED)
  set_target_properties({name}::{name} PROPERTIES
    INTERFACE_SOURCES "${{CMAKE_CURRENT_LIST_DIR}}/{name}.c"
    INTERFACE_INCLUDE_DIRECTORIES "${{CMAKE_CURRENT_LIST_DIR}}")
  if(UNIX)
    set_property(TARGET {name}::{name} APPEND PROPERTY INTERFACE_LINK_LIBRARIES m)
  endif()
endif()
set({name}_FOUND TRUE)
"""


def pkg_config(graph) -> str:
    """NAME.pc, relocatable (${pcfiledir}): cflags for the header; libs for libNAME.a built in this folder with
    `cc -O2 -c NAME.c && ar rcs libNAME.a NAME.o` (see the README)."""
    return f"""prefix=${{pcfiledir}}
includedir=${{prefix}}
libdir=${{prefix}}

Name: {graph.name}
Description: generated surrogate {graph.name} (sha256 {graph.sha256[:16]})
Version: 1.0
Cflags: -I${{includedir}}
Libs: -L${{libdir}} -l{graph.name} -lm
"""


def c_code(graph, precision: str = "float") -> tuple[str, str]:
    """The C header and source of a graph (what `generate` writes; the FMU and the code_saturne case embed them)."""
    return header(graph, precision), source(graph, precision)


def c_files(graph, precision: str) -> dict[str, str]:
    """NAME.h, NAME.c, a CMake package file and a pkg-config file."""
    header, source = c_code(graph, precision)
    return {
        f"{graph.name}.h": header,
        f"{graph.name}.c": source,
        f"{graph.name}-config.cmake": cmake_config(graph.name),
        f"{graph.name}.pc": pkg_config(graph),
    }
