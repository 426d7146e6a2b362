"""Architecture search on a small budget: it finds a cheaper passing network, workers share a study, a killed
search resumes without losing or double-counting trials, and one worker is repeatable."""

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import optuna
import pytest

from pipeline.build import search, spec
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # each test runs an Optuna study that trains networks

# The paraboloid as it shipped before the search: 2-16-16-1 tanh, 337 parameters.
ORIGINAL = (ROOT / "pipeline" / "specs" / "paraboloid.toml").read_text()


@pytest.fixture
def spec_file(tmp_path):
    text = ORIGINAL
    for key, value in (("widths", "[16, 16]"), ("activation", '"tanh"'), ("grid", "101"), ("holdout", "1000")):
        text = re.sub(rf"(?m)^{key} = [^\n#]*", f"{key} = {value}", text, count=1)
    path = tmp_path / "parab.toml"
    path.write_text(text.replace('name = "paraboloid"', 'name = "parab"'))
    assert spec.load(str(path)).model.widths == [16, 16]
    return str(path)


def states(url: str, name: str = "parab") -> list:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def test_finds_a_smaller_network_that_passes(spec_file, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = search.run(spec_file, trials=10, storage=url, progress=False)
    summary = search.report(study, spec.load(spec_file), tmp_path / "report")
    best, before = summary["cheapest_passing"], summary["before"]
    assert before["widths"] == [16, 16] and before["passes"]  # trial 0 is the spec's own network
    assert best["passes"] and best["parameters"] < before["parameters"] and best["flops"] < before["flops"]
    assert best["ort_ns"]["batch4096"] > 0
    assert (tmp_path / "report" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "| trial | network |" in (tmp_path / "report" / "pareto.md").read_text()
    # --apply's rewrite keeps the comments and changes only the network and the sample count
    text = search.apply(spec.load(spec_file), best)
    assert "# The seed problem" in text and f"count = {best['count']}" in text
    assert spec.parse(tomllib.loads(text)).model.widths == best["widths"]


def test_two_workers_share_one_sqlite_study(spec_file, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    search.run(spec_file, trials=6, workers=2, storage=url, progress=False)
    done = [t for t in states(url) if t.state == optuna.trial.TrialState.COMPLETE]
    assert 6 <= len(done) <= 7  # each worker may finish one trial past the budget
    assert len({t.number for t in done}) == len(done)
    assert len({t.user_attrs["worker"] for t in done}) == 2


def test_killed_search_resumes_without_losing_or_repeating_trials(spec_file, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    cmd = [
        sys.executable,
        "-m",
        "pipeline",
        "search",
        spec_file,
        "--trials",
        "6",
        "--storage",
        url,
        "--heartbeat",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            finished = [t for t in states(url) if t.state == optuna.trial.TrialState.COMPLETE]
        except Exception:  # the study is not created yet
            continue
        if len(finished) >= 2:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t.values for t in states(url) if t.state == optuna.trial.TrialState.COMPLETE}
    assert 2 <= len(before) < 6
    time.sleep(3)  # let the killed worker's heartbeat go stale (grace: 2 heartbeats)
    search.run(spec_file, trials=6, storage=url, heartbeat=1, progress=False)
    trials = states(url)
    done = {t.number: t.values for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(done) == 6  # exactly the budget, one worker
    assert all(done[n] == v for n, v in before.items())  # nothing finished was lost or redone
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_one_worker_is_repeatable(spec_file, tmp_path):
    runs = []
    for k in range(2):
        study = search.run(spec_file, trials=5, storage=f"sqlite:///{tmp_path}/r{k}.db", progress=False)
        runs.append([(t.params, t.values) for t in study.trials])
    assert runs[0] == runs[1]


@pytest.mark.skipif(
    not os.environ.get("SEARCH_POSTGRES_URL"),
    reason="set SEARCH_POSTGRES_URL to a PostgreSQL database (.ci/run starts one with .ci/postgres.sh)",
)
def test_two_workers_share_a_postgresql_study(spec_file):
    """The many-machines set-up: workers that share nothing but a database URL."""
    url = os.environ["SEARCH_POSTGRES_URL"]
    name = f"parab_{os.getpid()}_{int(time.time())}"  # a fresh study in a database that may hold others
    path = Path(spec_file)
    path.write_text(path.read_text().replace('name = "parab"', f'name = "{name}"'))
    try:
        search.run(str(path), trials=4, workers=2, storage=url, progress=False)
        done = [t for t in states(url, name) if t.state == optuna.trial.TrialState.COMPLETE]
        assert 4 <= len(done) <= 5 and len({t.number for t in done}) == len(done)
        assert len({t.user_attrs["worker"] for t in done}) == 2
    finally:
        optuna.delete_study(study_name=name, storage=url)
