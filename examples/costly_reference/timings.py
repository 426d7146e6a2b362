"""The worked example's timings, rerunnable: `.venv/bin/python examples/costly_reference/timings.py` (about 6
minutes on 2 cores; --out FOLDER keeps the runs, default a temporary folder).

`python -m pipeline gate fin.toml` four times: serial (SURROGATE_JOBS=1), on this machine's worker processes (2 on
the reference machine), through a dask.distributed.LocalCluster of 2 single-threaded worker processes
(--scheduler), each in a fresh runs folder; then the serial run's folder again, from its cache. The spec's budget is
in evaluations, so every run plans the same points whatever the measured cost; the trained models must then be the
same bytes (the checkpoints; the exported cards differ in the cost they measured). Prints the Markdown table that
docs/references.md shows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "fin.toml"


def gate(runs: Path, label: str, extra: list[str], env: dict) -> dict:
    """One `gate` run: its wall time, the evaluations it made (new cache rows), its verdict, the model's sha256."""
    before = _cached(runs)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "gate", str(SPEC), "--runs", str(runs), "--out", str(runs / "exported"),
         "--quiet", *extra],
        env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{label}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    subprocess.run(
        [sys.executable, "-m", "pipeline", "export", str(SPEC), "--runs", str(runs), "--out", str(runs / "exported")],
        env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    achieved = re.findall(r"^domain\s+eta\s+max_rel\s+\S+\s+(\S+)", done.stdout, re.M)
    checkpoint = runs / "fin" / "checkpoint.pt"
    return {
        "label": label,
        "seconds": seconds,
        "evaluations": _cached(runs) - before,
        "domain max_rel": achieved[0] if achieved else "?",
        "model sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12],
        "plan": next((line for line in done.stdout.splitlines() if line.startswith("verified on")), ""),
    }


def _cached(runs: Path) -> int:
    path = runs / "fin" / "reference_cache.sqlite"
    if not path.is_file():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
    finally:
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="fin-timings-"))
    from distributed import LocalCluster

    rows = [
        gate(out / "serial", "serial (SURROGATE_JOBS=1)", [], {"SURROGATE_JOBS": "1"}),
        gate(out / "workers", f"{len(os.sched_getaffinity(0))} worker processes", [], {}),
    ]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rows.append(gate(out / "cluster", "LocalCluster, 2 workers", ["--scheduler", cluster.scheduler_address], {}))
    rows.append(gate(out / "serial", "rerun from the cache", [], {"SURROGATE_JOBS": "1"}))
    load = open("/proc/loadavg").read().split()[:3] if Path("/proc/loadavg").is_file() else ["?"]
    print("| run | wall time | reference evaluations | domain max_rel | trained model (checkpoint sha256) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['label']} | {r['seconds']:.0f} s | {r['evaluations']:,} | {r['domain max_rel']} | "
            f"`{r['model sha256']}` |"
        )
    print(f"\n{rows[0]['plan']}\n\nload average at the end: {' '.join(load)}; runs in {out}")


if __name__ == "__main__":
    main()
