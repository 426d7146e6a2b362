"""benchmarks/summarize.py on partial results: a run that skipped batch 65,536 still summarizes."""

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("matplotlib")


@pytest.mark.slow
@pytest.mark.parametrize("drop_batch", [None, 65536])
def test_summary_without_some_batches(tmp_path, monkeypatch, drop_batch):
    from benchmarks import summarize

    raw = json.loads((ROOT / "benchmarks/results/bench.json").read_text())
    if drop_batch:
        raw["benchmarks"] = [b for b in raw["benchmarks"] if b["extra_info"].get("batch") != drop_batch]
        for b in raw["benchmarks"]:
            b["extra_info"].get("seconds_per_sample", {}).pop(str(drop_batch), None)
        raw["benchmarks"] = [b for b in raw["benchmarks"] if "onnxruntime_point_seconds" not in b["extra_info"]]
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    monkeypatch.chdir(ROOT)
    full, block = summarize.summary(summarize.load(path), out=tmp_path)
    assert "## water" in full and "**water**" in block
    assert ("batch 65,536 on one core" in full) == (drop_batch is None)
    shutil.rmtree(tmp_path)


def test_accuracy_table_gives_the_worst_gated_slope_and_names_the_exempt_outputs(monkeypatch):
    """water gates the slopes of rho, mu and cp, and reports k's (its reference's slope is infinite at one line):
    the README's row must show the worst of the gated slopes, which the card says passed, not k's."""
    from benchmarks import summarize

    monkeypatch.chdir(ROOT)
    card = summarize.card("water")
    row = next(line for line in summarize.accuracy_table(["water"]) if "slope" in line)
    assert "every slope but k's" in row
    gated = max(v for out, e in card.derivatives["errors"].items() if out != "k" for v in e.values())
    assert f"| {gated:.3g} |" in row and gated <= card.derivatives["gate"]


def test_summary_compares_backends_by_kind_not_by_name(tmp_path, monkeypatch):
    """Renaming every backend (kinds and one-sample flags kept) changes the names in the summary, no figure: which
    backend is the baseline, the best, the point() path or the framework follows from the kinds."""
    import re

    from benchmarks import summarize

    monkeypatch.chdir(ROOT)
    raw = json.loads((ROOT / "benchmarks/results/bench.json").read_text())
    renamed = json.loads(json.dumps(raw))
    names = {"torch": "jax", "onnxruntime": "ort", "c-backend": "gen-py"}
    for b in renamed["benchmarks"]:
        info = b["extra_info"]
        if info.get("kind") == "inference" and not info["backend"].startswith("ref: "):
            info["backend_one_sample"] = info["backend"].endswith("-point")  # what the runs before the flag timed
            old = next((o for o in names if info["backend"] == o or info["backend"].startswith(o + "-")), None)
            if old:
                info["backend"] = names[old] + info["backend"][len(old) :]
    figures = []
    for data in (raw, renamed):
        path = tmp_path / "raw.json"
        path.write_text(json.dumps(data))
        summarize.KINDS.clear(), summarize.ONE_SAMPLE.clear()
        full, block = summarize.summary(summarize.load(path), plots=False, out=tmp_path)
        figures.append(re.findall(r"\d[\d.,]*(?:e[-+]?\d+)?\s?(?:ns|µs|ms|s\b|x)?", full + block))
    assert figures[0] == figures[1]
    assert "gen-py-point" in full and "| jax |" in block and "c-backend" not in full
