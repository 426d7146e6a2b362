"""pytest-benchmark JSON -> summary.md, one plot per surrogate, and the README's results block.

    python -m benchmarks.summarize runs/bench/raw.json [--results DIR] [--readme README.md]

It reads the benchmark JSON and the exported model cards (pipeline/runtime/card.py), nothing else. `make bench`
writes runs/bench/ (a local run never rewrites committed files); `make publish` copies that run's results to
benchmarks/results/, the committed ones, and rewrites the README's results block from them (--readme).

The raw pytest-benchmark file keeps every round; benchmarks/results/bench.json keeps the statistics only (the
file that is committed beside the summary it produced).

All figures are medians of one run on one machine; ratios compare backends measured side by side in that run.
The floor is the model's dense-layer FLOPs per sample over the float32 matmul rate measured in the same run:
no runtime evaluates the network faster than that, so "x floor" says how much is left on the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

from pipeline.card import Card

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path("benchmarks/results")
"""the published results, committed: written only by `make publish`"""
LOCAL_RESULTS = Path("runs/bench")
"""what `make bench` writes: a local run never rewrites committed files"""
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
C_BACKEND = "C -O3 -march=native"  # builds without a "build" label were timed so (benchmarks before issue 10)
C_BUILDS = ["C -O2", "C -O3 -march=native", "C double -O2"]


KINDS: dict[str, str] = {}
"""backend -> its kind (benchmarks/backends.py: reference, framework, onnx-runtime, generated), as load() found it.
The summary goes by kinds, never by a backend's name: it compares against the first backend of a kind (BACKENDS
order, which the timings keep), e.g. the loader for onnx-runtime, and at batch 1 against the kind's first
one-sample backend (point()) where one was timed."""
ONE_SAMPLE: set[str] = set()
"""backends that evaluate one sample per call (Backend.one_sample)"""


def of_kind(times: dict, kind: str) -> list[str]:
    return [b for b in backends_of(times) if KINDS.get(b) == kind]


def first_of(times: dict, kind: str, one_sample: bool = False) -> str:
    """The first backend of `kind` that is (or is not) a one-sample backend; "" when none was timed."""
    return next((b for b in of_kind(times, kind) if (b in ONE_SAMPLE) == one_sample), "")


def baseline(times: dict, kind: str, batch: int) -> str:
    """What `kind` is compared by at `batch`: its first backend, or at batch 1 its first one-sample backend where
    that was timed (a solver's one call)."""
    point = first_of(times, kind, one_sample=True)
    return point if batch == 1 and (point, 1) in times else first_of(times, kind)


def load(path: Path) -> dict:
    raw = json.loads(path.read_text())
    inference, errors, loops, rate, reference_net, c_worst, one_sample = {}, {}, [], None, None, {}, {}
    for b in raw["benchmarks"]:
        info, median = b["extra_info"], b["stats"]["median"]
        if info.get("kind") == "inference":
            inference.setdefault(info["surrogate"], {})[(info["backend"], info["batch"])] = median / info["batch"]
            KINDS[info["backend"]] = info.get("backend_kind", "unknown")
            one_sample.setdefault(info["backend"], set()).add(info.get("backend_one_sample", info["batch"] == 1))
            if "max_rel_error" in info:
                errors.setdefault(info["surrogate"], {})[(info["backend"], info["batch"])] = info
        elif info.get("kind") == "generated_c" and "onnxruntime_point_seconds" in info:
            reference_net = info  # not a surrogate: a fixed-size network for the C targets
        elif info.get("kind") == "generated_c":
            build = info.get("build", C_BACKEND)
            for batch, seconds in info["seconds_per_sample"].items():
                inference.setdefault(info["surrogate"], {})[(build, int(batch))] = seconds
            c_worst[(info["surrogate"], build)] = info["worst_over_tolerance"]
        elif info.get("kind") == "matmul":
            rate = info["flops"] / median
        elif info.get("kind") == "solver_loop":
            loops.append((info["config"], median, info.get("cpu_per_wall", float("nan"))))
    ONE_SAMPLE.update(b for b, flags in one_sample.items() if flags == {True})  # older runs: timed at batch 1 only
    cpu = raw.get("machine_info", {}).get("cpu", {}).get("brand_raw", "unknown CPU")
    return {
        "inference": inference,
        "errors": errors,
        "rate": rate,
        "loops": loops,
        "cpu": cpu,
        "net": reference_net,
        "c_worst": c_worst,
        "cores": raw.get("machine_info", {}).get("cpu", {}).get("count"),
        "datetime": raw.get("datetime", ""),
    }


def card(name: str) -> Card | None:
    path = Path("exported", f"{name}.json")
    return Card.from_dict(json.loads(path.read_text()), str(path)) if path.is_file() else None


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def speed(ratio: float) -> str:
    """A ratio of times (other / this) in words."""
    r = ratio if ratio >= 1 else 1 / ratio
    text = f"{r:.2g}x" if r < 10 else f"{r:,.0f}x"
    return text + (" faster" if ratio >= 1 else " slower")


def backends_of(times: dict) -> list[str]:
    return list(dict.fromkeys(b for b, _ in times))


def batches_of(times: dict) -> list[int]:
    return sorted({n for _, n in times})


def floor_per_sample(name: str, rate: float | None) -> float | None:
    c = card(name)
    flops = c.architecture.flops_per_sample if c and c.architecture else None
    return flops / rate if flops and rate else None


def error_of(name: str, info: dict | None) -> str:
    """Max error against the spec's reference: relative where the gates are relative, else absolute."""
    if not info:
        return ""
    c = card(name)
    relative = any(m.endswith("_rel") for m in (c.gates if c else {"max_rel": 0}))
    return f"{info['max_rel_error']:.2g} rel" if relative else f"{info['max_abs_error']:.2g} abs"


def surrogate_table(name: str, times: dict, errors: dict, rate: float | None) -> list[str]:
    """Long table: every backend at every batch size."""
    floor = floor_per_sample(name, rate)
    framework = first_of(times, "framework")
    lines = [
        f"| batch | backend | per sample | samples/s | vs {framework or 'framework'} | time / floor | "
        "max error vs spec reference |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for batch in batches_of(times):
        torch_t = times.get((framework, batch))
        for backend in backends_of(times):
            t = times.get((backend, batch))
            if t is None:
                continue
            vs_torch = speed(torch_t / t) if torch_t and backend != framework else ""
            vs_floor = f"{t / floor:.1f}x" if floor and backend not in of_kind(times, "reference") else ""
            lines.append(
                f"| {batch:,} | {backend} | {fmt_time(t)} | {1 / t:,.0f} | {vs_torch} | {vs_floor} | "
                f"{error_of(name, errors.get((backend, batch)))} |"
            )
    return lines


def headline(name: str, times: dict, rate: float | None) -> list[str]:
    """Compact table for the README: per batch, the reference vs the framework vs the runtimes."""
    floor = floor_per_sample(name, rate)
    ort = of_kind(times, "onnx-runtime")
    reference, framework, runtime = (first_of(times, k) for k in ("reference", "framework", "onnx-runtime"))
    lines = [
        f"| batch | {reference.removeprefix('ref: ')} | {framework} | {runtime} (loader) | {runtime} (best) | "
        f"best vs {framework} | best vs reference | best / floor | generated C (batch 1: from Python) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in batches_of(times):
        measured = [b for b in ort if (b, batch) in times]
        if not measured:
            continue
        best_backend = min(measured, key=lambda b: times[(b, batch)])
        best = times[(best_backend, batch)]
        cells = [fmt_time(times[(b, batch)]) if (b, batch) in times else "–" for b in (reference, framework, runtime)]
        ref, tor = times.get((reference, batch)), times.get((framework, batch))
        vs_torch = speed(tor / best) if tor else "–"
        vs_ref = speed(ref / best) if ref else "–"
        vs_floor = f"{best / floor:.1f}x" if floor else "–"
        config = best_backend.removeprefix(runtime).strip("-") or "solver"
        c_time = times.get((baseline(times, "generated", 1) if batch == 1 else C_BACKEND, batch))
        lines.append(
            f"| {batch:,} | {' | '.join(cells)} | {fmt_time(best)} ({config}) | {vs_torch} | {vs_ref} "
            f"| {vs_floor} | {fmt_time(c_time) if c_time else '–'} |"
        )
    return lines


def versus_references(name: str, times: dict, errors: dict) -> list[str]:
    """Plain sentences: the surrogate against each way of calling its reference library."""
    ort = of_kind(times, "onnx-runtime")
    lines = []
    for ref in of_kind(times, "reference"):
        batches = [n for n in batches_of(times) if (ref, n) in times]
        parts = []
        for batch in sorted({batches[0], batches[-1]}):
            # one call from Python: the generated code's point() where it was measured (the fastest Python path)
            point = first_of(times, "generated", one_sample=True)
            candidates = [point] if batch == 1 and (point, 1) in times else ort
            best = min((b for b in candidates if (b, batch) in times), key=lambda b: times[(b, batch)])
            per = "per call" if batch == 1 else "per sample"
            parts.append(
                f"at batch {batch:,} the surrogate ({best}, {fmt_time(times[(best, batch)])} {per}) is "
                f"**{speed(times[(ref, batch)] / times[(best, batch)])}** than {ref.removeprefix('ref: ')} "
                f"({fmt_time(times[(ref, batch)])} {per})"
            )
        err = error_of(name, errors.get((ref, min(4096, batches[-1]))))
        note = (
            f"; that reference path itself differs from the spec's reference by {err}"
            if err and not err.startswith("0 ")
            else ""
        )
        lines.append(f"- {'; '.join(parts)}{note}.")
    return lines


def accuracy_table(names: list[str]) -> list[str]:
    lines = [
        "| surrogate | network | gate | threshold | achieved (domain: grid, or sample + search) | "
        "achieved (held-out) | training |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for name in names:
        c = card(name)
        if not c:
            continue
        arch = c.architecture
        net = f"{len(c.inputs)}-{'-'.join(map(str, arch.widths))}-{len(c.outputs)} {arch.activation}"
        t = c.training
        train = f"{t.get('steps', '?')} {t.get('trainer', '')} steps ({t.get('stop_reason', '?')})"
        for out in c.outputs:
            for metric, threshold in c.gates.items():
                got = {s: c.achieved.get(s, {}).get(out.name, {}).get(metric) for s in ("grid", "domain", "holdout")}
                cell = lambda v: f"{v:.3g}" if v is not None else "–"  # noqa: E731
                domain = got["grid"] if got["grid"] is not None else got["domain"]
                lines.append(
                    f"| {name} | {net} | {out.name} {metric} | {threshold:.3g} | {cell(domain)} | "
                    f"{cell(got['holdout'])} | {train} |"
                )
            slopes = c.derivatives or {}
            if slopes.get("gate"):
                exempt = slopes.get("report_only", [])
                gated = [
                    v for out, per_input in slopes["errors"].items() if out not in exempt for v in per_input.values()
                ]
                what = f"every slope but {', '.join(exempt)}'s" if exempt else "every slope"
                lines.append(
                    f"| {name} | {net} | {what}, max/rms | {slopes['gate']:.3g} | {max(gated):.3g} | – | {train} |"
                )
    return lines


def plot(name: str, times: dict, rate: float | None, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for backend in backends_of(times):
        pts = [(n, times[(backend, n)] * 1e9) for n in batches_of(times) if (backend, n) in times]
        ax.plot(*zip(*pts), marker="o", label=backend)
    floor = floor_per_sample(name, rate)
    if floor:
        ax.axhline(floor * 1e9, color="k", linestyle="--", label="floor (FLOPs / matmul rate)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="time per sample [ns]",
        title=f"{name}: time per sample (median)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def side_by_side(name: str, times: dict, worst: dict) -> list[str]:
    """Per batch size: the runtime (the loader, on one thread), each C build (timed from C), the generated code from
    Python and each reference, time per sample (batch 1: per call), with the ratio to the runtime."""
    runtime, builds = first_of(times, "onnx-runtime"), [b for b in C_BUILDS if any(k == b for k, _ in times)]
    if not builds:
        return []
    cols = []  # (label, the backend timed at a batch, whether to give the ratio to the runtime)
    if runtime:
        cols.append((f"{runtime} (1 thread; batch 1: point())", lambda n: baseline(times, "onnx-runtime", n), False))
    cols += [(build, lambda n, build=build: build, True) for build in builds]
    if first_of(times, "generated"):
        cols.append(("Python C backend (batch 1: point())", lambda n: baseline(times, "generated", n), True))
    cols += [(r.removeprefix("ref: "), lambda n, r=r: r, False) for r in of_kind(times, "reference")]
    lines = ["| batch | " + " | ".join(label for label, _, _ in cols) + " |", "|---:|" + "---:|" * len(cols)]
    for batch in batches_of(times):
        ort = times.get((baseline(times, "onnx-runtime", batch), batch))
        cells = []
        for _, backend_at, compared in cols:
            t = times.get((backend_at(batch), batch))
            ratio = f" ({ort / t:.2g}x)" if t and ort and compared else ""
            cells.append(f"{fmt_time(t)}{ratio}" if t else "–")
        lines.append(f"| {batch:,} | " + " | ".join(cells) + " |")
    tol = ", ".join(f"{b} {worst[(name, b)]:.2f}x" for b in C_BUILDS if (name, b) in worst)
    if tol:
        lines += [
            "",
            f"Largest deviation from {runtime or 'the runtime'} at the largest batch, in units of the codegen "
            f"tolerance (≤ 1 passes): {tol}.",
        ]
    return lines


def generated_c_lines(results: dict) -> list[str]:
    """The generated C against onnxruntime, per surrogate: one call, and per sample in a batch of 65,536."""
    lines = []
    for name, times in sorted(results["inference"].items()):
        runtime, runtime_point = first_of(times, "onnx-runtime"), first_of(times, "onnx-runtime", one_sample=True)
        ort_batch, point = times.get((runtime, 65536)), times.get((runtime_point, 1))
        if ort_batch is None or point is None:  # the batch (or batch 1) was not benchmarked: nothing to compare
            continue
        parts = []
        for build in C_BUILDS:
            if (build, 65536) in times:
                parts.append(
                    f"{build} {fmt_time(times[(build, 65536)])}/sample ({speed(ort_batch / times[(build, 65536)])})"
                )
        if not parts:
            continue
        c_point = times.get((first_of(times, "generated", one_sample=True), 1))
        py = (
            (
                f"; from Python, the C backend's point() {fmt_time(c_point)} a call vs onnxruntime point() "
                f"{fmt_time(point)} ({speed(point / c_point)})"
            )
            if c_point
            else ""
        )
        lines.append(
            f"- {name}: batch 65,536 on one core, vs onnxruntime (1 thread) {fmt_time(ort_batch)}/sample: "
            f"{'; '.join(parts)}{py}."
        )
    net = results.get("net")
    if net:
        per = net["seconds_per_sample"]
        lines.append(
            f"- {net['surrogate']}, the size issue #4 states its targets for (≤ 150 ns a call, ≤ 30 ns/sample "
            f"batched), C -O3 -march=native: one call {fmt_time(per['1'])}, batched "
            f"{fmt_time(per['65536'])}/sample; onnxruntime point() {fmt_time(net['onnxruntime_point_seconds'])}"
            f" a call; largest deviation from onnxruntime {net['worst_over_tolerance']:.2f}x the codegen "
            f"tolerance."
        )
    return lines


def summary(results: dict, plots: bool = True, out: Path = RESULTS) -> tuple[str, str]:
    """(full summary.md, the README block); plots: also write one plot per surrogate to `out`."""
    rate = results["rate"]
    names = sorted(results["inference"])
    head = [
        f"Measured on {results['cpu']} ({results['cores']} cores), {results['datetime'][:10]}; medians. "
        f"float32 matmul rate (2048², all threads): {rate / 1e9:.0f} GFLOP/s."
        if rate
        else ""
    ]
    full = ["# Benchmark summary", "", *head, "", "Regenerate with `make bench`.", ""]
    readme = [
        "### Accuracy (from the exported model cards, evaluated in onnxruntime)",
        "",
        *accuracy_table(names),
        "",
        "### Speed (time per sample; `make bench`)",
        "",
        *head,
        "",
    ]
    for name in names:
        times = results["inference"][name]
        if plots:
            plot(name, times, rate, out / f"{name}.png")
        floor = floor_per_sample(name, rate)
        floor_line = (
            f"Floor: {card(name).architecture.flops_per_sample} FLOPs/sample -> {fmt_time(floor)}." if floor else ""
        )
        errors = results["errors"].get(name, {})
        plain = versus_references(name, times, errors)
        sbs = side_by_side(name, times, results["c_worst"])
        sbs = (
            [
                "Side by side (time per sample; batch 1: per call; in brackets: onnxruntime's time over this one):",
                "",
                *sbs,
                "",
            ]
            if sbs
            else []
        )
        full += [
            f"## {name}",
            "",
            floor_line,
            "",
            *plain,
            "",
            *sbs,
            *surrogate_table(name, times, errors, rate),
            "",
            f"![{name}]({name}.png)",
            "",
        ]
        readme += [f"**{name}**. {floor_line}", "", *plain, "", *headline(name, times, rate), "", *sbs]
    c_lines = generated_c_lines(results)
    if c_lines:
        full += ["## Generated C", "", *c_lines, ""]
        readme += [
            "**Generated C** (`python -m pipeline codegen`, timed from C; builds in benchmarks/c_timing.py).",
            "",
            *c_lines,
            "",
        ]
    if results["loops"]:
        loop = ["| onnxruntime session | time per loop | CPU seconds per wall second |", "|---|---:|---:|"]
        loop += [f"| {c} | {fmt_time(t)} | {r:.2f} |" for c, t, r in results["loops"]]
        text = [
            "",
            "A solver's loop (50 x: a batch of 4096 through the surrogate, then the solver's own "
            "single-threaded work). Spinning workers burn a second core while the solver works:",
            "",
            *loop,
            "",
        ]
        full += ["## Session options in a solver loop", *text]
        readme += ["**Session options in a solver loop.**", *text]
    readme += ["Full tables and plots: [benchmarks/results/summary.md](benchmarks/results/summary.md)."]
    return "\n".join(full) + "\n", "\n".join(readme)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path)
    p.add_argument("--readme", type=Path, help="replace the README's results block")
    p.add_argument(
        "--readme-only",
        action="store_true",
        help="write the README block only, not the results folder (`make readme`)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=LOCAL_RESULTS,
        help=f"folder for bench.json, summary.md and the plots (default {LOCAL_RESULTS}; `make publish`: {RESULTS})",
    )
    args = p.parse_args()
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    full, block = summary(load(args.json), plots=not args.readme_only, out=out)
    if not args.readme_only:
        raw = json.loads(args.json.read_text())
        for b in raw["benchmarks"]:
            b["stats"].pop("data", None)
        (out / "bench.json").write_text(json.dumps(raw, indent=1) + "\n")
        (out / "summary.md").write_text(full)
        print(full)
    if args.readme:
        text = args.readme.read_text()
        if BEGIN not in text or END not in text:
            raise SystemExit(f"{args.readme} has no {BEGIN} ... {END} block")
        before, rest = text.split(BEGIN, 1)
        args.readme.write_text(before + BEGIN + "\n" + block + "\n" + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
