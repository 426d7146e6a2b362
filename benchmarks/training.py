"""What `make train` (or `make gate`) recorded, per surrogate: wall time, steps, time and flops per step, and the
achieved error against the gate. It reads runs/NAME/{metrics,history,gates}.json and trains nothing.

    python -m benchmarks.training [--runs runs] [NAME ...]

Flops per step counts the dominant term of an LM step, forming JᵀJ over every residual row: rows x parameters²
(a symmetric rank-k update of the last step's rows; the Jacobian itself and the solve are smaller terms). The
achieved error is the worst metric / threshold ratio: from verify's gates.json when verify ran (`make gate`,
`make verify`), otherwise on the held-out samples at the last check of training.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BEFORE = {"water": 833.0, "friedel": 312.0}
"""seconds that `make train` took per surrogate in a fresh clone on 2026-12-01 (issue "Fast again"), for comparison"""


def read(folder: Path) -> dict | None:
    """One surrogate's row, or None when it has not been trained in this runs folder."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        history = json.loads((folder / "history.json").read_text())
    except (OSError, ValueError):
        return None
    checks = [h for h in history if "holdout_ratio" in h and "loss" in h]
    ratio, source = (checks[-1]["holdout_ratio"], "held-out (training)") if checks else (float("nan"), "")
    try:
        gates = json.loads((folder / "gates.json").read_text())
        ratio = max(r["achieved"] / r["threshold"] for r in gates["rows"])
        source = "verify (domain and held-out)"
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        pass
    steps, seconds = metrics["steps"], metrics["train_seconds"]
    return {
        "surrogate": metrics["surrogate"],
        "seconds": seconds,
        "steps": steps,
        "seconds_per_step": seconds / max(steps, 1),
        "flops_per_step": metrics.get("rows", 0) * metrics["parameters"] ** 2,
        "parameters": metrics["parameters"],
        "rows": metrics.get("rows"),
        "stop": metrics["stop_reason"],
        "ratio": ratio,
        "ratio_from": source,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| surrogate | wall s | before | steps | ms/step | JᵀJ Gflop/step | params | rows | stop | worst error / gate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        before = BEFORE.get(r["surrogate"])
        lines.append(
            f"| {r['surrogate']} | {r['seconds']:.1f} | {f'{before:.0f}' if before else ''} | {r['steps']} "
            f"| {1e3 * r['seconds_per_step']:.1f} | {r['flops_per_step'] / 1e9:.3g} | {r['parameters']} "
            f"| {r['rows'] or ''} | {r['stop']} | {r['ratio']:.3g} ({r['ratio_from']}) |"
        )
    total = sum(r["seconds"] for r in rows)
    lines.append(f"\nTraining time summed over surrogates: {total:.0f} s (with --jobs N they run N at a time).")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs"))
    p.add_argument("names", nargs="*", help="surrogates (default: every trained one in --runs)")
    args = p.parse_args()
    folders = [args.runs / n for n in args.names] if args.names else sorted(args.runs.iterdir())
    rows = [r for r in map(read, folders) if r]
    if not rows:
        raise SystemExit(f"no trained surrogate in {args.runs}: run `make train` first")
    print(table(rows))


if __name__ == "__main__":
    main()
