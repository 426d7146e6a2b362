"""The generated C, from Python: `load(path, backend="c")` (pipeline.loader) returns a CModel.

    f = load("exported/water.onnx", backend="c")
    f(X); f.point(300.0, 1e6); f.named(T=..., p=...); f.jacobian(X)     # the loader's API, same checks

Why: onnxruntime costs 4-7 µs per run whatever the batch, more than a correlation such as Clamond's; the same
network through the generated C and ctypes costs a fraction of a microsecond per call.

On first use the model's C (pipeline/codegen_c.py) is generated and compiled with the system compiler ($CC, else
cc, gcc or clang; `-O2 -shared -fPIC`) into a cache folder ($SURROGATE_C_CACHE, default
~/.cache/surrogate-pipeline/c). The library's name carries the sha256 of the model file together with the generated
source and the compile command, so a changed model, generator or compiler never reuses a stale library; the
library is written under a temporary name and renamed, so a concurrent process never loads a half-written one.
Generating the C needs the `onnx` package (the onnxruntime backend does not).

The checks are the loader's own (CModel is a loader.Model): the model file is verified and the card read by
Model.__init__; the out_of_range / nonfinite policies are applied by Model._checked. The C checks every row itself
(box and domain bounds) at no extra cost; only when it reports a bad row does the batch go through _checked, and
then through the C entry point without checks, so that "clip", "warn" and "allow" behave as in the loader.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from .loader import LoaderError, Model

CFLAGS = ["-O2", "-shared", "-fPIC"]
DEFAULT_CACHE = Path.home() / ".cache" / "surrogate-pipeline" / "c"


def compiler() -> str:
    """The C compiler to use; LoaderError (one line) when there is none."""
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise LoaderError("backend='c' needs a C compiler and none was found ($CC, cc, gcc, clang): install one "
                      "(e.g. apt-get install gcc) or use backend='onnxruntime'")


def build(path: Path, name: str, precision: str = "float") -> Path:
    """The compiled shared library for the model at `path`, from the cache or compiled now."""
    from . import codegen, codegen_c
    from .spec import PipelineError
    cc = compiler()
    try:
        graph = codegen.read_graph(path, expected_name=name)
    except PipelineError as e:
        raise LoaderError(str(e)) from None
    header, source = codegen_c.header(graph, precision), codegen_c.source(graph, precision)
    key = hashlib.sha256("\0".join([graph.sha256, precision, header, source, cc, *CFLAGS]).encode()).hexdigest()
    cache = Path(os.environ.get("SURROGATE_C_CACHE") or DEFAULT_CACHE)
    suffix = ".dll" if sys.platform == "win32" else ".so"
    lib = cache / f"{graph.name}-{precision}-{key[:24]}{suffix}"
    if lib.is_file():
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tmp = Path(tmp)
        (tmp / f"{graph.name}.h").write_text(header)
        (tmp / f"{graph.name}.c").write_text(source)
        out = tmp / f"lib{suffix}"
        result = subprocess.run([cc, *CFLAGS, "-I", str(tmp), str(tmp / f"{graph.name}.c"), "-lm", "-o", str(out)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
            raise LoaderError(f"{path}: compiling the generated C with {cc} failed: {first[:300]}")
        os.replace(out, lib)
    return lib


class CModel(Model):
    """The loader's Model evaluated through the generated C: the same call, named(), point() and jacobian()."""

    def __init__(self, path: str | os.PathLike, precision: str = "float", **kwargs):
        if precision not in ("float", "double"):
            raise LoaderError(f"precision must be 'float' or 'double', got {precision!r}")
        super().__init__(path, **kwargs)
        self.precision = precision
        self.library = build(self.path, self.card.name, precision)
        lib = ctypes.CDLL(str(self.library))
        n = self.card.name
        ptr, size = ctypes.c_void_p, ctypes.c_size_t
        self._batch = self._fn(lib, f"{n}_eval_batch", ctypes.c_int, [size, ptr, ptr])
        self._unchecked = self._fn(lib, f"{n}_eval_batch_unchecked", None, [size, ptr, ptr])
        self._jac = self._fn(lib, f"{n}_eval_jac_batch", ctypes.c_int, [size, ptr, ptr, ptr])
        self._jac_unchecked = self._fn(lib, f"{n}_eval_jac_batch_unchecked", None, [size, ptr, ptr, ptr])
        self._eval = self._fn(lib, f"{n}_eval", ctypes.c_int, [ptr, ptr])
        self._n_in, self._n_out = len(self.input_names), len(self.output_names)
        self._c_local = threading.local()  # point()'s buffers, one pair per thread

    @staticmethod
    def _fn(lib, name, restype, argtypes):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
        return fn

    def _inputs(self, X) -> tuple[np.ndarray, type]:
        X = np.atleast_2d(np.asarray(X))
        if X.ndim != 2 or X.shape[1] != self._n_in:
            raise LoaderError(f"expected inputs of shape (N, {self._n_in}) for {self.input_names}, got {X.shape}")
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        return np.ascontiguousarray(X, dtype=np.float64), dtype

    def __call__(self, X) -> np.ndarray:
        """(N, n_inputs) -> (N, n_outputs), float64 unless X is float32; the loader's policies."""
        X, dtype = self._inputs(X)
        Y = np.empty((len(X), self._n_out))
        if self._batch(len(X), X.ctypes.data, Y.ctypes.data) != 0:
            X, bad_rows = self._checked(X)
            X = np.ascontiguousarray(X, dtype=np.float64)
            self._unchecked(len(X), X.ctypes.data, Y.ctypes.data)
            if bad_rows is not None:
                Y[bad_rows] = np.nan
        return Y.astype(dtype, copy=False)

    def jacobian(self, X) -> np.ndarray:
        """(N, n_inputs) -> dy/dx of shape (N, n_outputs, n_inputs), physical units, float64; the loader's
        policies (with "clip" the derivative is taken at the clipped point; NaN rows with nonfinite="nan")."""
        X, _ = self._inputs(X)
        Y = np.empty((len(X), self._n_out))
        J = np.empty((len(X), self._n_out, self._n_in))
        if self._jac(len(X), X.ctypes.data, Y.ctypes.data, J.ctypes.data) != 0:
            X, bad_rows = self._checked(X)
            X = np.ascontiguousarray(X, dtype=np.float64)
            self._jac_unchecked(len(X), X.ctypes.data, Y.ctypes.data, J.ctypes.data)
            if bad_rows is not None:
                J[bad_rows] = np.nan
        return J

    def point(self, *values: float) -> np.ndarray:
        """One sample -> array of n_outputs floats, through one C call; safe from several threads at once."""
        try:
            x, y, xp, yp = self._c_local.buffers
        except AttributeError:  # the first call in this thread
            x, y = (ctypes.c_double * self._n_in)(), np.empty(self._n_out)
            x, y, xp, yp = self._c_local.buffers = x, y, ctypes.addressof(x), y.ctypes.data
        try:
            x[:] = values  # ctypes refuses a sequence of another length
        except (ValueError, TypeError):
            raise LoaderError(f"point() takes {self._n_in} numbers {self.input_names}, got {values!r}") from None
        if self._eval(xp, yp):  # a bad input: the loader's policy decides
            return self(np.array([values], dtype=np.float64))[0]
        return y.copy()
