"""Spec -> data: training, held-out and verification samples in physical units.

Samples are drawn in the *scaled* input space (log10 for log inputs) so that a range spanning decades is covered
evenly. The verification grid spans every axis edge to edge, so the gates see the corners of the domain, where
surrogates are weakest. Every reference value is checked: a NaN or inf stops the run with the offending input.
"""

from __future__ import annotations

import csv
import importlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .spec import PipelineError, Spec


@dataclass
class Dataset:
    """Arrays of shape (N, n_inputs) and (N, n_outputs), float64, physical units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    x_grid: np.ndarray | None = None
    """dense grid over the whole domain; None when the truth is a data file"""
    y_grid: np.ndarray | None = None
    dropped_rows: int = 0
    """data rows dropped by the spec's bad_rows = "drop" policy"""

    def sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The verification sets by name."""
        out = {"holdout": (self.x_holdout, self.y_holdout)}
        if self.x_grid is not None:
            out["grid"] = (self.x_grid, self.y_grid)
        return out


# --- scaled input space -----------------------------------------------------------------------------------------

def _bounds(spec: Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    is_log = np.array([i.scale == "log" for i in spec.inputs])
    lo = np.array([i.min for i in spec.inputs], dtype=np.float64)
    hi = np.array([i.max for i in spec.inputs], dtype=np.float64)
    return np.where(is_log, np.log10(np.where(is_log, lo, 1.0)), lo), \
        np.where(is_log, np.log10(np.where(is_log, hi, 1.0)), hi), is_log


def from_unit(spec: Spec, U: np.ndarray) -> np.ndarray:
    """Map points of the unit cube [0, 1]^d to physical inputs (log-uniform along log axes)."""
    lo, hi, is_log = _bounds(spec)
    X = lo + U * (hi - lo)
    X[:, is_log] = 10.0 ** X[:, is_log]
    # Pin the ends exactly: 10**log10(max) can land one ulp outside the declared range.
    return np.clip(X, [i.min for i in spec.inputs], [i.max for i in spec.inputs])


def sample(spec: Spec, n: int, method: str, seed: int) -> np.ndarray:
    """n physical input points, space-filling (scrambled Sobol) or uniform random in the scaled space."""
    d = len(spec.inputs)
    if method == "sobol":
        engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
        U = engine.draw(n, dtype=torch.float64).numpy()
    else:
        U = np.random.default_rng(seed).random((n, d))
    return from_unit(spec, U)


def corners(spec: Spec) -> np.ndarray:
    """The 2^d corners of the domain: added to the training set because extrapolation starts there."""
    d = len(spec.inputs)
    U = np.array(np.meshgrid(*[[0.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T
    return from_unit(spec, U)


def grid(spec: Spec) -> np.ndarray:
    """Dense grid of spec.sampling.grid points per axis, edges included, as (grid^d, d)."""
    axis = np.linspace(0.0, 1.0, spec.sampling.grid)
    d = len(spec.inputs)
    U = np.stack(np.meshgrid(*[axis] * d, indexing="ij"), axis=-1).reshape(-1, d)
    return from_unit(spec, U)


# --- the reference -------------------------------------------------------------------------------------------------

def resolve_callable(target: str, search_dir: Path | None = None):
    """Import "package.module:function"; a module beside the spec file (search_dir) is found too."""
    module_name, _, attr = target.partition(":")
    if search_dir is not None and str(search_dir) not in sys.path:
        sys.path.append(str(search_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise PipelineError(f"reference.callable {target!r}: cannot import {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise PipelineError(f"reference.callable {target!r}: {module_name!r} has no function {attr!r}")
    return fn


def evaluate(spec: Spec, X: np.ndarray) -> np.ndarray:
    """Reference outputs for inputs X, shape (N, n_outputs); refuses a wrong shape or a non-finite value."""
    fn = resolve_callable(spec.reference.callable, spec.path.parent.resolve() if spec.path else None)
    if spec.reference.vectorized:
        Y = np.asarray(fn(X), dtype=np.float64)
    else:
        Y = np.array([np.atleast_1d(fn(*row)) for row in X], dtype=np.float64)
    n_out = len(spec.outputs)
    if Y.ndim == 1 and n_out == 1:
        Y = Y[:, None]
    if Y.shape != (len(X), n_out):
        raise PipelineError(f"reference {spec.reference.callable} returned shape {Y.shape} for {len(X)} samples; "
                            f"expected ({len(X)}, {n_out}) for outputs {spec.output_names}")
    check_finite(spec, X, Y, f"reference {spec.reference.callable}")
    return Y


def check_finite(spec: Spec, X: np.ndarray, Y: np.ndarray, source: str) -> None:
    bad = ~np.isfinite(Y)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        at = ", ".join(f"{n}={v:.6g}" for n, v in zip(spec.input_names, X[row]))
        raise PipelineError(f"{source} returned {int(bad.sum())} non-finite values in output "
                            f"'{spec.outputs[col].name}' (first at {at})")
    for k, o in enumerate(spec.outputs):
        if o.transform == "log" and (Y[:, k] <= 0).any():
            row = int(np.argmax(Y[:, k] <= 0))
            raise PipelineError(f"{source}: output '{o.name}' has transform = \"log\" but is {Y[row, k]:.6g} <= 0 "
                                f"at {dict(zip(spec.input_names, X[row].round(6).tolist()))}")


# --- data files ----------------------------------------------------------------------------------------------------

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _decode_csv(raw: bytes, path: Path) -> str:
    """The text of a UTF-8 data file (a byte-order mark is dropped); one line naming the problem otherwise."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PipelineError(f"reference.data: {path.name} is UTF-16; save it as UTF-8 (in Excel: CSV UTF-8)")
    if b"\x00" in raw:
        raise PipelineError(f"reference.data: {path.name} has NUL bytes: a binary file, or UTF-16/32 text; "
                            f"a CSV file in UTF-8 is needed")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise PipelineError(f"reference.data: {path.name} is not UTF-8 (byte 0x{raw[e.start]:02x} on line {line}; "
                            f"Latin-1 or Windows-1252?); save it as UTF-8") from None


def read_csv(spec: Spec) -> tuple[np.ndarray, np.ndarray, int]:
    """Inputs and outputs from the spec's CSV file, with bad rows handled by the spec's policy.

    The file is UTF-8, with or without the byte-order mark Excel's "CSV UTF-8" writes; other encodings and binary
    files are refused in one line. A value beyond float32's range (|v| > 3.4e38) is a bad row like NaN: the model
    computes in float32, and training squares the outputs, which overflows to inf and a NaN loss.
    """
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
        raise PipelineError(f"reference.data: {path.name} lacks column(s) {', '.join(missing)} (has: {', '.join(header)})")
    twice = [c for c in spec.input_names + spec.output_names if header.count(c) > 1]
    if twice:
        where = [k + 1 for k, h in enumerate(header) if h == twice[0]]
        raise PipelineError(f"reference.data: {path.name} has column '{twice[0]}' more than once (columns "
                            f"{', '.join(map(str, where))}); which one is meant is ambiguous")
    cols = [header.index(c) for c in spec.input_names + spec.output_names]
    values = np.full((len(rows) - 1, len(cols)), np.nan)
    for r, row in enumerate(rows[1:]):
        for c, k in enumerate(cols):
            try:
                values[r, c] = float(row[k])
            except (ValueError, IndexError):
                pass  # stays NaN: counted as a bad row below
    overflow = (np.abs(values) > FLOAT32_MAX).any(axis=1)  # float32 overflows, and so would float64 squares
    d = len(spec.inputs)
    X, Y = values[:, :d], values[:, d:]
    lo = np.array([i.min for i in spec.inputs])
    hi = np.array([i.max for i in spec.inputs])
    finite = np.isfinite(values).all(axis=1) & ~overflow
    in_range = ((X >= lo) & (X <= hi)).all(axis=1)
    positive = np.ones(len(Y), dtype=bool)
    for k, o in enumerate(spec.outputs):
        if o.transform == "log":
            positive &= ~(Y[:, k] <= 0)
    good = finite & in_range & positive
    n_bad = int((~good).sum())
    if n_bad and spec.reference.bad_rows == "error":
        first = int(np.argmax(~good)) + 2  # 1-based, after the header line
        why = "a value beyond float32's range (|v| > 3.4e38)" if overflow[first - 2] else \
            "a missing or non-finite value" if not finite[first - 2] else (
            "an input outside its declared range" if not in_range[first - 2] else "a non-positive log-transformed output")
        raise PipelineError(f"reference.data: {path.name} has {n_bad} bad row(s); line {first} has {why} "
                            f"(set reference.bad_rows = \"drop\" to drop them)")
    X, Y = X[good], Y[good]
    min_rows = 10 * (d + 1)
    if len(X) < min_rows:
        raise PipelineError(f"reference.data: {path.name} has {len(X)} usable rows; at least {min_rows} are needed")
    return X, Y, n_bad


# --- the dataset ----------------------------------------------------------------------------------------------------

def build(spec: Spec) -> Dataset:
    """Training, held-out and (for a callable reference) grid samples for a spec."""
    s = spec.sampling
    if spec.reference.data:
        X, Y, dropped = read_csv(spec)
        order = np.random.default_rng(s.seed).permutation(len(X))
        n_hold = max(1, int(round(s.holdout_fraction * len(X))))
        hold, train = order[:n_hold], order[n_hold:]
        return Dataset(X[train], Y[train], X[hold], Y[hold], dropped_rows=dropped)
    x_train = np.concatenate([sample(spec, s.count, s.method, s.seed), corners(spec)])
    # Held-out points are uniform random from another seed: independent of the training design.
    x_hold = sample(spec, s.holdout, "uniform", s.seed + 1)
    x_grid = grid(spec)
    return Dataset(x_train, evaluate(spec, x_train), x_hold, evaluate(spec, x_hold), x_grid, evaluate(spec, x_grid))
