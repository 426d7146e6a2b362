"""Load an exported surrogate and evaluate it: numpy and onnxruntime only (no torch), for solvers and scripts.

    from pipeline.loader import load
    f = load("exported/paraboloid.onnx")
    f(np.array([[0.3, 0.4]]))            # -> array([[0.25]])  shape (N, n_outputs), physical units
    f.card["inputs"]                     # names, units, valid ranges

The model card travels inside the .onnx file (metadata key "surrogate_card"); when the card file NAME.json sits
beside it, the file's sha256 is checked against it.

Session options are chosen for a solver's call loop: one intra-op thread without spinning for the small batches a
solver sends (worker threads that spin between calls burn cores the solver needs), and a parallel session only for
large batches, again without spinning. `make bench` shows both choices in numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

CARD_KEY = "surrogate_card"


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

    def __init__(self, path: str | os.PathLike, threads: int = 1, spinning: bool = False):
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
        # Buffers bound once for point(): a solver's one-sample call then skips onnxruntime's input/output setup.
        self._x1 = np.zeros((1, len(self.input_names)), dtype=np.float32)
        self._y1 = np.zeros((1, len(self.output_names)), dtype=np.float32)
        self._binding = self.session.io_binding()
        self._binding.bind_input("x", "cpu", 0, np.float32, list(self._x1.shape), self._x1.ctypes.data)
        self._binding.bind_output("y", "cpu", 0, np.float32, list(self._y1.shape), self._y1.ctypes.data)

    def __call__(self, X) -> np.ndarray:
        X = np.asarray(X)
        dtype = np.float64 if X.dtype == np.float64 else np.float32
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32)
        if X.shape[1:] != (len(self.input_names),):
            raise LoaderError(f"expected inputs of shape (N, {len(self.input_names)}) for {self.input_names}, "
                              f"got {X.shape}")
        return self.session.run(["y"], {"x": X})[0].astype(dtype, copy=False)

    def point(self, *values: float) -> np.ndarray:
        """One sample, e.g. f.point(0.3, 0.4) -> array of n_outputs floats: the fastest path for scalar calls.

        Reuses buffers bound to the session, so it is not safe to call from several threads at once.
        """
        if len(values) != len(self.input_names):
            raise LoaderError(f"point() takes {len(self.input_names)} values {self.input_names}, got {len(values)}")
        self._x1[0] = values
        self.session.run_with_iobinding(self._binding)
        return self._y1[0].astype(np.float64)


def load(path: str | os.PathLike, **kwargs) -> Model:
    return Model(path, **kwargs)
