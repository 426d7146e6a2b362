"""Exported ONNX model -> Graph: the verified, per-sample steps that every code generator walks.

read_graph() checks the file as the loader does (verify(): its sha256 against the card file beside it, the card's
name against the name asked for), then turns each node into a Step on per-sample vectors, with the Gemm weights
and constants beside them. Anything the generators do not handle is refused with the operator's name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ..errors import CardError, PipelineError
from ..runtime import loader
from ..runtime.card import Card
from ..runtime.loader import CARD_KEY
from .text import check_name

UNARY = ("Tanh", "Sigmoid", "Relu", "Log", "Exp")
BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
RTOL, ATOL_FRACTION = 1e-5, 1e-6  # agreement with onnxruntime: |c - ort| <= RTOL |ort| + ATOL_FRACTION max|ort|
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

    The loader's own checks (loader.read_verified on `blob`): the digest the model carries inside itself, and the
    name inside the model's card against the name asked for (or the file's stem), so that a renamed model cannot
    write another surrogate's code. The card file beside a path is checked by read_graph, which reads the model and
    its card file as the loader does (loader.read_verified), an export between or killed between its renames
    included.
    """
    path = Path(path)
    expected = expected_name or path.stem
    if card.name != expected:
        raise PipelineError(
            f"{path}: the model inside is '{card.name}', not '{expected}': refusing to generate its code under "
            f"another name"
        )
    try:
        loader.read_verified(blob, expected)
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


def read_graph(source: Path | bytes, expected_name: str | None = None) -> Graph:
    """Parse an exported model (a path, or bytes the caller has verified) into steps, after the loader's checks
    (loader.read_verified: digest, card file or its pending successor, name); refuses operators and forms the
    generators do not handle, and files that are not ONNX models, with one line."""
    blob, path, expected_name = _read_blob(source, expected_name)
    model, card = _parse(blob, path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        path = Path(f"{card.name}.onnx")
    verify(path, blob, card, expected_name)
    check_name(card.name)
    _check_numbers(path, card)
    g = model.graph
    sizes = {v.name: v.type.tensor_type.shape.dim[-1].dim_value for v in (*g.input, *g.output, *g.value_info)}
    steps, constants = _steps(g, sizes, path)
    n_in, n_out = sizes[g.input[0].name], sizes[g.output[0].name]
    if len(card.inputs) != n_in:
        raise PipelineError(f"{path}: the card names {len(card.inputs)} inputs, the graph takes {n_in}")
    if len(card.outputs) != n_out:  # the C would shift rows, onnxruntime repeat a column
        raise PipelineError(f"{path}: the card names {len(card.outputs)} outputs, the graph returns {n_out}")
    lo, hi = [v.min for v in card.inputs], [v.max for v in card.inputs]
    return Graph(
        card.name, g.input[0].name, n_in, n_out, steps, constants, lo, hi, card, hashlib.sha256(blob).hexdigest()
    )


def _read_blob(source: Path | bytes, expected_name: str | None) -> tuple[bytes, Path, str | None]:
    """(the model's bytes, its path for messages, the name it must have): a path is read as the loader reads it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), Path("model"), expected_name
    path = Path(source)
    try:
        blob, _, _ = loader.read_verified(path)
    except loader.LoaderError as e:
        message = str(e)
        raise PipelineError(message if str(path.name) in message else f"{path}: {message}") from None
    return blob, path, expected_name or path.stem


def _parse(blob: bytes, path: Path) -> tuple[onnx.ModelProto, Card]:
    """The ONNX model with its shapes inferred, and the card it carries; anything unreadable is one line."""
    try:
        model = onnx.load_from_string(blob)
        meta = {p.key: p.value for p in model.metadata_props}
        if CARD_KEY not in meta:
            raise PipelineError(f"{path}: no '{CARD_KEY}' metadata: not exported by this pipeline")
        card = Card.from_dict(json.loads(meta[CARD_KEY]), str(path))
        return shape_inference.infer_shapes(model), card
    except PipelineError:
        raise
    except CardError as e:
        raise PipelineError(str(e)) from None
    except Exception as e:  # protobuf's DecodeError, a truncated file, JSON errors: one line, not a traceback
        raise PipelineError(
            f"{path}: not a readable ONNX model ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'truncated or corrupt'})"
        ) from None


def _steps(g: onnx.GraphProto, sizes: dict[str, int], path: Path) -> tuple[list[Step], dict[str, np.ndarray]]:
    """The graph's nodes as steps, and the constants they use (Gemm weights as [in][out], biases and a binary op's
    constant operands broadcast to the vector's size)."""
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
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
    return steps, constants
