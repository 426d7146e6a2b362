"""point() at batch 1, side by side in one process: backend "c" against the onnxruntime backend and the references.

    .venv/bin/python -m benchmarks.point_timing [NAME ...] [--repeats 3]

For each shipped surrogate (exported/NAME.onnx; BENCH_SURROGATES or the arguments narrow the list) the calls are
timed in rounds: each round times every way once, in turn (the best of 5 runs of enough calls to fill ~50 ms), so
that the ratios come from measurements taken seconds apart on a machine whose load changes; `--repeats` rounds (3 by
default) are printed, not averaged away. The ways are those of `make bench` at batch 1 (benchmarks/backends.py):
c-backend-point (`f.point(*row)` with f = load(path, backend="c")), onnxruntime-point (the same with
the onnxruntime backend) and each reference as a solver
would call it, on the same in-domain sample. The last columns check issue #10's target for the C backend's point():
at most 1 µs a call, and at least 4x faster than onnxruntime's point() in the same round.
"""

from __future__ import annotations

import argparse
import os
import timeit
from pathlib import Path

from benchmarks.backends import _references, inputs, prepare, skip_reason, surrogates

TARGET_SECONDS, TARGET_RATIO = 1e-6, 4.0


def seconds_per_call(timer: timeit.Timer, budget: float = 0.05) -> float:
    """The best of 5 runs, each of enough calls to take about `budget` seconds."""
    timer.timeit(1)  # warm: first-call costs (CoolProp tables, buffers bound per thread) are not per-call costs
    number, elapsed = 1, 0.0
    while elapsed < budget / 5 and number < 10**7:
        number *= 4
        elapsed = timer.timeit(number)
    number = max(1, int(number * budget / max(elapsed, 1e-9)))
    return min(timer.repeat(repeat=5, number=number)) / number


def prepare_timer(name: str, way: str) -> timeit.Timer:
    """The call as a caller writes it: `f.point(T, p)` for the point() ways (no wrapper around it), the reference
    as benchmarks/backends.py calls it at batch 1."""
    if way.endswith("-point"):
        from pipeline.loader import load

        model = load(Path("exported", f"{name}.onnx"), backend="c" if way.startswith("c-") else "onnxruntime")
        return timeit.Timer("f.point(*row)", globals={"f": model, "row": inputs(name, 1)[0].tolist()})
    fn, arg = prepare(name, way, 1)
    return timeit.Timer("fn(arg)", globals={"fn": fn, "arg": arg})


def ways(name: str) -> list[str]:
    refs = [r for r in _references(name) if skip_reason(name, r, 1) is None]
    return ["c-backend-point", "onnxruntime-point", *refs]


def measure(names: list[str], repeats: int = 3) -> dict[str, list[dict[str, float]]]:
    """{name: [round: {way: seconds per call}]}."""
    prepared = {n: {w: prepare_timer(n, w) for w in ways(n)} for n in names}
    results = {n: [] for n in names}
    for _ in range(repeats):
        for n in names:
            results[n].append({w: seconds_per_call(timer) for w, timer in prepared[n].items()})
    return results


def us(t: float) -> str:
    return f"{t * 1e6:.3g}"


def table(results: dict[str, list[dict[str, float]]]) -> str:
    lines = [
        (
            "| surrogate | C backend point() [µs] | onnxruntime point() [µs] | onnxruntime / C | reference [µs] "
            "| reference / C | ≤ 1 µs and ≥ 4x |"
        ),
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for n, rounds in results.items():
        c = [r["c-backend-point"] for r in rounds]
        o = [r["onnxruntime-point"] for r in rounds]
        refs = [w for w in rounds[0] if w.startswith("ref: ")]
        ok = all(ci <= TARGET_SECONDS and oi / ci >= TARGET_RATIO for ci, oi in zip(c, o))
        ref_cells = "; ".join(f"{w[5:]}: {', '.join(us(r[w]) for r in rounds)}" for w in refs)
        ref_ratio = "; ".join(", ".join(f"{r[w] / r['c-backend-point']:.3g}x" for r in rounds) for w in refs)
        lines.append(
            f"| {n} | {', '.join(map(us, c))} | {', '.join(map(us, o))} "
            f"| {', '.join(f'{oi / ci:.3g}x' for ci, oi in zip(c, o))} | {ref_cells} | {ref_ratio} "
            f"| {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="surrogates (default: every exported one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    names = args.names or surrogates()
    from pipeline.loader import load

    path = load(f"exported/{names[0]}.onnx", backend="c").point_path
    print(
        f"{len(names)} surrogate(s), {args.repeats} rounds (one value per round), {os.cpu_count()} CPU(s); "
        f"C backend point(): {path}\n"
    )
    print(table(measure(names, args.repeats)))


if __name__ == "__main__":
    main()
