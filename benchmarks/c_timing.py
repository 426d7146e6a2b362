"""Time the generated C code from C itself: a Python call (ctypes) would cost more than the network.

The driver reads in-domain inputs from a binary file, then times (clock_gettime, median of 7 repeats):
single calls of NAME_eval cycling through 1024 inputs, and NAME_eval_batch at each batch size.
BUILDS are the builds compared: a solver's usual flags (gcc -O2, no -march), a build for this machine
(-O3 -march=native, GNU C mode, so multiply-adds may contract to FMA), and the double-precision code at -O2; the
tests compile the same code with -std=c99 -Wall -Wextra -Werror -pedantic.

Side by side against onnxruntime, in one process (issue #10's batched targets):

    .venv/bin/python -m benchmarks.c_timing [NAME ...] [--repeats 3] [--batch 65536] [--source DIR]

For each shipped surrogate every build is compiled once; then each round times onnxruntime (the loader, one
intra-op thread, float32 inputs, as `make bench` times it) and every build in turn, seconds apart, and prints each
build's time per sample over onnxruntime's from the same round. On a shared machine absolute times drift between
runs; the ratios of one round do not. --source DIR adds the float builds compiled from DIR/NAME.c and NAME.h
(an older generator's output, `python -m pipeline codegen NAME --lang c --dest DIR`), labelled "DIR: build", to
compare before and after in the same rounds.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np

from pipeline import codegen

BUILDS = {
    "C -O2": (["-O2"], "float"),
    "C -O3 -march=native": (["-O3", "-march=native"], "float"),
    "C double -O2": (["-O2"], "double"),
}

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "{n}.h"

static double now(void) {{ struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }}
static int cmp(const void *a, const void *b) {{ double d = *(const double *)a - *(const double *)b; return (d > 0) - (d < 0); }}
static double median(double *v, int n) {{ qsort(v, n, sizeof *v, cmp); return v[n / 2]; }}

int main(int argc, char **argv) {{
    long total = atol(argv[2]), calls = atol(argv[4]), batches[16]; int nb = 0, r, i;
    double *x = malloc(sizeof(double) * total * {N}_N_INPUTS), *y = malloc(sizeof(double) * total * {N}_N_OUTPUTS);
    double times[7], sink = 0.0;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(x, sizeof(double), total * {N}_N_INPUTS, f) != (size_t)(total * {N}_N_INPUTS)) return 3;
    fclose(f);
    for (i = 5; i < argc && nb < 16; ++i) batches[nb++] = atol(argv[i]);
    printf("{{\"1\": ");
    for (r = 0; r < 7 && calls > 0; ++r) {{          /* single calls (none when calls is 0) */
        long c; double t0 = now();
        for (c = 0; c < calls; ++c) {{ {n}_eval(x + (c & 1023) * {N}_N_INPUTS, y); sink += y[0]; }}
        times[r] = (now() - t0) / calls;
    }}
    if (calls > 0) printf("%.6e", median(times, 7)); else printf("null");
    for (i = 0; i < nb; ++i) {{                      /* batches */
        long n = batches[i], reps = n < 200000 ? 200000 / n : 1, k;  /* ~200,000 samples a round */
        for (r = 0; r < 7; ++r) {{
            double t0 = now();
            for (k = 0; k < reps; ++k) {{ {n}_eval_batch(n, x, y); sink += y[0]; }}
            times[r] = (now() - t0) / (reps * n);
        }}
        printf(", \"%ld\": %.6e", n, median(times, 7));
    }}
    printf("}}\n");
    f = fopen(argv[3], "wb");   /* the outputs of the last (largest) batch, for the accuracy check */
    if (!f || fwrite(y, sizeof(double), batches[nb - 1] * {N}_N_OUTPUTS, f) != (size_t)(batches[nb - 1] * {N}_N_OUTPUTS))
        return 3;
    fclose(f);
    return sink == 12345.678 ? 4 : 0;
}}
"""


def build_driver(
    model_path: Path, work: Path, flags=("-O3", "-march=native"), precision: str = "float", source: Path | None = None
) -> Path:
    """Generate the C for model_path in `work` (or copy NAME.c/NAME.h from `source`) and compile the timing driver
    with it; returns the executable."""
    name = model_path.stem
    work.mkdir(parents=True, exist_ok=True)
    if source is None:
        codegen.generate(model_path, "c", work, precision)
    else:
        for suffix in (".c", ".h"):
            (work / f"{name}{suffix}").write_bytes((Path(source) / f"{name}{suffix}").read_bytes())
    (work / "timing.c").write_text(DRIVER.format(n=name, N=name.upper()))
    exe = work / f"{name}_timing"
    subprocess.run(
        ["gcc", *flags, "-I", str(work), str(work / f"{name}.c"), str(work / "timing.c"), "-lm", "-o", str(exe)],
        check=True,
    )
    return exe


def run_driver(exe: Path, X: np.ndarray, batches: list[int], single_calls: int = 50000) -> tuple[dict, np.ndarray]:
    """({1: seconds per single call or None, batch: seconds per sample}, the outputs of the largest batch)."""
    work = exe.parent
    np.ascontiguousarray(X, dtype=np.float64).tofile(work / "inputs.bin")
    out = subprocess.run(
        [str(exe), str(work / "inputs.bin"), str(len(X)), str(work / "outputs.bin"), str(single_calls)]
        + [str(b) for b in batches],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    Y = np.fromfile(work / "outputs.bin", dtype=np.float64).reshape(batches[-1], -1)
    return {int(k): v for k, v in json.loads(out).items()}, Y


def worst_over_tolerance(model_path: Path, X: np.ndarray, Y: np.ndarray) -> float:
    """The worst |c - ort| over the codegen tolerance on the rows of Y (<= 1 passes)."""
    from pipeline.codegen import ATOL_FRACTION, RTOL
    from pipeline.loader import load

    ref = load(model_path)(X[: len(Y)])
    return float(np.max(np.abs(Y - ref) / (RTOL * np.abs(ref) + ATOL_FRACTION * np.abs(ref).max(axis=0))))


def time_generated_c(
    model_path: Path,
    X: np.ndarray,
    batches: list[int],
    work: Path,
    flags=("-O3", "-march=native"),
    precision: str = "float",
) -> tuple[dict[int, float], float]:
    """Seconds per sample of the generated C ({1: single call, batch: eval_batch}), and how close this very build
    came to onnxruntime on the largest batch, as the worst |c - ort| over the codegen tolerance (<= 1 passes)."""
    times, Y = run_driver(build_driver(model_path, work, flags, precision), X, batches)
    return times, worst_over_tolerance(model_path, X, Y)


def reference_net(path: Path, widths=(32, 32), seed: int = 0) -> Path:
    """A 2-32-32-1 tanh network with seeded random weights, exported like a surrogate (card included).

    Issue #4 states its C targets for this size; the shipped surrogates are smaller. Weights do not change the
    cost, so this one is not trained. Its inputs are x, y in [0, 1].
    """
    import torch

    from pipeline.build.export import to_onnx
    from pipeline.build.model import ExportModel
    from pipeline.card import Card, Input, Output
    from pipeline.loader import CARD_KEY, seal

    gen = torch.Generator().manual_seed(seed)
    sizes = [2, *widths, 1]
    weights = [
        (torch.randn(o, i, generator=gen) / i**0.5, torch.randn(o, generator=gen) * 0.1)
        for i, o in zip(sizes[:-1], sizes[1:])
    ]
    # An output offset of 1, as a de-standardized physical output has: a zero-crossing output would make the
    # relative part of the codegen tolerance meaningless.
    weights[-1][1].add_(1.0)
    proto = to_onnx(ExportModel(weights, "tanh", [0.0, 0.0], [0.0]), 2)
    card = Card(
        name=path.stem,
        description=f"reference net 2-{'-'.join(map(str, widths))}-1 tanh (random)",
        inputs=[Input(n, "1", 0.0, 1.0) for n in ("x", "y")],
        outputs=[Output("z", "1")],
    )
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card.to_dict())
    path.write_bytes(seal(proto.SerializeToString()))  # with its digest, as export writes models
    return path


def onnxruntime_seconds(model, X32: np.ndarray, repeats: int = 7) -> float:
    """Seconds per sample of the loader's onnxruntime (as `make bench` times backend "onnxruntime"): median of
    `repeats` calls on the whole batch, after one warm call."""
    model(X32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(X32)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / len(X32)


def side_by_side(names: list[str], builds: dict, batch: int, repeats: int, work: Path):
    """{name: [round: {"onnxruntime" or build: seconds per sample}]}, and {(name, build): worst over tolerance}.

    builds: {label: (flags, precision, folder of NAME.c or None to generate it)}."""
    from benchmarks.backends import inputs
    from pipeline.loader import Model

    prepared, worst = {}, {}
    for name in names:
        path, X = Path("exported", f"{name}.onnx"), inputs(name, batch)
        exes = {}
        for i, (build, (flags, precision, source)) in enumerate(builds.items()):
            exes[build] = build_driver(path, work / name / str(i), flags, precision, source)
            worst[(name, build)] = worst_over_tolerance(path, X, run_driver(exes[build], X, [batch], 0)[1])
        prepared[name] = (Model(path), np.ascontiguousarray(X, dtype=np.float32), X, exes)
    results = {n: [] for n in names}
    for _ in range(repeats):
        for name, (model, X32, X, exes) in prepared.items():
            row = {"onnxruntime": onnxruntime_seconds(model, X32)}
            for build, exe in exes.items():
                row[build] = run_driver(exe, X, [batch], 0)[0][batch]
            results[name].append(row)
    return results, worst


def main(argv=None) -> None:
    import argparse
    import os
    import tempfile

    from benchmarks.backends import surrogates

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="surrogates (default: every exported one)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, each printed (default 3)")
    parser.add_argument("--batch", type=int, default=65536)
    parser.add_argument("--builds", nargs="*", default=list(BUILDS), help=f"of {list(BUILDS)}")
    parser.add_argument("--source", type=Path, help="also the float builds of NAME.c/NAME.h in this folder")
    args = parser.parse_args(argv)
    names = args.names or surrogates()
    builds = {b: (*BUILDS[b], None) for b in args.builds}
    if args.source:
        builds.update(
            {f"{args.source}: {b}": (*BUILDS[b], args.source) for b in args.builds if BUILDS[b][1] == "float"}
        )
    with tempfile.TemporaryDirectory() as tmp:
        results, worst = side_by_side(names, builds, args.batch, args.repeats, Path(tmp))
    print(
        f"batch {args.batch:,}, {args.repeats} rounds (one value per round), {os.cpu_count()} CPU(s), "
        f"load average {os.getloadavg()[0]:.2f}; time per sample, and over onnxruntime's in the same round "
        f"(issue #10: -O2 <= 1, -O3 -march=native <= 0.5)\n"
    )
    print("| surrogate | onnxruntime (1 thread) | " + " | ".join(builds) + " |")
    print("|---|---:|" + "---:|" * len(builds))
    for name, rounds in results.items():
        ort = ", ".join(f"{r['onnxruntime'] * 1e9:.3g} ns" for r in rounds)
        cells = [", ".join(f"{r[b] * 1e9:.3g} ns ({r[b] / r['onnxruntime']:.2f})" for r in rounds) for b in builds]
        print(f"| {name} | {ort} | " + " | ".join(cells) + " |")
    print(
        "\nLargest deviation from onnxruntime, in units of the codegen tolerance (<= 1 passes): "
        + "; ".join(f"{n} {b} {w:.2f}" for (n, b), w in worst.items())
    )


if __name__ == "__main__":
    main()
