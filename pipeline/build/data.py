"""Spec -> data: training, held-out and verification samples in physical units.

Samples are drawn in the unit cube and mapped to the domain: along each input in its *scaled* space (log10 for
log inputs), so that a range spanning decades is covered evenly, and, where the spec bounds an input by a function
of another ([[domain]], see domain.py), squeezed between the box and the bound, so that every point is in the
domain and the faces of the cube land on the boundary. Verification spans the domain edge to edge: a dense grid for
1-2 inputs; past that a large Sobol sample plus every corner and points on every face and edge (verify.py then
searches for the worst point between them).

Every reference value is checked. Each call gets its own copy of the inputs (a reference that writes into its
argument cannot corrupt the samples kept for training and gating); an exception, NaN or inf stops the run with one
line naming how many inputs failed, the first of them and the message, unless the spec says on_error = "drop".
A user's module beside the spec is loaded from that file under a name of its own, so two specs whose modules share a
file name each get their own function.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import io
import itertools
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import PipelineError
from ..runtime import domain as domain_mod
from . import calls
from .spec import Spec


@dataclass
class Dataset:
    """Arrays of shape (N, n_inputs) and (N, n_outputs), float64, physical units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    x_grid: np.ndarray | None = None
    """dense grid over the whole domain (1-2 inputs); None when the truth is a data file or past 2 inputs"""
    y_grid: np.ndarray | None = None
    x_domain: np.ndarray | None = None
    """past 2 inputs: Sobol points, corners, faces and edges of the domain (see domain_points)"""
    y_domain: np.ndarray | None = None
    u_domain: np.ndarray | None = None
    """the same points in the unit cube, where verify.py's search moves"""
    stage_domain: np.ndarray | None = None
    """per point: "sample", "corner", "face" or "edge" """
    dropped_rows: int = 0
    """data rows dropped by the spec's bad_rows = "drop" policy"""
    failed: dict = field(default_factory=dict)
    """reference failures excluded by on_error = "drop": {set: [failed, asked]}"""

    def sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The verification sets by name."""
        out = {"holdout": (self.x_holdout, self.y_holdout)}
        if self.x_grid is not None:
            out["grid"] = (self.x_grid, self.y_grid)
        if self.x_domain is not None:
            out["domain"] = (self.x_domain, self.y_domain)
        return out


# --- the unit cube and the domain -----------------------------------------------------------------------------------


def _scaled_box(spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    is_log = np.array([i.scale == "log" for i in spec.inputs])
    lo = np.array([i.min for i in spec.inputs], dtype=np.float64)
    hi = np.array([i.max for i in spec.inputs], dtype=np.float64)
    return (
        np.where(is_log, np.log10(np.where(is_log, lo, 1.0)), lo),
        np.where(is_log, np.log10(np.where(is_log, hi, 1.0)), hi),
        is_log,
    )


def from_unit(spec: Spec, U: np.ndarray) -> np.ndarray:
    """Map points of the unit cube [0, 1]^d to physical inputs in the domain (log-uniform along log axes).

    A bounded input is spread between the box and its bound at the point's value of the input the bound depends on;
    u = 1 (or 0, for a lower bound) lands exactly on the bound.
    """
    lo, hi, is_log = _scaled_box(spec)
    S = lo + np.asarray(U, dtype=np.float64) * (hi - lo)
    X = np.where(is_log, 10.0 ** np.where(is_log, S, 0.0), S)
    # Pin the ends exactly: 10**log10(max) can land one ulp outside the declared range.
    box_lo, box_hi = [i.min for i in spec.inputs], [i.max for i in spec.inputs]
    X = np.clip(X, box_lo, box_hi)
    names = spec.input_names
    for b in bounds(spec):
        i, j = names.index(b["input"]), names.index(b["of"])
        limit = domain_mod.bound_value(b, X[:, j])
        bottom = np.full(len(X), box_lo[i]) if b["side"] == "max" else np.clip(limit, box_lo[i], box_hi[i])
        top = np.clip(limit, box_lo[i], box_hi[i]) if b["side"] == "max" else np.full(len(X), box_hi[i])
        scale = (lambda v: np.log10(v)) if is_log[i] else (lambda v: v)
        s = scale(bottom) + U[:, i] * (scale(top) - scale(bottom))
        X[:, i] = np.clip(10.0**s if is_log[i] else s, bottom, top)
    return X


def sample(spec: Spec, n: int, method: str, seed: int, boundary: float = 0.0) -> np.ndarray:
    """n physical input points, space-filling (scrambled Sobol) or uniform random in the scaled space.

    boundary: the share of the points drawn from the arcsine (Chebyshev) density instead, u = (1 - cos(pi v)) / 2
    along every axis, which crowds points towards the faces, edges and corners (see SamplingSpec.boundary).
    """
    U = unit_sample(len(spec.inputs), n, method, seed)
    k = int(round(boundary * n))
    U[:k] = (1.0 - np.cos(np.pi * U[:k])) / 2.0
    return from_unit(spec, U)


def unit_sample(d: int, n: int, method: str, seed: int) -> np.ndarray:
    if method == "sobol":
        return torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=torch.float64).numpy()
    return np.random.default_rng(seed).random((n, d))


def unit_corners(d: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=d)))


def corners(spec: Spec) -> np.ndarray:
    """The 2^d corners of the domain: added to the training set because extrapolation starts there."""
    return from_unit(spec, unit_corners(len(spec.inputs)))


def grid(spec: Spec) -> np.ndarray:
    """Dense grid of spec.sampling.grid points per axis (fewer where a costly reference's budget says so), edges
    included, as (grid^d, d)."""
    sized = budget(spec)
    axis = np.linspace(0.0, 1.0, sized["grid"] if sized else spec.sampling.grid)
    d = len(spec.inputs)
    U = np.stack(np.meshgrid(*[axis] * d, indexing="ij"), axis=-1).reshape(-1, d)
    return from_unit(spec, U)


def domain_points(
    spec: Spec, seed: int, points: int | None = None, between: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The sample that verifies past 2 inputs, in the unit cube, with each point's stage.

    A scrambled Sobol sample of verification.points, every corner, face_points Sobol points on each of the 2d faces
    (a face is where one input sits at its min or max) and edge_points evenly spaced points inside every edge (all
    inputs but one at an end of their range): the faces, edges and corners are where a surrogate extrapolates
    and where the interior sample puts almost no points in many dimensions.

    Training's Refiner probes with the same construction from another seed, `points` interior points and
    `between` = True: its edge points then sit halfway between where verification's would, so that verification
    never checks a point that training saw (the corners excepted: both need them).
    """
    v, d = spec.verification, len(spec.inputs)
    sized = budget(spec) or {"points": v.points, "face_points": v.face_points}
    n = sized["points"] if points is None else points
    parts = [(unit_sample(d, n, "sobol", seed), "sample"), (unit_corners(d), "corner")]
    if sized["face_points"] and d > 1:
        for axis, end in itertools.product(range(d), (0.0, 1.0)):
            F = np.insert(
                unit_sample(d - 1, sized["face_points"], "sobol", seed + 1 + 2 * axis + int(end)), axis, end, 1
            )
            parts.append((F, "face"))
    if v.edge_points and d > 1:
        if between:
            along = (np.arange(v.edge_points) + 0.5) / v.edge_points
        else:
            along = (np.arange(v.edge_points) + 1.0) / (v.edge_points + 1.0)
        for axis in range(d):
            for ends in itertools.product([0.0, 1.0], repeat=d - 1):
                E = np.insert(np.tile(ends, (len(along), 1)), axis, along, 1)
                parts.append((E, "edge"))
    U = np.concatenate([p for p, _ in parts])
    stage = np.concatenate([np.full(len(p), name) for p, name in parts])
    return U, stage


# --- bounds of the domain -------------------------------------------------------------------------------------------

_BOUNDS_CACHE: dict[str, list[dict]] = {}
MAX_KNOTS = 4097


def bounds(spec: Spec) -> list[dict]:
    """The spec's [[domain]] bounds, tabulated as the card stores them (see domain.py); [] for a box.

    Knots double from 65 until the table is within the bound's tolerance of the function everywhere (measured
    between the knots); the largest deviation is recorded as interpolation_error.
    """
    if not spec.domain:
        return []
    key = json.dumps(
        [str(spec.path), [b.__dict__ for b in spec.domain], [i.__dict__ for i in spec.inputs]],
        sort_keys=True,
        default=str,
    )
    if key in _BOUNDS_CACHE:
        return _BOUNDS_CACHE[key]
    out = []
    by_name = {i.name: i for i in spec.inputs}
    for b in spec.domain:
        target, of = by_name[b.input], by_name[b.of]
        fn = resolve_callable(b.max or b.min, _spec_dir(spec), what=f"domain bound of {b.input}")
        tolerance = b.tolerance or 1e-5 * (target.max - target.min)
        knots = 65
        while True:
            try:
                table, error = domain_mod.tabulate(fn, of.min, of.max, of.scale, knots)
            except Exception as e:  # noqa: BLE001 - the user's function: say which and why, in one line
                raise PipelineError(
                    f"domain bound {b.label!r} ({b.max or b.min}) failed: {type(e).__name__}: {e}"
                ) from None
            if error <= tolerance or knots >= MAX_KNOTS:
                break
            knots = 2 * knots - 1
        if error > tolerance:
            raise PipelineError(
                f"domain bound {b.label!r}: a table of {MAX_KNOTS} knots still deviates "
                f"{error:.3g} {target.unit} from the function (tolerance {tolerance:.3g}); "
                f"set domain.tolerance"
            )
        values = np.array(table["values"])
        empty = values < target.min if b.max else values > target.max
        if empty.any():
            knots_at = np.linspace(*domain_mod._s(np.array([table["lo"], table["hi"]]), table["scale"]), len(values))
            at = knots_at[int(np.argmax(empty))]  # the first knot where the bound leaves no room
            at = 10.0**at if table["scale"] == "log" else at
            raise PipelineError(
                f"domain bound {b.label!r} leaves no room for {b.input} in "
                f"[{target.min:g}, {target.max:g}] near {b.of} = {at:g}: narrow {b.of}'s range"
            )
        out.append(
            {
                "input": b.input,
                "side": "max" if b.max else "min",
                "of": b.of,
                "label": b.label,
                "table": table,
                "interpolation_error": error,
                "function": b.max or b.min,
            }
        )
    _crossing(out, by_name)
    _BOUNDS_CACHE[key] = out
    return out


def _crossing(tables: list[dict], by_name: dict) -> None:
    """Refuse a min and a max bound on one input that cross: the domain would be empty where they do, and the
    sampler, the verification and the loader would disagree about it."""
    for lower in (b for b in tables if b["side"] == "min"):
        for upper in (b for b in tables if b["side"] == "max" and b["input"] == lower["input"]):
            if lower["of"] == upper["of"]:  # both on one axis: compare them at every knot of either table
                of = by_name[lower["of"]]
                x = np.unique(
                    np.concatenate([np.clip(domain_mod._s_inverse(t["table"]), of.min, of.max) for t in (lower, upper)])
                )
                gap = domain_mod.bound_value(upper, x) - domain_mod.bound_value(lower, x)
                where = f" at {lower['of']} = {x[int(np.argmin(gap))]:g}"
            else:  # on two axes: somewhere the highest lower bound meets the lowest upper one
                gap = np.array([min(upper["table"]["values"]) - max(lower["table"]["values"])])
                where = f" (over {lower['of']} and {upper['of']})"
            if gap.min() < 0:
                raise PipelineError(
                    f"domain bounds {lower['label']!r} (min) and {upper['label']!r} (max) of {lower['input']} cross"
                    f"{where}: the domain is empty there; narrow the inputs' ranges or fix the bounds"
                )


def in_domain(spec: Spec, X: np.ndarray) -> np.ndarray:
    """Boolean per row: inside the box and every bound."""
    lo = np.array([i.min for i in spec.inputs])
    hi = np.array([i.max for i in spec.inputs])
    inside = ((X >= lo) & (X <= hi)).all(axis=1)
    return inside & ~domain_mod.violations(bounds(spec), spec.input_names, X).any(axis=1)


# --- the reference -------------------------------------------------------------------------------------------------

_CALLABLES: dict[tuple[str, str], object] = {}


def _spec_dir(spec: Spec) -> Path | None:
    return spec.path.parent.resolve() if spec.path else None


def resolve_callable(target: str, search_dir: Path | None = None, what: str = "reference.callable"):
    """Import "package.module:function".

    A module file beside the spec (search_dir/module.py) is loaded from that path under a name of its own, so that
    two specs with a `mycorr.py` each get their own; anything else is imported by name (installed packages,
    pipeline.references). Errors in the user's module are reported in one line with its file and line.
    """
    key = (target, str(search_dir))
    if key in _CALLABLES:
        return _CALLABLES[key]
    module_name, _, attr = target.partition(":")
    local = None
    if search_dir is not None:
        for candidate in (
            search_dir / (module_name.replace(".", "/") + ".py"),
            search_dir / module_name.replace(".", "/") / "__init__.py",
        ):
            if candidate.is_file():
                local = candidate
                break
    try:
        if local is not None:
            digest = hashlib.sha1(str(local).encode()).hexdigest()[:12]
            unique = f"_surrogate_user_{digest}_{module_name.replace('.', '_')}"
            loader_spec = importlib.util.spec_from_file_location(unique, local)
            module = importlib.util.module_from_spec(loader_spec)
            sys.path.insert(0, str(search_dir))  # for the user's own sibling imports, while it loads
            try:
                loader_spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(search_dir))
        else:
            module = importlib.import_module(module_name)
    except SyntaxError as e:
        raise PipelineError(f"{what} {target!r}: {type(e).__name__} in {e.filename} line {e.lineno}: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - an error inside the user's module: where, and what
        raise PipelineError(
            f"{what} {target!r}: cannot import {module_name!r}: {_where(e)}{type(e).__name__}: {e}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise PipelineError(f"{what} {target!r}: {module_name!r} has no function {attr!r}")
    _CALLABLES[key] = fn
    return fn


def _where(e: BaseException) -> str:
    """'file line N: ' of the innermost frame outside this package and the import machinery, or ''."""
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if "importlib" not in f.filename and not f.filename.startswith(str(Path(__file__).parent))
    ]
    return f"{frames[-1].filename} line {frames[-1].lineno}: " if frames else ""


def reference_function(spec: Spec):
    """The spec's reference function: the one a spec built in code holds, or the one its callable names."""
    if spec.reference.function is not None:
        return spec.reference.function
    return resolve_callable(spec.reference.callable, _spec_dir(spec))


def call_reference(spec: Spec, X: np.ndarray, what: str = "inputs") -> tuple[np.ndarray, np.ndarray, str]:
    """The reference at X: (Y with NaN rows where it failed, ok per row, the first failure in words).

    Rows come from the cache, this process or worker processes (calls.py); their values are the same either way.
    """
    fn = reference_function(spec)
    X = np.asarray(X, dtype=np.float64)
    Y, errors = calls.run(spec, X, fn, _raw_rows, what)
    ok = np.isfinite(Y).all(axis=1)
    for k, o in enumerate(spec.outputs):
        if o.transform == "log":
            nonpositive = ok & (Y[:, k] <= 0)
            for r in np.flatnonzero(nonpositive)[:1]:
                errors.setdefault(int(r), f"output '{o.name}' = {Y[r, k]:.6g} <= 0, but its transform is \"log\"")
            ok &= ~nonpositive
    first = ""
    if not ok.all():
        r = int(np.argmin(ok))
        at = ", ".join(f"{name}={v:.6g}" for name, v in zip(spec.input_names, X[r]))
        why = errors.get(r) or f"returned {', '.join(f'{o.name}={v:.6g}' for o, v in zip(spec.outputs, Y[r]))}"
        first = f"first at {at}: {why}"
        Y[~ok] = np.nan
    return Y, ok, first


def _raw_rows(spec: Spec, X: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """The reference's values at X as it returns them (NaN rows where it raised) and {row: why} for those rows.

    Called in this process or in a reference worker (calls.py), so a module-level function of the spec and the rows
    only; each call gets its own copy of its inputs, and each call (a row, or a vectorized call of k rows) may take
    reference.timeout seconds (k times that)."""
    fn = reference_function(spec)
    timeout = spec.reference.timeout
    n, n_out = len(X), len(spec.outputs)
    Y = np.full((n, n_out), np.nan)
    errors: dict[int, str] = {}

    def one(row: np.ndarray):
        with calls.deadline(timeout):
            return fn(row[None, :].copy()) if spec.reference.vectorized else fn(*row.tolist())

    def row_by_row():
        for k in range(n):
            try:
                Y[k] = _as_outputs(spec, one(X[k]), 1)[0]
            except PipelineError:
                raise
            except Exception as e:  # noqa: BLE001 - the user's function failed here: recorded, reported by the caller
                errors[k] = f"{type(e).__name__}: {e}"

    try:
        if not spec.reference.vectorized:
            raise _PerRow
        with calls.deadline(timeout * n):
            value = fn(X.copy())
        Y[:] = _as_outputs(spec, value, n)
    except _PerRow:
        row_by_row()
    except PipelineError:
        raise
    except Exception:  # noqa: BLE001 - a vectorized call failed somewhere: find the rows, one at a time
        row_by_row()
    return Y, errors


class _PerRow(Exception):
    pass


def _as_outputs(spec: Spec, value, n: int) -> np.ndarray:
    """The reference's return value as an (n, n_outputs) float array, or one line saying what is wrong with it."""
    where = f"reference {spec.reference.callable}"
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError) as e:
        raw = None
        error = e
    if raw is not None:
        kinds = {raw.dtype.kind} if raw.dtype.kind != "O" else {np.asarray(v).dtype.kind for v in raw.reshape(-1)}
        if "c" in kinds:  # float64 would keep the real part with only a ComplexWarning
            raise PipelineError(
                f"{where} returned complex values (e.g. {next(v for v in raw.reshape(-1) if np.iscomplexobj(v))}); "
                f"a surrogate learns real outputs: return the real quantity (abs, .real) explicitly"
            )
        if kinds & {"U", "S"}:  # "1.5" would pass float(): the README promises strings are refused
            raise PipelineError(
                f"{where} returned strings (e.g. {str(next(v for v in raw.reshape(-1) if isinstance(v, (str, bytes))))!r}), "
                f"not an array of numbers"
            )
    try:
        if raw is None:
            raise error
        Y = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise PipelineError(
            f"{where} returned something that is not an array of numbers "
            f"(strings or rows of unequal length?): {str(e).splitlines()[0]}"
        ) from None
    n_out = len(spec.outputs)
    if Y.ndim == 0 and n == 1 and n_out == 1:
        Y = Y.reshape(1, 1)
    if Y.ndim == 1 and n_out == 1 and len(Y) == n:
        Y = Y[:, None]
    elif Y.ndim == 1 and n == 1 and len(Y) == n_out:
        Y = Y[None, :]
    if Y.shape != (n, n_out):
        raise PipelineError(
            f"{where} returned shape {Y.shape} for {n} samples; expected ({n}, {n_out}) for outputs {spec.output_names}"
        )
    return Y


_ANNOUNCED: set = set()


def _announce(key) -> bool:
    """True the first time in this process (a gate builds the data for training, then for verification)."""
    new = key not in _ANNOUNCED
    _ANNOUNCED.add(key)
    return new


def budget(spec: Spec) -> dict | None:
    """The held-out, verification and probe counts and searches a costly reference can afford (calls.budget); None:
    the spec's own, exactly."""
    if not spec.reference.callable:
        return None
    return calls.budget(spec, reference_function(spec))


def evaluate(spec: Spec, X: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Reference outputs for inputs X, shape (N, n_outputs).

    Where the reference fails (raises, NaN, inf, a non-positive log-transformed output): on_error = "error" stops
    with one line naming how many failed and the first; "drop" returns NaN rows there for the caller to drop.
    """
    Y, ok, first = call_reference(spec, X, what)
    if not ok.all() and spec.reference.on_error == "error":
        raise PipelineError(
            f"reference {spec.reference.callable} failed on {int((~ok).sum())} of {len(X)} {what} "
            f'({first}); set reference.on_error = "drop" to exclude such points'
        )
    return Y


def _kept(spec: Spec, X: np.ndarray, what: str, failed: dict, extra: tuple = ()) -> tuple:
    """(X, Y, *extra) without the points where the reference failed (on_error = "drop"); counts them."""
    Y = evaluate(spec, X, what)
    ok = np.isfinite(Y).all(axis=1)
    failed[what] = [int((~ok).sum()), len(X)]
    if len(X) and not ok.any():  # nothing left to train or verify on
        _, _, first = call_reference(spec, X[:1])
        raise PipelineError(
            f"reference {spec.reference.callable} failed on all {len(X)} {what} points ({first or 'no usable value'}); "
            f'on_error = "drop" has nothing left: fix the reference or the inputs\' ranges'
        )
    return (X[ok], Y[ok], *(e[ok] for e in extra))


# --- data files ----------------------------------------------------------------------------------------------------

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _decode_csv(raw: bytes, path: Path) -> str:
    """The text of a UTF-8 data file (a byte-order mark is dropped); one line naming the problem otherwise."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PipelineError(f"reference.data: {path.name} is UTF-16; save it as UTF-8 (in Excel: CSV UTF-8)")
    if b"\x00" in raw:
        raise PipelineError(
            f"reference.data: {path.name} has NUL bytes: a binary file, or UTF-16/32 text; "
            f"a CSV file in UTF-8 is needed"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PipelineError(
            f"reference.data: {path.name} is not UTF-8 (byte 0x{raw[e.start]:02x} on line {line}; "
            f"Latin-1 or Windows-1252?); save it as UTF-8"
        ) from None


def read_csv(spec: Spec) -> tuple[np.ndarray, np.ndarray, int]:
    """Inputs and outputs from the spec's CSV file (or the rows a spec built in code holds), with bad rows handled
    by the spec's policy.

    The file is UTF-8, with or without the byte-order mark Excel's "CSV UTF-8" writes; other encodings and binary
    files are refused in one line. A value beyond float32's range (|v| > 3.4e38) is a bad row like NaN: the model
    computes in float32, and training squares the outputs, which overflows to inf and a NaN loss.
    """
    if spec.reference.table is not None:  # rows are counted from 0, as in the array or DataFrame they came from
        return good_rows(spec, np.array(spec.reference.table, dtype=np.float64), spec.reference.data, "row", 0)
    values, name = _csv_values(spec)
    return good_rows(spec, values, name, "line", 2)  # 1-based, after the header line


def _csv_values(spec: Spec) -> tuple[np.ndarray, str]:
    """The CSV file's input and output columns, in the spec's order, as floats (NaN where a cell is not a number)."""
    base = spec.path.parent if spec.path else Path(".")
    path = base / spec.reference.data
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PipelineError(f"reference.data: cannot read {path}: {e.strerror}") from None
    text = _decode_csv(raw, path)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise PipelineError(f"reference.data: {path} is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in spec.input_names + spec.output_names if c not in header]
    if missing:
        raise PipelineError(
            f"reference.data: {path.name} lacks column(s) {', '.join(missing)} (has: {', '.join(header)})"
        )
    twice = [c for c in spec.input_names + spec.output_names if header.count(c) > 1]
    if twice:
        where = [k + 1 for k, h in enumerate(header) if h == twice[0]]
        raise PipelineError(
            f"reference.data: {path.name} has column '{twice[0]}' more than once (columns "
            f"{', '.join(map(str, where))}); which one is meant is ambiguous"
        )
    cols = [header.index(c) for c in spec.input_names + spec.output_names]
    values = np.full((len(rows) - 1, len(cols)), np.nan)
    for r, row in enumerate(rows[1:]):
        for c, k in enumerate(cols):
            try:
                values[r, c] = float(row[k])
            except (ValueError, IndexError):
                pass  # stays NaN: counted as a bad row
    return values, path.name


def good_rows(
    spec: Spec, values: np.ndarray, name: str, row: str, first_row: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(X, Y, dropped) from rows of inputs then outputs: rows with a missing, non-finite or float32-overflowing
    value, an input out of range or past a domain bound, or a non-positive log output stop the run in one line
    naming the first ("{row} N", counted from first_row), or are dropped (reference.bad_rows = "drop")."""
    overflow = (np.abs(values) > FLOAT32_MAX).any(axis=1)  # float32 overflows, and so would float64 squares
    d = len(spec.inputs)
    X, Y = values[:, :d], values[:, d:]
    lo = np.array([i.min for i in spec.inputs])
    hi = np.array([i.max for i in spec.inputs])
    finite = np.isfinite(values).all(axis=1) & ~overflow
    in_range = ((X >= lo) & (X <= hi)).all(axis=1)
    if spec.domain:  # rows past a domain bound are outside the model's domain as much as rows outside the box
        in_range &= ~domain_mod.violations(bounds(spec), spec.input_names, np.nan_to_num(X)).any(axis=1)
    positive = np.ones(len(Y), dtype=bool)
    for k, o in enumerate(spec.outputs):
        if o.transform == "log":
            positive &= ~(Y[:, k] <= 0)
    good = finite & in_range & positive
    n_bad = int((~good).sum())
    if n_bad and spec.reference.bad_rows == "error":
        k = int(np.argmax(~good))
        why = (
            "a value beyond float32's range (|v| > 3.4e38)"
            if overflow[k]
            else "a missing or non-finite value"
            if not finite[k]
            else (
                "an input outside its declared range or past a domain bound"
                if not in_range[k]
                else "a non-positive log-transformed output"
            )
        )
        raise PipelineError(
            f"reference.data: {name} has {n_bad} bad row(s); {row} {k + first_row} has {why} "
            f'(set reference.bad_rows = "drop" to drop them)'
        )
    X, Y = X[good], Y[good]
    min_rows = 10 * (d + 1)
    if len(X) < min_rows:
        raise PipelineError(f"reference.data: {name} has {len(X)} usable rows; at least {min_rows} are needed")
    return X, Y, n_bad


# --- the dataset ----------------------------------------------------------------------------------------------------


def build(spec: Spec, verification: bool = True) -> Dataset:
    """Training, held-out and (for a callable reference) verification samples for a spec.

    verification=False skips the grid or domain sample (training needs only the training and held-out sets).
    """
    s = spec.sampling
    if spec.reference.data:
        X, Y, dropped = read_csv(spec)
        order = np.random.default_rng(s.seed).permutation(len(X))
        n_hold = max(1, int(round(s.holdout_fraction * len(X))))
        hold, train = order[:n_hold], order[n_hold:]
        return Dataset(X[train], Y[train], X[hold], Y[hold], dropped_rows=dropped)
    failed: dict = {}
    design = np.concatenate([sample(spec, s.count, s.method, s.seed, s.boundary), corners(spec)])
    x_train, y_train = _kept(spec, design, "training", failed)
    # Held-out points are uniform random from another seed: independent of the training design. A costly reference
    # (its cost now measured on the training design) gets as many as its budget buys: a prefix of the same draw. Not
    # a noisy one: its held-out points are all its gates have.
    sized = None if spec.noisy else budget(spec)
    if sized and _announce((spec.name, sized["budget"]["evaluations"])):
        print(f"{spec.name}: the reference costs: {calls.describe(sized)}", flush=True)
    n_hold = (sized or {"holdout": s.holdout})["holdout"]
    x_hold, y_hold = _kept(spec, sample(spec, n_hold, "uniform", s.seed + 1), "holdout", failed)
    data = Dataset(x_train, y_train, x_hold, y_hold, failed=failed)
    if not verification or spec.noisy:  # scattered values are gated on the held-out points only
        return data
    if s.grid:
        data.x_grid, data.y_grid = _kept(spec, grid(spec), "grid", failed)
    else:
        U, stage = domain_points(spec, s.seed + 2)
        data.x_domain, data.y_domain, data.u_domain, data.stage_domain = _kept(
            spec, from_unit(spec, U), "domain", failed, (U, stage)
        )
    return data
