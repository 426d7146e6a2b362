"""Time every backend at every batch size (pytest-benchmark), plus this machine's float32 matmul rate (the floor)
and the CPU each onnxruntime configuration burns inside a solver-like loop. `make bench` runs this and then
benchmarks/summarize.py, which turns the JSON into tables and plots."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.backends import (
    CORES,
    backends,
    inputs,
    kind,
    one_sample,
    prepare,
    reference_values,
    skip_reason,
    surrogates,
)
from benchmarks.c_timing import BUILDS as C_BUILDS
from pipeline.loader import make_session

BATCHES = [int(b) for b in os.environ.get("BENCH_BATCHES", "1,64,4096,65536").split(",")]
"""Batch sizes timed. `make bench` stops at 65,536 (the size the summary's per-sample figures are quoted at, and
past which per-sample times stop falling); `make bench-full` adds 1,048,576 (BENCH_BATCHES, comma-separated)."""
NAMES = surrogates()


ACCURACY_MAX_BATCH = 4096  # the reference itself is too slow to evaluate at larger batches for every surrogate


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name, backend", [(n, b) for n in NAMES for b in backends(n)])
def test_inference(benchmark, name, backend, batch):
    reason = skip_reason(name, backend, batch)
    if reason:
        pytest.skip(reason)
    fn, arg = prepare(name, backend, batch)
    benchmark.group = f"{name} batch={batch}"
    benchmark.extra_info.update(
        kind="inference",
        surrogate=name,
        backend=backend,
        backend_kind=kind(name, backend),
        backend_one_sample=one_sample(backend),
        batch=batch,
    )
    out = np.asarray(benchmark(fn, arg), dtype=np.float64).reshape(batch, -1)
    assert np.all(np.isfinite(out))
    if batch <= ACCURACY_MAX_BATCH:  # how far this backend is from the spec's reference, on the same inputs
        ref = reference_values(name, batch)
        benchmark.extra_info["max_abs_error"] = float(np.max(np.abs(out - ref)))
        benchmark.extra_info["max_rel_error"] = float(np.max(np.abs(out - ref) / np.abs(ref)))


def test_matmul_rate(benchmark):
    """float32 matrix multiply at this machine's full thread count: the rate the floor is computed from."""
    n = 2048
    a, b = torch.rand(n, n), torch.rand(n, n)
    benchmark.group = "floor"
    benchmark.extra_info.update(kind="matmul", flops=2 * n**3, threads=torch.get_num_threads())
    benchmark.pedantic(torch.mm, args=(a, b), rounds=5, warmup_rounds=1)


SOLVER_CONFIGS = {
    "1 thread, no spin (loader default)": (1, False),
    f"{CORES} threads, no spin": (CORES, False),
    f"{CORES} threads, spinning (onnxruntime default)": (CORES, True),
}


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


@pytest.mark.parametrize("build", list(C_BUILDS))
@pytest.mark.parametrize("name", NAMES)
def test_generated_c(benchmark, name, build, tmp_path):
    """The generated C, timed from C, per build (flags, precision); pytest-benchmark records the driver's own
    per-sample medians."""
    from benchmarks.c_timing import time_generated_c

    X = inputs(name, BATCHES[-1])
    flags, precision = C_BUILDS[build]
    result = {}
    benchmark.group = "generated C"
    benchmark.pedantic(
        lambda: result.update(
            zip(
                ("times", "worst"),
                time_generated_c(Path(f"exported/{name}.onnx"), X, BATCHES[1:], tmp_path, flags, precision),
            )
        ),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(
        kind="generated_c",
        surrogate=name,
        build=build,
        seconds_per_sample=result["times"],
        worst_over_tolerance=result["worst"],
    )
    assert result["worst"] <= 1.0, "the benchmarked build disagrees with onnxruntime beyond the codegen tolerance"


def test_generated_c_reference_net(benchmark, tmp_path):
    """The generated C for a 2-32-32-1 tanh network, the size issue #4 states its targets for."""
    from benchmarks.c_timing import reference_net, time_generated_c
    from pipeline.loader import load

    model = reference_net(tmp_path / "mlp_2_32_32_1.onnx")
    X = np.random.default_rng(7).random((BATCHES[-1], 2))
    result = {}
    benchmark.group = "generated C"
    benchmark.pedantic(
        lambda: result.update(zip(("times", "worst"), time_generated_c(model, X, BATCHES[1:], tmp_path / "c"))),
        rounds=1,
        iterations=1,
    )
    assert result["worst"] <= 1.0, "the benchmarked build disagrees with onnxruntime beyond the codegen tolerance"
    single_ort = load(model).point
    t0 = time.perf_counter()
    for row in X[:20000]:
        single_ort(*row)
    benchmark.extra_info.update(
        kind="generated_c",
        surrogate="mlp_2_32_32_1 (reference net)",
        seconds_per_sample=result["times"],
        worst_over_tolerance=result["worst"],
        onnxruntime_point_seconds=(time.perf_counter() - t0) / 20000,
    )
