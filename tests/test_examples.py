import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the seed script trains four networks (about two minutes)

ROOT = Path(__file__).resolve().parents[1]


def test_seed_explained_shows_each_fix():
    out = subprocess.run(
        [sys.executable, "examples/seed_explained.py", "--quick"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rmse = [float(line.split()[-2]) for line in out.splitlines() if line[:2] in {f"{k}." for k in range(6)}]
    assert len(rmse) == 6
    assert rmse[0] > 0.3  # the original loop does not learn
    assert rmse[3] < rmse[0] / 5  # zero_grad + shapes + Adam: it learns
    assert rmse[5] < 1e-4  # the pipeline meets the paraboloid's grid gate
