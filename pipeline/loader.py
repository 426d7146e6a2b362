"""Load an exported surrogate and evaluate it: numpy and onnxruntime only (no torch), for solvers and scripts.

    from pipeline.loader import load
    f = load("exported/paraboloid.onnx")
    f(np.array([[0.3, 0.4]]))            # -> array([[0.25]])  shape (N, n_outputs), physical units
    f.card["inputs"]                     # names, units, valid ranges

    f.named(T=[300.0, 310.0], p=1e6)      # -> {"rho": array([...]), ...}: named columns, broadcast
    f.point(0.3, 0.4)                    # one sample through pre-bound buffers: the fastest single call

The model card travels inside the .onnx file (metadata key "surrogate_card"); when the card file NAME.json sits
beside it, the file's sha256 is checked against it.

Inputs are checked against the card before they reach the network:
  out_of_range = "error" (default: LoaderError naming the column, its range and the first bad value),
                 "clip" (clamp to the valid range), "warn" (evaluate, and warn with the count), or "allow";
  nonfinite    = "error" (default) or "nan" (those rows come back as NaN).
Large batches are evaluated in chunks of CHUNK_ROWS rows, which keep the activations in cache: past ~10^5 rows
one onnxruntime call costs more per sample than several smaller ones.

Session options are chosen for a solver's call loop: one intra-op thread without spinning for the small batches a
solver sends (worker threads that spin between calls burn cores the solver needs), and a parallel session only for
large batches, again without spinning. `make bench` shows both choices in numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

CARD_KEY = "surrogate_card"
CHUNK_ROWS = 32768
OUT_OF_RANGE = ("error", "clip", "warn", "allow")
NONFINITE = ("error", "nan")


class LoaderError(ValueError):
    pass


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


def read_card(session: ort.InferenceSession) -> dict:
    meta = session.get_modelmeta().custom_metadata_map
    if CARD_KEY not in meta:
        raise LoaderError(f"the model has no '{CARD_KEY}' metadata: not exported by this pipeline")
    return json.loads(meta[CARD_KEY])


class Model:
    """An exported surrogate: call it with an (N, n_inputs) array in the card's input order and units."""

    def __init__(self, path: str | os.PathLike, threads: int = 1, spinning: bool = False,
                 out_of_range: str = "error", nonfinite: str = "error"):
        if out_of_range not in OUT_OF_RANGE or nonfinite not in NONFINITE:
            raise LoaderError(f"out_of_range must be one of {OUT_OF_RANGE} and nonfinite one of {NONFINITE}")
        self.out_of_range, self.nonfinite = out_of_range, nonfinite
        self.path = Path(path)
        if not self.path.is_file():
            raise LoaderError(f"no model file at {self.path}")
        card_file = self.path.with_suffix(".json")
        if card_file.is_file():
            expected = json.loads(card_file.read_text()).get("onnx_sha256")
            actual = hashlib.sha256(self.path.read_bytes()).hexdigest()
            if expected != actual:
                raise LoaderError(f"{self.path.name}: sha256 {actual[:12]}… does not match its card "
                                  f"{card_file.name} ({str(expected)[:12]}…): the model and card are out of step")
        self.session = make_session(self.path, threads, spinning)
        self.card = read_card(self.session)
        self.input_names = [i["name"] for i in self.card["inputs"]]
        self.output_names = [o["name"] for o in self.card["outputs"]]
        self.lo = np.array([i["min"] for i in self.card["inputs"]])
        self.hi = np.array([i["max"] for i in self.card["inputs"]])
        self._lo, self._hi = self.lo.tolist(), self.hi.tolist()
        # float32 bounds rounded inwards, so a float32 input that passes is inside the float64 range too
        self._lo32 = np.nextafter(self.lo.astype(np.float32), np.float32(np.inf)).astype(np.float32)
        self._hi32 = np.nextafter(self.hi.astype(np.float32), np.float32(-np.inf)).astype(np.float32)
        # Buffers bound once for point(): a solver's one-sample call then skips onnxruntime's input/output setup.
        self._x1 = np.zeros((1, len(self.input_names)), dtype=np.float32)
        self._y1 = np.zeros((1, len(self.output_names)), dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_input("x", "cpu", 0, np.float32, list(self._x1.shape), self._x1.ctypes.data)
        self._binding.bind_output("y", "cpu", 0, np.float32, list(self._y1.shape), self._y1.ctypes.data)

    def __call__(self, X) -> np.ndarray:
        """(N, n_inputs) array in the card's order and units -> (N, n_outputs), float64 unless X is float32."""
        X = np.atleast_2d(np.asarray(X))
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        if X.ndim != 2 or X.shape[1] != len(self.input_names):
            raise LoaderError(f"expected inputs of shape (N, {len(self.input_names)}) for {self.input_names}, "
                              f"got {X.shape}")
        bad_rows = None
        # Fast path: every value in range (NaN fails the comparison too). Elementwise, because numpy's axis-0
        # min/max over a narrow (N, 2) array is strided and costs several times the network itself.
        if not np.logical_and(X >= self._lo32 if X.dtype == np.float32 else X >= self.lo,
                              X <= self._hi32 if X.dtype == np.float32 else X <= self.hi).all():
            X, bad_rows = self._checked(X.astype(np.float64))
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        Y = np.empty((len(X), len(self.output_names)), dtype=np.float32)
        for start in range(0, len(X), CHUNK_ROWS):
            Y[start:start + CHUNK_ROWS] = self.session.run(["y"], {"x": X32[start:start + CHUNK_ROWS]})[0]
        Y = Y.astype(dtype, copy=False)
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

    def _checked(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply the non-finite and out-of-range policies; returns inputs and the rows to set to NaN."""
        finite = np.isfinite(X).all(axis=1)
        bad_rows = None
        if not finite.all():
            if self.nonfinite == "error":
                row = int(np.argmin(finite))
                raise LoaderError(f"{self.path.name}: {int((~finite).sum())} input row(s) with NaN or inf "
                                  f"(first: row {row}, {dict(zip(self.input_names, X[row].tolist()))})")
            bad_rows = ~finite
            X = np.where(finite[:, None], X, self.lo)
        outside = (X < self.lo) | (X > self.hi)
        if outside.any() and self.out_of_range != "allow":
            if self.out_of_range == "error":
                row, col = np.argwhere(outside)[0]
                raise LoaderError(f"{self.path.name}: input '{self.input_names[col]}' = {X[row, col]:.6g} (row {row}) "
                                  f"is outside its valid range [{self.lo[col]:g}, {self.hi[col]:g}]; "
                                  f"{int(outside.any(axis=1).sum())} row(s) out of range")
            if self.out_of_range == "clip":
                X = np.clip(X, self.lo, self.hi)
            else:
                warnings.warn(f"{self.path.name}: {int(outside.any(axis=1).sum())} input row(s) outside the valid "
                              f"range; the surrogate extrapolates there", stacklevel=3)
        return X, bad_rows

    def jacobian(self, X) -> np.ndarray:
        """dy/dx of shape (N, n_outputs, n_inputs) in physical units, float64, with this model's policies.

        Computed by the generated C (backend "c", compiled on first use; needs a C compiler and the `onnx`
        package): onnxruntime has no derivatives, and one analytic implementation of the derivative (the
        generator's, tested against central differences) is better than a second copy of the graph's semantics
        in numpy or a second graph output that every exported file would carry.
        """
        if getattr(self, "_c_model", None) is None:
            from .cbackend import CModel
            if self.path is None:
                raise LoaderError("jacobian() compiles the model's C from its file: load the model from a path")
            self._c_model = CModel(self.path, out_of_range=self.out_of_range, nonfinite=self.nonfinite)
        return self._c_model.jacobian(X)

    def point(self, *values: float) -> np.ndarray:
        """One sample, e.g. f.point(0.3, 0.4) -> array of n_outputs floats: the fastest path for scalar calls.

        Reuses buffers bound to the session, so it is not safe to call from several threads at once.
        """
        if len(values) != len(self.input_names):
            raise LoaderError(f"point() takes {len(self.input_names)} values {self.input_names}, got {len(values)}")
        for v, lo, hi in zip(values, self._lo, self._hi):
            if not lo <= v <= hi:  # plain floats: a numpy check would cost more than the network
                x, bad = self._checked(np.array([values], dtype=np.float64))
                if bad is not None:
                    return np.full(len(self.output_names), np.nan)
                values = x[0]
                break
        self._x1[0] = values
        self.session.run_with_iobinding(self._binding)
        return self._y1[0].astype(np.float64)


def load(path: str | os.PathLike, backend: str = "onnxruntime", **kwargs) -> Model:
    """backend "onnxruntime" (numpy and onnxruntime only) or "c": the generated C compiled on first use and called
    through ctypes, the same API, ~10x cheaper per call (pipeline/cbackend.py; needs a C compiler and `onnx`)."""
    if backend == "c":
        from .cbackend import CModel
        return CModel(path, **kwargs)
    if backend != "onnxruntime":
        raise LoaderError(f"backend must be 'onnxruntime' or 'c', got {backend!r}")
    return Model(path, **kwargs)
