"""benchmarks/summarize.py on partial results: a run that skipped batch 65,536 still summarizes."""

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("matplotlib")


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
    monkeypatch.setattr(summarize, "RESULTS", tmp_path)
    monkeypatch.chdir(ROOT)
    full, block = summarize.summary(summarize.load(path))
    assert "## water" in full and "**water**" in block
    assert ("batch 65,536 on one core" in full) == (drop_batch is None)
    shutil.rmtree(tmp_path)
