"""Load an exported surrogate and evaluate it: numpy and onnxruntime only (no torch), for solvers and scripts.

    from pipeline.loader import load
    f = load("exported/paraboloid.onnx")
    f(np.array([[0.3, 0.4]]))            # -> array([[0.25]])  shape (N, n_outputs), physical units
    f.card.inputs                        # names, units, valid ranges (a pipeline.card.Card)

    f.named(T=[300.0, 310.0], p=1e6)      # -> {"rho": array([...]), ...}: named columns, broadcast
    f.point(0.3, 0.4)                    # one sample through pre-bound buffers: the fastest single call

Integrity. The model card travels inside the .onnx file (metadata key "surrogate_card"), and so does a digest of
everything else: export appends, as the file's last field, the metadata entry "surrogate_digest" = sha256 of the
serialized model before it (protobuf writes a model's fields in field-number order, and metadata_props, field 14,
comes after the graph and the opsets, so a re-saved model keeps the entry at its end). `verify_integrity` checks it at
every load, with or without the card file NAME.json beside the model; when that file is there, its sha256 and its
copy of the card must match too. The session is built from the very bytes that were checked.

Model and card file are replaced in two renames (the .onnx first); a card for the new model waits under
.NAME.json.pending until the second one. A reader reads NAME.json before NAME.onnx, and accepts the pending card when
it is the one that matches: so readers during an export, and after an export killed between the renames, load the
model with its own card; any other mismatch is refused. Exports of one name take turns on a lock file
(files.export_lock). read_verified() is this reading for every other consumer (C backend, codegen, FMU), and a
Model keeps the bytes it checked (Model.blob) for jacobian() to compile.

Inputs are checked against the card before they reach the network, its box and, where the card has
card.bounds (see card.py and domain.py), its bounds:
  out_of_range = "error" (default: LoaderError naming the column or bound and the first bad value),
                 "clip" (move the point onto the box and the bounds), "warn" (evaluate, and warn with the count),
                 or "allow";
  nonfinite    = "error" (default) or "nan" (those rows come back as NaN).
float32 inputs are compared within float32's rounding of the bounds (0.05 arrives as 0.0500000007).
Large batches are evaluated in chunks of CHUNK_ROWS rows, which keep the activations in cache: past ~10^5 rows
one onnxruntime call costs more per sample than several smaller ones.

Threads. A Model may be shared between threads: onnxruntime's run is thread-safe, and point() binds its one-sample
buffers per thread.

Session options are chosen for a solver's call loop: one intra-op thread without spinning for the small batches a
solver sends (worker threads that spin between calls burn cores the solver needs), and a parallel session only for
large batches, again without spinning. `make bench` shows both choices in numbers.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import json
import math
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import CardError, LoaderError
from . import domain
from .card import Card

CARD_KEY = "surrogate_card"
DIGEST_KEY = "surrogate_digest"
CHUNK_ROWS = 32768
OUT_OF_RANGE = ("error", "clip", "warn", "allow")
NONFINITE = ("error", "nan")
PAIR_READ_ATTEMPTS = 20
"""reads of a model and its card file that may meet an export between its two renames before giving up"""


# --- integrity: the digest inside the model -------------------------------------------------------------------------
# Just enough protobuf to walk a ModelProto's top-level fields (the graph is skipped by its length) and to read its
# metadata entries: the loader does not import the onnx package.

_MODEL_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1, value = 2}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _fields(buf: bytes, start: int = 0, end: int | None = None):
    """(field number, wire type, start of the field, start of its value, end) for each field of a message."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        first = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, value_end = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value_end = pos + length
        elif wire in (1, 5):
            value_end = pos + (8 if wire == 1 else 4)
        else:
            raise ValueError(f"wire type {wire}")
        if number == 0 or value_end > end:
            raise ValueError("truncated field")
        yield number, wire, first, pos, value_end
        pos = value_end


def _metadata(blob: bytes) -> list[tuple[str, str, int]]:
    """The model's metadata entries in file order: (key, value, offset where the entry's field starts)."""
    entries = []
    for number, wire, first, start, end in _fields(blob):
        if number == _MODEL_METADATA_PROPS and wire == 2:
            kv = {n: blob[s:e].decode("utf-8") for n, w, _, s, e in _fields(blob, start, end) if w == 2}
            entries.append((kv.get(1, ""), kv.get(2, ""), first))
    return entries


def digest_entry(hexdigest: str) -> bytes:
    """The encoded metadata_props field {DIGEST_KEY: hexdigest}, as protobuf writes it."""
    entry = _length_delimited(1, DIGEST_KEY.encode()) + _length_delimited(2, hexdigest.encode())
    return _length_delimited(_MODEL_METADATA_PROPS, entry)


def seal(body: bytes) -> bytes:
    """A serialized model (without a digest) -> the same model with its digest entry appended as its last field."""
    return body + digest_entry(hashlib.sha256(body).hexdigest())


def _check_sealed(blob: bytes, name: str) -> dict:
    """The card inside a sealed model (as JSON), after checking its digest; LoaderError naming what is wrong
    otherwise."""
    try:
        entries = _metadata(blob)
    except (ValueError, UnicodeDecodeError):
        raise LoaderError(f"{name}: not an ONNX model, or truncated ({len(blob)} bytes)") from None
    digests = [e for e in entries if e[0] == DIGEST_KEY]
    cards = [e for e in entries if e[0] == CARD_KEY]
    if not cards:
        raise LoaderError(f"{name}: the model has no '{CARD_KEY}' metadata: not exported by this pipeline")
    if not digests:
        raise LoaderError(
            f"{name}: the model has no '{DIGEST_KEY}' metadata: exported by an older pipeline or "
            f"re-saved by another tool; export it again"
        )
    key, expected, offset = digests[-1]
    if len(digests) > 1 or len(cards) > 1 or blob[offset:] != digest_entry(expected):
        raise LoaderError(
            f"{name}: the '{DIGEST_KEY}' entry is not the model's last field: the file was changed after export"
        )
    actual = hashlib.sha256(blob[:offset]).hexdigest()
    if actual != expected:
        raise LoaderError(
            f"{name}: graph or weights changed since export (sha256 {actual[:12]}…, the digest "
            f"inside the model says {expected[:12]}…); export it again"
        )
    try:
        card = json.loads(cards[0][1])
    except json.JSONDecodeError as e:  # a digest over a bad card: not from export, but say so in one line
        raise LoaderError(f"{name}: the '{CARD_KEY}' metadata is not valid JSON ({e.msg})") from None
    if not isinstance(card, dict) or not isinstance(card.get("inputs"), list):
        raise LoaderError(f"{name}: the '{CARD_KEY}' metadata is not a model card")
    return card


# --- integrity: the model and its card file ------------------------------------------------------------------------


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def pending_card_path(model_path: str | os.PathLike) -> Path:
    """Where export keeps the new card between replacing the model and replacing the card file."""
    path = Path(model_path)
    return path.with_name(f".{path.stem}.json.pending")


def _read_json(path: Path, required: bool) -> dict | None:
    """A card file, or None where there is none (or, not required, where it cannot be read as one)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        if not required:
            return None
        raise LoaderError(f"cannot read the card {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        card = json.loads(text)
    except json.JSONDecodeError as e:
        if not required:
            return None
        raise LoaderError(
            f"{path.name}: the card file is not valid JSON ({e.msg} at line {e.lineno}); "
            f"export the model again, or delete {path.name}"
        ) from None
    if not isinstance(card, dict):
        if not required:
            return None
        raise LoaderError(f"{path.name}: the card file is not a JSON object")
    return card


def _read_pair(path: Path) -> tuple[bytes, dict | None]:
    """The model's bytes and the card file that belongs to them (None where there is no card file).

    The card file is read before the model: export replaces the model first, so a reader can only meet a model
    newer than the card file; the new card then waits in the pending file. Any other mismatch that persists over
    PAIR_READ_ATTEMPTS reads is refused.
    """
    for attempt in range(PAIR_READ_ATTEMPTS):
        side = _read_json(card_path(path), required=True)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise LoaderError(f"no model file at {path}") from None
        except OSError as e:
            raise LoaderError(f"cannot read {path}: {e.strerror or e}") from None
        sha = hashlib.sha256(blob).hexdigest()
        if side is None or side.get("onnx_sha256") == sha:
            return blob, side
        pending = _read_json(pending_card_path(path), required=False)
        if pending is not None and pending.get("onnx_sha256") == sha:
            return blob, pending
        _check_sealed(blob, path.name)  # a damaged model is not a race: say so at once
        time.sleep(0.001 * attempt)  # an export between our two reads: it finishes its renames in microseconds
    raise LoaderError(
        f"{path.name}: sha256 {sha[:12]}… does not match its card {card_path(path).name} "
        f"({str(side.get('onnx_sha256'))[:12]}…): the model and card are out of step; export again"
    )


def parse_card(d: dict, name: str) -> Card:
    """A card as JSON -> Card (pipeline/runtime/card.py), with its version checked; LoaderError in one line otherwise."""
    try:
        return Card.from_dict(d, name)
    except CardError as e:
        raise LoaderError(str(e)) from None


def read_verified(source: str | os.PathLike | bytes, expected_name: str | None = None) -> tuple[bytes, Card, str]:
    """(bytes, card, display name) of a model whose digest, card file and name check out: the one reading of a model
    and its card file, shared by the loader, the C backend and codegen (pipeline/codegen/graph.py), so that each
    accepts the same states (an export between or killed between its renames included) and refuses the same ones.
    The bytes returned are the bytes checked: parse these, never the path again."""
    return _verified(source, expected_name)


def _verified(source: str | os.PathLike | bytes, expected_name: str | None) -> tuple[bytes, Card, str]:
    """(bytes, card, display name) of a model whose digest, card file and name check out."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        blob, side, name = bytes(source), None, "model"
    elif not isinstance(source, (str, os.PathLike)):
        raise LoaderError(f"a model is a path or the bytes of an .onnx file, not {type(source).__name__}")
    else:
        path = Path(source)
        if not path.is_file():
            raise LoaderError(f"no model file at {path}")
        blob, side = _read_pair(path)
        name = path.name
    card = _check_sealed(blob, name)
    if side is not None and {k: v for k, v in side.items() if k != "onnx_sha256"} != card:
        raise LoaderError(
            f"{name}: its card file {card_path(name).name} says something else than the card inside "
            f"the model (edited by hand?); export it again, or delete the card file"
        )
    parsed = parse_card(card, name)
    if expected_name is not None and parsed.name != expected_name:
        raise LoaderError(f"{name}: holds surrogate {parsed.name!r}, not {expected_name!r}")
    if name == "model":  # bytes: from here on, messages name the surrogate the card names
        name = parsed.name
    return blob, parsed, name


def verify_integrity(path_or_bytes: str | os.PathLike | bytes, expected_name: str | None = None) -> Card:
    """Check a model's embedded digest (and, given a path, its card file NAME.json where there is one); returns its
    card. Raises LoaderError in one line naming what is wrong.

    Given a path, the file is read once; a caller that goes on to parse the model itself should read the bytes and
    pass them, so that the bytes checked are the bytes used. expected_name: the surrogate the card must name.
    """
    return _verified(path_or_bytes, expected_name)[1]


# --- sessions ------------------------------------------------------------------------------------------------------


def session_options(threads: int = 1, spinning: bool = False) -> ort.SessionOptions:
    """onnxruntime options for use inside a solver's loop: fixed thread count, spinning off by default."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


def make_session(model: str | os.PathLike | bytes, threads: int = 1, spinning: bool = False) -> ort.InferenceSession:
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, session_options(threads, spinning), providers=["CPUExecutionProvider"])


def read_card(session: ort.InferenceSession) -> Card:
    meta = session.get_modelmeta().custom_metadata_map
    if CARD_KEY not in meta:
        raise LoaderError(f"the model has no '{CARD_KEY}' metadata: not exported by this pipeline")
    return parse_card(json.loads(meta[CARD_KEY]), "model")


def _check_interface(session: ort.InferenceSession, card: Card, name: str) -> None:
    """The graph takes "x" of (N, n_inputs) and returns "y" of (N, n_outputs), as many as the card names: a card
    with more outputs than its graph would have onnxruntime repeat a column and the C shift rows."""
    ins, outs = session.get_inputs(), session.get_outputs()
    shape = lambda v: v.shape[-1] if v.shape and isinstance(v.shape[-1], int) else None  # noqa: E731
    if [v.name for v in ins] != ["x"] or [v.name for v in outs] != ["y"]:
        raise LoaderError(f"{name}: the graph's inputs/outputs are not 'x' -> 'y': not exported by this pipeline")
    if shape(ins[0]) != len(card.inputs) or shape(outs[0]) != len(card.outputs):
        raise LoaderError(
            f"{name}: the card names {len(card.inputs)} input(s) and {len(card.outputs)} output(s), the graph "
            f"takes {shape(ins[0])} and returns {shape(outs[0])}"
        )


def _fmt(v: float) -> str:
    """Every digit a float64 needs (0.05 vs 0.05000000074505806), without a trailing '.0'."""
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r


log10 = math.log10  # a module global: faster to call than through an attribute


class _PointBound:
    """One domain bound, precomputed for a pure-Python check of one point (the numpy path costs ~10 µs).

    Most points lie far from the bound, so the check answers in steps, cheapest first: beyond the bound's extreme
    value, then beyond its extreme over the table interval the point falls in (a C bisect), and only then the
    interpolation, with its log. Values are stored times `sign` (+1 for "max", -1 for "min") so that one
    comparison serves both sides.
    """

    __slots__ = (
        "i",
        "j",
        "log",
        "lo",
        "hi",
        "s_lo",
        "per_s",
        "values",
        "slopes",
        "sign",
        "margin",
        "floor",
        "knots",
        "interval_floor",
    )

    def __init__(self, bound: dict, names: list[str]):
        table = domain.BoundTable.of_bound(bound)  # the interpolation's constants, as every evaluator has them
        self.i, self.j = names.index(table.input), names.index(table.of)
        self.log, self.lo, self.hi, self.s_lo = table.log, table.lo, table.hi, table.s_lo
        self.sign = 1.0 if table.side == "max" else -1.0
        self.values = [self.sign * v for v in table.values]
        n = len(self.values)
        self.per_s = (n - 1) / (table.s_hi - self.s_lo)
        self.slopes = [b - a for a, b in zip(self.values, self.values[1:])]
        # rounding between this arithmetic and domain.bound_value's: points closer than this go to the numpy check
        self.margin = 1e-9 * max(abs(v) for v in self.values) + 1e-300
        self.floor = min(self.values) - self.margin
        s = [self.s_lo + k / self.per_s for k in range(n)]
        self.knots = [10.0**v if self.log else v for v in s][1:-1]  # interior knots, `of` units
        self.interval_floor = [min(a, b) - self.margin for a, b in zip(self.values, self.values[1:])]

    def clearly_inside(self, x) -> bool:
        """True where the point is inside by more than rounding; False sends it to the numpy check (domain.py)."""
        v = x[self.i] * self.sign
        if v < self.floor:
            return True
        w = x[self.j]
        k = bisect.bisect_right(self.knots, w)  # a knot's neighbourhood may land one interval off: both are safe
        if v < self.interval_floor[k]:  # below both ends of the interval: linear in s, so below all of it
            return True
        w = self.lo if w < self.lo else self.hi if w > self.hi else w
        t = ((log10(w) if self.log else w) - self.s_lo) * self.per_s  # in [k, k + 1], give or take rounding
        return v < self.values[k] + (t - k) * self.slopes[k] - self.margin


class Model:
    """An exported surrogate: call it with an (N, n_inputs) array in the card's input order and units.

    `path` is the .onnx file, or its bytes (checked the same way, without a card file).
    """

    def __init__(
        self,
        path: str | os.PathLike | bytes,
        threads: int = 1,
        spinning: bool = False,
        out_of_range: str = "error",
        nonfinite: str = "error",
    ):
        if out_of_range not in OUT_OF_RANGE or nonfinite not in NONFINITE:
            raise LoaderError(f"out_of_range must be one of {OUT_OF_RANGE} and nonfinite one of {NONFINITE}")
        self.out_of_range, self.nonfinite = out_of_range, nonfinite
        blob, self.card, self.name = _verified(path, None)
        self.path = None if isinstance(path, (bytes, bytearray, memoryview)) else Path(path)
        self.blob = blob
        """the verified bytes this model was built from: jacobian() and the C backend compile these, never the path
        again (an export of the same name may have replaced the file since)"""
        # The session is built from the bytes that were checked, not from the path, which an export may replace.
        try:
            self.session = make_session(blob, threads, spinning)
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors share no base class worth naming
            raise LoaderError(f"{self.name}: onnxruntime cannot load it: {str(e).strip().splitlines()[0]}") from None
        if read_card(self.session) != self.card:  # the same bytes, so only a parser of ours could differ
            raise LoaderError(f"{self.name}: onnxruntime reads another card than the one checked")
        _check_interface(self.session, self.card, self.name)
        self.input_names, self.output_names = self.card.input_names, self.card.output_names
        self.lo = np.array([i.min for i in self.card.inputs], dtype=np.float64)
        self.hi = np.array([i.max for i in self.card.inputs], dtype=np.float64)
        self._lo, self._hi = self.lo.tolist(), self.hi.tolist()
        # float32 inputs are compared with the bounds as float32 rounds them: 0.05 arrives as 0.0500000007.
        self._lo32, self._hi32 = self.lo.astype(np.float32), self.hi.astype(np.float32)
        self._lo32w = np.minimum(self.lo, self._lo32.astype(np.float64))
        self._hi32w = np.maximum(self.hi, self._hi32.astype(np.float64))
        self.bounds = self.card.bounds
        self._point_bounds = [_PointBound(b, self.input_names) for b in self.bounds]
        # point()'s one-sample buffers, bound to the session once per thread (see _point_run)
        self._local = threading.local()

    def __call__(self, X) -> np.ndarray:
        """(N, n_inputs) array in the card's order and units -> (N, n_outputs), float64 unless X is float32."""
        X = np.atleast_2d(np.asarray(X))
        is32 = X.dtype == np.float32
        if X.ndim != 2 or X.shape[1] != len(self.input_names):
            raise LoaderError(
                f"expected inputs of shape (N, {len(self.input_names)}) for {self.input_names}, got {X.shape}"
            )
        bad_rows = None
        # Fast path: every value in range (NaN fails the comparison too). Elementwise, because numpy's axis-0
        # min/max over a narrow (N, 2) array is strided and costs several times the network itself.
        if not np.logical_and(
            X >= self._lo32 if is32 else X >= self.lo, X <= self._hi32 if is32 else X <= self.hi
        ).all() or (self.bounds and self._outside_domain(np.asarray(X, dtype=np.float64), is32).any()):
            X, bad_rows = self._checked(X.astype(np.float64), is32)
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        Y = np.empty((len(X), len(self.output_names)), dtype=np.float32)
        for start in range(0, len(X), CHUNK_ROWS):
            Y[start : start + CHUNK_ROWS] = self.session.run(["y"], {"x": X32[start : start + CHUNK_ROWS]})[0]
        Y = Y.astype(np.float32 if is32 else np.float64, copy=False)
        if bad_rows is not None:
            Y[bad_rows] = np.nan
        return Y

    def named(self, **columns) -> dict[str, np.ndarray]:
        """Inputs by name (arrays or scalars, broadcast together) -> outputs by name."""
        missing = [n for n in self.input_names if n not in columns]
        extra = [n for n in columns if n not in self.input_names]
        if missing or extra:
            raise LoaderError(f"inputs are {self.input_names}; missing {missing}, unknown {extra}")
        arrays = np.broadcast_arrays(*(np.asarray(columns[n], dtype=np.float64) for n in self.input_names))
        shape = arrays[0].shape
        Y = self(np.stack([a.reshape(-1) for a in arrays], axis=1))
        return {n: Y[:, k].reshape(shape) for k, n in enumerate(self.output_names)}

    def _outside_domain(self, X: np.ndarray, is32: bool = False) -> np.ndarray:
        """Boolean (N,): rows that break a domain bound (float32 inputs: beyond float32's rounding of it)."""
        bad = np.zeros(len(X), dtype=bool)
        for b in self.bounds:
            i, j = self.input_names.index(b["input"]), self.input_names.index(b["of"])
            limit = domain.bound_value(b, X[:, j])
            if b["side"] == "max":
                bad |= X[:, i] > (np.maximum(limit, limit.astype(np.float32)) if is32 else limit)
            else:
                bad |= X[:, i] < (np.minimum(limit, limit.astype(np.float32)) if is32 else limit)
        return bad

    def _checked(self, X: np.ndarray, is32: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply the non-finite and out-of-range policies; returns inputs and the rows to set to NaN."""
        finite = np.isfinite(X).all(axis=1)
        bad_rows = None
        if not finite.all():
            if self.nonfinite == "error":
                row = int(np.argmin(finite))
                raise LoaderError(
                    f"{self.name}: {int((~finite).sum())} input row(s) with NaN or inf "
                    f"(first: row {row}, {dict(zip(self.input_names, X[row].tolist()))})"
                )
            bad_rows = ~finite
            # Placeholders for the rows that come back as NaN: the box's lower corner, which a "min" domain bound
            # may exclude; they are left out of the range checks below (the user never passed these values).
            X = np.where(finite[:, None], X, self.lo)
        if self.out_of_range == "allow":
            return X, bad_rows
        lo, hi = (self._lo32w, self._hi32w) if is32 else (self.lo, self.hi)
        outside = ((X < lo) | (X > hi)) & finite[:, None]
        box_rows = outside.any(axis=1)
        dom_rows = (
            self._outside_domain(np.clip(X, self.lo, self.hi), is32) & finite if self.bounds else box_rows & False
        )
        n_bad = int((box_rows | dom_rows).sum())
        if not n_bad:
            return X, bad_rows
        if self.out_of_range == "error":
            if box_rows.any():
                row, col = np.argwhere(outside)[0]
                raise LoaderError(
                    f"{self.name}: input '{self.input_names[col]}' = {_fmt(X[row, col])} (row {row}) "
                    f"is outside its valid range [{_fmt(self.lo[col])}, {_fmt(self.hi[col])}]; "
                    f"{n_bad} row(s) out of range"
                )
            row = int(np.argmax(dom_rows))
            raise LoaderError(
                f"{self.name}: {domain.describe(self.bounds, self.card.inputs, X[row])} (row {row}), "
                f"outside the model's domain; {n_bad} row(s) out of range"
            )
        if self.out_of_range == "clip":
            X = np.clip(X, self.lo, self.hi)
            if self.bounds:
                X = domain.clip(self.bounds, self.input_names, X)
        else:
            warnings.warn(
                f"{self.name}: {n_bad} input row(s) outside the valid range or domain; the surrogate "
                f"extrapolates there",
                stacklevel=3,
            )
        return X, bad_rows

    def jacobian(self, X) -> np.ndarray:
        """dy/dx of shape (N, n_outputs, n_inputs) in physical units, float64, with this model's policies.

        Computed by the generated C (backend "c", compiled on first use from the bytes this model was loaded from;
        needs a C compiler and the `c` extra, `pip install "surrogate-pipeline[c]"`): onnxruntime has no derivatives, and one analytic implementation of the derivative (the
        generator's, tested against central differences) is better than a second copy of the graph's semantics
        in numpy or a second graph output that every exported file would carry.
        """
        if getattr(self, "_c_model", None) is None:
            CModel = backend_class("c", "jacobian()")
            # From the bytes this model was loaded from and checked, not from the path: after a re-export of the
            # same name, f(X) and f.jacobian(X) must still be one model.
            self._c_model = CModel(self.blob, out_of_range=self.out_of_range, nonfinite=self.nonfinite)
        return self._c_model.jacobian(X)

    def point(self, *values: float) -> np.ndarray:
        """One sample, e.g. f.point(0.3, 0.4) -> array of n_outputs floats: the fastest path for scalar calls.

        Safe to call from several threads at once: each thread has its own buffers bound to the session.
        """
        if len(values) != len(self.input_names):
            raise LoaderError(f"point() takes {len(self.input_names)} values {self.input_names}, got {len(values)}")
        for v, lo, hi in zip(values, self._lo, self._hi):
            if not lo <= v <= hi:  # plain floats: a numpy check would cost more than the network
                return self._point_checked(values)
        for b in self._point_bounds:
            if not b.clearly_inside(values):
                return self._point_checked(values)
        return self._point_run(values)

    def _point_checked(self, values) -> np.ndarray:
        # float32 scalars are compared within float32's rounding of the bounds, as float32 arrays are in __call__
        is32 = all(isinstance(v, np.float32) for v in values)
        x, bad = self._checked(np.array([values], dtype=np.float64), is32)
        if bad is not None:
            return np.full(len(self.output_names), np.nan)
        return self._point_run(x[0])

    def _point_run(self, values) -> np.ndarray:
        try:
            x1, y1, binding = self._local.buffers
        except AttributeError:  # the first point() call in this thread
            x1 = np.zeros((1, len(self.input_names)), dtype=np.float32)
            y1 = np.zeros((1, len(self.output_names)), dtype=np.float32)
            binding = self.session.io_binding()
            binding.bind_input("x", "cpu", 0, np.float32, list(x1.shape), x1.ctypes.data)
            binding.bind_output("y", "cpu", 0, np.float32, list(y1.shape), y1.ctypes.data)
            self._local.buffers = x1, y1, binding
        x1[0] = values
        self.session.run_with_iobinding(binding)
        return y1[0].astype(np.float64)


def load(path: str | os.PathLike | bytes, backend: str = "onnxruntime", **kwargs) -> Model:
    """backend "onnxruntime" (numpy and onnxruntime only) or "c": the generated C compiled on first use (batches
    through ctypes, point() through a CPython extension built with it), the same API, ~10x cheaper per call
    (pipeline/codegen/cbackend.py; needs a C compiler and the `c` extra: `pip install "surrogate-pipeline[c]"`)."""
    return backend_class(backend)(path, **kwargs)


def backend_class(backend: str, use: str = "") -> type[Model]:
    """The Model class of a backend named in BACKENDS, imported now; a package its extra installs and this
    environment lacks is a LoaderError naming the extra (`use`: what needed the backend, for the message)."""
    if backend not in BACKENDS:
        raise LoaderError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    module, _, cls = BACKENDS[backend].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as e:
        if backend not in EXTRAS or not e.name or e.name.split(".")[0] == "pipeline":
            raise
        raise LoaderError(
            f"{use or f'backend={backend!r}'} needs the {e.name!r} package, which is not installed: "
            f'pip install "surrogate-pipeline[{EXTRAS[backend]}]"'
        ) from None


BACKENDS = {"onnxruntime": "pipeline.runtime.loader:Model", "c": "pipeline.codegen.cbackend:CModel"}
"""load(backend=...) -> "module:Class", imported on first use: the runtime names the C backend of the codegen layer
without importing it, so that `pipeline.loader` needs numpy and onnxruntime only."""
EXTRAS = {"c": "c"}
"""backend -> the pyproject.toml extra that installs the packages it needs beyond the runtime's (c: onnx, to read
the graph the C is generated from)"""
