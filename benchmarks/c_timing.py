"""Time the generated C code from C itself: a Python call (ctypes) would cost more than the network.

The driver reads in-domain inputs from a binary file, then times (clock_gettime, median of 7 repeats):
single calls of NAME_eval cycling through 1024 inputs, and NAME_eval_batch at each batch size.
BUILDS are the builds compared: a solver's usual flags (gcc -O2, no -march), a build for this machine
(-O3 -march=native, GNU C mode, so multiply-adds may contract to FMA), and the double-precision code at -O2; the
tests compile the same code with -std=c99 -Wall -Wextra -Werror -pedantic.
"""

from __future__ import annotations

import json
import subprocess
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
    long total = atol(argv[2]), batches[16]; int nb = 0, r, i;
    double *x = malloc(sizeof(double) * total * {N}_N_INPUTS), *y = malloc(sizeof(double) * total * {N}_N_OUTPUTS);
    double times[7], sink = 0.0;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(x, sizeof(double), total * {N}_N_INPUTS, f) != (size_t)(total * {N}_N_INPUTS)) return 3;
    fclose(f);
    for (i = 4; i < argc; ++i) batches[nb++] = atol(argv[i]);
    printf("{{");
    for (r = 0; r < 7; ++r) {{                       /* single calls */
        const long calls = 200000; long c; double t0 = now();
        for (c = 0; c < calls; ++c) {{ {n}_eval(x + (c & 1023) * {N}_N_INPUTS, y); sink += y[0]; }}
        times[r] = (now() - t0) / calls;
    }}
    printf("\"1\": %.6e", median(times, 7));
    for (i = 0; i < nb; ++i) {{                      /* batches */
        long n = batches[i], reps = n < 100000 ? 1000000 / n : 1, k;
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
    from pipeline.codegen import ATOL_FRACTION, RTOL
    from pipeline.loader import load

    name = model_path.stem
    work.mkdir(parents=True, exist_ok=True)
    codegen.generate(model_path, "c", work, precision)
    (work / "timing.c").write_text(DRIVER.format(n=name, N=name.upper()))
    exe = work / f"{name}_timing"
    subprocess.run(
        ["gcc", *flags, "-I", str(work), str(work / f"{name}.c"), str(work / "timing.c"), "-lm", "-o", str(exe)],
        check=True,
    )
    np.ascontiguousarray(X, dtype=np.float64).tofile(work / "inputs.bin")
    out = subprocess.run(
        [str(exe), str(work / "inputs.bin"), str(len(X)), str(work / "outputs.bin"), *map(str, batches)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    n = batches[-1]
    ref = load(model_path)(X[:n])
    Y = np.fromfile(work / "outputs.bin", dtype=np.float64).reshape(n, -1)
    worst = float(np.max(np.abs(Y - ref) / (RTOL * np.abs(ref) + ATOL_FRACTION * np.abs(ref).max(axis=0))))
    return {int(k): v for k, v in json.loads(out).items()}, worst


def reference_net(path: Path, widths=(32, 32), seed: int = 0) -> Path:
    """A 2-32-32-1 tanh network with seeded random weights, exported like a surrogate (card included).

    Issue #4 states its C targets for this size; the shipped surrogates are smaller. Weights do not change the
    cost, so this one is not trained. Its inputs are x, y in [0, 1].
    """
    import torch

    from pipeline.card import Card, Input, Output
    from pipeline.export import to_onnx
    from pipeline.loader import CARD_KEY, seal
    from pipeline.model import ExportModel

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
