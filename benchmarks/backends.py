"""The ways a surrogate can be evaluated, each prepared once and returned as `fn(X)` for the benchmark to time.

Each backend has a kind, recorded with its timings, which is what the summary goes by (not the name):
  "reference"     the reference library (per surrogate, REFERENCES)
  "framework"     the training framework running the exported module
  "onnx-runtime"  a runtime executing the exported .onnx file (the summary's "best runtime" is the fastest of these)
  "generated"     the generated code (python -m pipeline codegen), called from Python
A new backend is a prepare function and one line in BACKENDS. Where the summary compares against a kind, it takes
the kind's first backend in BACKENDS (the loader for onnx-runtime), and at batch 1 the kind's first one_sample
backend where one was timed: order the lines accordingly.

- ref: ...             the reference library as a solver would really call it: a scalar loop, and the library's
                       vectorized form where it has one (see REFERENCES), on float64 inputs
- torch                PyTorch eager: the float32 module that was exported, under inference_mode
- onnxruntime          the loader (pipeline.loader.Model): 1 intra-op thread, no spinning, range checks, chunks
- onnxruntime-point    the same session through Model.point(): bound buffers, one sample per call (batch 1 only)
- onnxruntime-parallel all cores, no spinning: for large batches
- onnxruntime-default  onnxruntime's own defaults (all cores, worker threads spin between calls)
- c-backend            load(path, backend="c"): the generated C compiled at -O2, through ctypes, same checks
- c-backend-point      the same through point(), the library's CPython extension builtin (see f.point_path): one
                       sample per call (batch 1 only); benchmarks/point_timing.py times it beside onnxruntime-point
                       and the references in rounds
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch

from pipeline import references
from pipeline.build import checkpoint, data, spec as spec_mod
from pipeline.loader import Model, load

CORES = os.cpu_count() or 1
# Scalar loops and property calls cost microseconds per sample: beyond this batch they only make `make bench` long.
SLOW_REFERENCE_MAX_BATCH = 4096


def _propssi_loop(X):
    from CoolProp.CoolProp import PropsSI

    return [[PropsSI(p, "T", T, "P", P, "Water") for p in references.WATER_PROPERTIES] for T, P in X.tolist()]


def _propssi_arrays(X):
    from CoolProp.CoolProp import PropsSI

    return np.stack([PropsSI(p, "T", X[:, 0], "P", X[:, 1], "Water") for p in references.WATER_PROPERTIES], axis=1)


@functools.lru_cache(maxsize=None)
def _water_state(backend: str):
    return references.water_state(backend)  # BICUBIC builds its tables on first use (seconds, cached)


def _abstract_state_loop(backend: str):
    props = _water_state(backend)
    return lambda X: [props(T, P) for T, P in X.tolist()]


# name -> {backend: (fn, max batch or None)}; the first entry is the spec's own reference.
REFERENCES = {
    "paraboloid": {"ref: numpy": (references.paraboloid, None)},
    "colebrook": {"ref: fluids Colebrook, scalar loop": (references.colebrook, SLOW_REFERENCE_MAX_BATCH)},
    "gnielinski": {"ref: ht Gnielinski + fluids, scalar loop": (references.gnielinski, SLOW_REFERENCE_MAX_BATCH)},
    "water": {
        "ref: AbstractState HEOS, one flash a point": (references.water, SLOW_REFERENCE_MAX_BATCH),
        "ref: CoolProp PropsSI, vectorized": (_propssi_arrays, SLOW_REFERENCE_MAX_BATCH),
        "ref: CoolProp PropsSI, scalar loop": (_propssi_loop, 64),
        "ref: AbstractState BICUBIC&HEOS, scalar loop": (
            lambda X: _abstract_state_loop("BICUBIC&HEOS")(X),
            SLOW_REFERENCE_MAX_BATCH,
        ),
    },
    "rough_pipe_nu": {
        "ref: ht Gnielinski + fluids Colebrook, scalar loop": (references.rough_pipe_nu, SLOW_REFERENCE_MAX_BATCH)
    },
    "friedel": {"ref: fluids Friedel, scalar loop": (references.friedel, SLOW_REFERENCE_MAX_BATCH)},
}


def _references(name: str) -> dict:
    """The reference backends of a surrogate: those above, or its spec's own reference as the pipeline calls it."""
    if name in REFERENCES:
        return REFERENCES[name]
    spec = spec_mod.load(name)
    return {"ref: the spec's reference": (lambda X: data.evaluate(spec, X), SLOW_REFERENCE_MAX_BATCH)}


def backends(name: str) -> list[str]:
    return [*_references(name), *BACKENDS]


def kind(name: str, backend: str) -> str:
    return "reference" if backend in _references(name) else BACKENDS[backend].kind


def one_sample(backend: str) -> bool:
    """The backend evaluates one sample per call (recorded with its timings: the summary compares batch 1 by it)."""
    return backend in BACKENDS and BACKENDS[backend].one_sample


def skip_reason(name: str, backend: str, batch: int) -> str | None:
    if backend == "torch" and not Path(checkpoint.run_dir(name), "checkpoint.pt").is_file():
        return f"no checkpoint for {name} (runs/{name}): `make train SURROGATES={name}`"
    if backend in BACKENDS and BACKENDS[backend].one_sample and batch != 1:
        return "point() evaluates one sample per call"
    limit = _references(name).get(backend, (None, None))[1]
    if limit is not None and batch > limit:
        return f"{backend} costs microseconds per sample; timed up to batch {limit} to keep `make bench` short"
    return None


def surrogates() -> list[str]:
    """Exported surrogates; BENCH_SURROGATES="a b" narrows the list (PyTorch is skipped without a checkpoint)."""
    wanted = os.environ.get("BENCH_SURROGATES", "").split() or spec_mod.available()
    return [n for n in wanted if Path("exported", f"{n}.onnx").is_file()]


@functools.lru_cache(maxsize=None)
def inputs(name: str, batch: int) -> np.ndarray:
    """In-domain float64 inputs, the same for every backend."""
    return data.sample(spec_mod.load(name), batch, "uniform", seed=7)


@functools.lru_cache(maxsize=None)
def reference_values(name: str, batch: int) -> np.ndarray:
    """The spec's reference at inputs(name, batch): what every backend's accuracy is measured against."""
    return data.evaluate(spec_mod.load(name), inputs(name, batch))


@functools.lru_cache(maxsize=None)
def torch_module(name: str):
    spec = spec_mod.load(name)
    return checkpoint.load(checkpoint.run_dir(name), spec).export_model()


def _torch(name: str, X: np.ndarray):
    module = torch_module(name)

    def run_torch(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return run_torch, np.ascontiguousarray(X, dtype=np.float32)


def _session(session: ort.InferenceSession, X: np.ndarray):
    return (lambda x: session.run(["y"], {"x": x})[0]), np.ascontiguousarray(X, dtype=np.float32)


def _point(model, X: np.ndarray):
    return (lambda row: model.point(*row)), X[0].tolist()


@dataclass(frozen=True)
class Backend:
    kind: str
    """"framework", "onnx-runtime" or "generated" (see the module's docstring)"""
    prepare: Callable[[str, Path, np.ndarray], tuple]
    """(surrogate name, its .onnx, float64 inputs) -> (fn, argument): anything to convert is converted here, untimed"""
    one_sample: bool = False
    """one sample per call (batch 1 only)"""


BACKENDS = {
    "torch": Backend("framework", lambda name, path, X: _torch(name, X)),
    "onnxruntime": Backend("onnx-runtime", lambda name, path, X: (Model(path), np.ascontiguousarray(X, np.float32))),
    "onnxruntime-point": Backend("onnx-runtime", lambda name, path, X: _point(Model(path), X), one_sample=True),
    "onnxruntime-parallel": Backend(
        "onnx-runtime", lambda name, path, X: _session(Model(path, threads=CORES).session, X)
    ),
    "onnxruntime-default": Backend(
        "onnx-runtime",
        lambda name, path, X: _session(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), X),
    ),
    "c-backend": Backend("generated", lambda name, path, X: (load(path, backend="c"), X)),
    "c-backend-point": Backend("generated", lambda name, path, X: _point(load(path, backend="c"), X), one_sample=True),
}


def prepare(name: str, backend: str, batch: int):
    """(fn, argument) for the benchmark; inputs are converted ahead for backends that take float32."""
    X = inputs(name, batch)
    if backend in _references(name):
        return _references(name)[backend][0], X
    return BACKENDS[backend].prepare(name, Path("exported", f"{name}.onnx"), X)
