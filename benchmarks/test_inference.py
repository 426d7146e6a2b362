"""Time every backend at every batch size (pytest-benchmark), plus this machine's float32 matmul rate (the floor)
and the CPU each onnxruntime configuration burns inside a solver-like loop. `make bench` runs this and then
benchmarks/summarize.py, which turns the JSON into tables and plots."""

import time

import numpy as np
import pytest
import torch

from benchmarks.backends import BACKENDS, CORES, inputs, prepare, surrogates
from pipeline.loader import make_session

BATCHES = [1, 64, 4096, 65536, 1_048_576]
NAMES = surrogates()


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", NAMES)
def test_inference(benchmark, name, backend, batch):
    if backend == "onnxruntime-point" and batch != 1:
        pytest.skip("point() evaluates one sample per call")
    fn, arg = prepare(name, backend, batch)
    benchmark.group = f"{name} batch={batch}"
    benchmark.extra_info.update(kind="inference", surrogate=name, backend=backend, batch=batch)
    out = benchmark(fn, arg)
    assert np.all(np.isfinite(out))


def test_matmul_rate(benchmark):
    """float32 matrix multiply at this machine's full thread count: the rate the floor is computed from."""
    n = 2048
    a, b = torch.rand(n, n), torch.rand(n, n)
    benchmark.group = "floor"
    benchmark.extra_info.update(kind="matmul", flops=2 * n ** 3, threads=torch.get_num_threads())
    benchmark.pedantic(torch.mm, args=(a, b), rounds=5, warmup_rounds=1)


SOLVER_CONFIGS = {"1 thread, no spin (loader default)": (1, False), f"{CORES} threads, no spin": (CORES, False),
                  f"{CORES} threads, spinning (onnxruntime default)": (CORES, True)}


@pytest.mark.parametrize("config", list(SOLVER_CONFIGS))
@pytest.mark.parametrize("name", NAMES[:1])
def test_solver_loop(benchmark, name, config):
    """A solver's loop: a batch of 4096 points through the surrogate, then ~as long of the solver's own work.

    Records CPU seconds per wall second: above 1 means onnxruntime's idle workers burn cores the solver needs.
    """
    threads, spinning = SOLVER_CONFIGS[config]
    session = make_session(f"exported/{name}.onnx", threads=threads, spinning=spinning)
    X = np.ascontiguousarray(inputs(name, 4096), dtype=np.float32)
    work = np.random.default_rng(0).random(200_000)

    def loop():
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(50):
            session.run(["y"], {"x": X})
            np.sort(work)  # the solver's own single-threaded work
        benchmark.extra_info["cpu_per_wall"] = (time.process_time() - cpu) / (time.perf_counter() - wall)

    benchmark.group = "solver loop"
    benchmark.extra_info.update(kind="solver_loop", surrogate=name, config=config)
    benchmark.pedantic(loop, rounds=3, warmup_rounds=1)

