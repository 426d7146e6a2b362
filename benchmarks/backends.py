"""The ways a surrogate can be evaluated, each prepared once and returned as `fn(X)` for the benchmark to time.

- ref: ...             the reference library as a solver would really call it: a scalar loop, and the library's
                       vectorized form where it has one (see REFERENCES), on float64 inputs
- torch                PyTorch eager: the float32 module that was exported, under inference_mode
- onnxruntime          the loader (pipeline.loader.Model): 1 intra-op thread, no spinning, range checks, chunks
- onnxruntime-point    the same session through Model.point(): bound buffers, one sample per call (batch 1 only)
- onnxruntime-parallel all cores, no spinning: for large batches
- onnxruntime-default  onnxruntime's own defaults (all cores, worker threads spin between calls)
- c-backend            load(path, backend="c"): the generated C compiled at -O2, through ctypes, same checks
- c-backend-point      the same through point(): one sample per call (batch 1 only)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from pipeline import checkpoint, data, references, spec as spec_mod
from pipeline.loader import Model

SURROGATE_BACKENDS = ["torch", "onnxruntime", "onnxruntime-point", "onnxruntime-parallel", "onnxruntime-default",
                      "c-backend", "c-backend-point"]
CORES = os.cpu_count() or 1
# Scalar loops and property calls cost microseconds per sample: beyond this batch they only make `make bench` long.
SLOW_REFERENCE_MAX_BATCH = 4096


def _propssi_loop(X):
    from CoolProp.CoolProp import PropsSI
    return [[PropsSI(p, "T", T, "P", P, "Water") for p in references.WATER_PROPERTIES] for T, P in X.tolist()]


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
        "ref: CoolProp PropsSI, vectorized": (references.water, SLOW_REFERENCE_MAX_BATCH),
        "ref: CoolProp PropsSI, scalar loop": (_propssi_loop, 64),
        "ref: AbstractState HEOS, scalar loop": (lambda X: _abstract_state_loop("HEOS")(X), SLOW_REFERENCE_MAX_BATCH),
        "ref: AbstractState BICUBIC&HEOS, scalar loop": (lambda X: _abstract_state_loop("BICUBIC&HEOS")(X),
                                                         SLOW_REFERENCE_MAX_BATCH),
    },
    "rough_pipe_nu": {"ref: ht Gnielinski + fluids Colebrook, scalar loop": (references.rough_pipe_nu,
                                                                             SLOW_REFERENCE_MAX_BATCH)},
    "friedel": {"ref: fluids Friedel, scalar loop": (references.friedel, SLOW_REFERENCE_MAX_BATCH)},
}


def _references(name: str) -> dict:
    """The reference backends of a surrogate: those above, or its spec's own reference as the pipeline calls it."""
    if name in REFERENCES:
        return REFERENCES[name]
    spec = spec_mod.load(name)
    return {"ref: the spec's reference": (lambda X: data.evaluate(spec, X), SLOW_REFERENCE_MAX_BATCH)}


def backends(name: str) -> list[str]:
    return [*_references(name), *SURROGATE_BACKENDS]


def skip_reason(name: str, backend: str, batch: int) -> str | None:
    if backend == "torch" and not Path(checkpoint.run_dir(name), "checkpoint.pt").is_file():
        return f"no checkpoint for {name} (runs/{name}): `make train SURROGATES={name}`"
    if backend.endswith("-point") and batch != 1:
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


def prepare(name: str, backend: str, batch: int):
    """(fn, argument) for the benchmark; inputs are converted ahead for backends that take float32."""
    X = inputs(name, batch)
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    path = Path("exported", f"{name}.onnx")
    if backend.startswith("ref: "):
        return _references(name)[backend][0], X
    if backend == "torch":
        module = torch_module(name)

        def run_torch(x):
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()
        return run_torch, X32
    if backend == "onnxruntime-point":
        model = Model(path)
        return (lambda row: model.point(*row)), X[0].tolist()
    if backend == "onnxruntime":
        return Model(path), X32
    if backend.startswith("c-backend"):
        from pipeline.loader import load
        model = load(path, backend="c")
        return ((lambda row: model.point(*row)), X[0].tolist()) if backend.endswith("-point") else (model, X)
    if backend == "onnxruntime-default":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    else:
        session = Model(path, threads=CORES).session
    return (lambda x: session.run(["y"], {"x": x})[0]), X32
