"""The ways a surrogate can be evaluated, each prepared once and returned as `fn(X)` for the benchmark to time.

- reference            the spec's reference function, vectorized, on float64 inputs (what the surrogate replaces)
- torch                PyTorch eager: the float32 module that was exported, under inference_mode
- onnxruntime          the loader's solver-loop session: 1 intra-op thread, no spinning, session.run
- onnxruntime-point    the same session through Model.point(): bound buffers, one sample per call (batch 1 only)
- onnxruntime-parallel all cores, no spinning: for large batches
- onnxruntime-default  onnxruntime's own defaults (all cores, worker threads spin between calls)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from pipeline import checkpoint, data, spec as spec_mod
from pipeline.loader import Model

BACKENDS = ["reference", "torch", "onnxruntime", "onnxruntime-point", "onnxruntime-parallel", "onnxruntime-default"]
CORES = os.cpu_count() or 1


def surrogates() -> list[str]:
    """Exported surrogates with a checkpoint (for PyTorch); BENCH_SURROGATES="a b" narrows the list."""
    wanted = os.environ.get("BENCH_SURROGATES", "").split() or spec_mod.available()
    return [n for n in wanted if Path("exported", f"{n}.onnx").is_file() and
            Path(checkpoint.run_dir(n), "checkpoint.pt").is_file()]


@functools.lru_cache(maxsize=None)
def inputs(name: str, batch: int) -> np.ndarray:
    """In-domain float64 inputs, the same for every backend."""
    return data.sample(spec_mod.load(name), batch, "uniform", seed=7)


@functools.lru_cache(maxsize=None)
def torch_module(name: str):
    spec = spec_mod.load(name)
    return checkpoint.load(checkpoint.run_dir(name), spec).export_model()


def prepare(name: str, backend: str, batch: int):
    """(fn, argument) for the benchmark; inputs are converted ahead for backends that take float32."""
    X = inputs(name, batch)
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    path = Path("exported", f"{name}.onnx")
    if backend == "reference":
        return data.resolve_callable(spec_mod.load(name).reference.callable), X
    if backend == "torch":
        module = torch_module(name)

        def run_torch(x):
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()
        return run_torch, X32
    if backend == "onnxruntime-point":
        model = Model(path)
        return (lambda row: model.point(*row)), X[0].tolist()
    if backend == "onnxruntime-default":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    else:
        session = Model(path, threads=CORES if backend == "onnxruntime-parallel" else 1).session
    return (lambda x: session.run(["y"], {"x": x})[0]), X32
