"""The reference cache and the workers under stress (issue 19): two writers at once, a run killed mid-batch, Ctrl-C.

Each run here is a separate Python process (as a user's would be), evaluating a per-row reference that sleeps 10 ms
a call and logs the process id of every call to calls.log beside it.
"""

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import calls
from tests.test_domains_and_references import two_inputs

SLOW = """
import math
import os
import time
def f(a, b):
    time.sleep(0.01)
    with open(os.path.join(os.path.dirname(__file__), "calls.log"), "a") as log:
        log.write(f"{os.getpid()}\\n")
    return math.sin(a) * math.log(b) / 3
"""

RUN = """
import sys
from pipeline.build import calls, data, spec
s = spec.load(sys.argv[1])
calls.configure(runs=sys.argv[2], progress=False, workers=2)
data.evaluate(s, data.sample(s, int(sys.argv[3]), "sobol", 7))
print("done")
"""
ROWS = 600
WORKERS = 2


def start(tmp_path: Path) -> subprocess.Popen:
    spec_path = two_inputs(tmp_path, SLOW, vectorized="false")
    return subprocess.Popen(
        [sys.executable, "-c", RUN, spec_path, str(tmp_path / "runs"), str(ROWS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged(tmp_path: Path) -> list[int]:
    log = tmp_path / "calls.log"
    return [int(line) for line in log.read_text().split()] if log.is_file() else []


def wait_for_calls(tmp_path: Path, proc: subprocess.Popen, n: int) -> None:
    """Until n calls are logged and the run's workers are busy."""
    deadline = time.monotonic() + 60
    while len(logged(tmp_path)) < n or not children(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)


def children(pid: int) -> set[int]:
    """Live processes whose parent is pid (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its exit status is left to collect


def settle(tmp_path: Path) -> int:
    """The number of calls once no more are being made."""
    count = -1
    while count != len(logged(tmp_path)):
        count = len(logged(tmp_path))
        time.sleep(0.5)
    return count


def cached_rows(tmp_path: Path) -> int:
    db = sqlite3.connect(tmp_path / "runs" / "t" / calls.CACHE_FILE)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT COUNT(*) FROM evals").fetchone()[0]
    finally:
        db.close()


@pytest.mark.slow  # runs a reference for seconds, kills it and runs it again
def test_a_killed_run_resumes_losing_at_most_the_chunks_in_flight(tmp_path):
    proc = start(tmp_path)
    wait_for_calls(tmp_path, proc, ROWS // 4)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first = settle(tmp_path)
    kept = cached_rows(tmp_path)
    # In flight: one chunk per worker, of at most TASK_SECONDS / 10 ms rows (the reference sleeps 10 ms a call).
    assert 0 < kept < ROWS and first - kept <= WORKERS * calls.TASK_SECONDS / 0.01
    assert not [pid for pid in workers if alive(pid)]  # the workers died with their parent
    rerun = start(tmp_path)
    assert rerun.communicate(timeout=120)[0].split()[-1] == "done"
    assert len(logged(tmp_path)) - first == ROWS - kept  # the rerun evaluated exactly what the cache lacked
    assert cached_rows(tmp_path) == ROWS


def test_ctrl_c_stops_the_workers_and_leaves_no_process_behind(tmp_path):
    proc = start(tmp_path)
    wait_for_calls(tmp_path, proc, ROWS // 4)
    workers = children(proc.pid)
    assert len(workers) == WORKERS
    proc.send_signal(signal.SIGINT)  # to the run alone: it must stop its workers itself
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert not [pid for pid in workers if alive(pid)]
    assert settle(tmp_path) < ROWS and cached_rows(tmp_path) > 0


def _write(path: str, ident: str, seed: int) -> None:
    """One of two writers: 40 chunks of 50 rows, half of them rows the other writer writes too."""
    cache = calls.Cache(Path(path), ident)
    rng = np.random.default_rng(seed)
    for k in range(40):
        shared = np.arange(25) + 25 * k
        own = 100_000 * (seed + 1) + rng.permutation(1000)[:25] + 1000 * k
        X = np.stack([np.concatenate([shared, own]).astype(np.float64), np.ones(50)], axis=1)
        cache.put(X, X[:, :1] * 2.0, {0: "ValueError: kept"} if k == 0 else {})
    cache.db.close()


def test_two_writers_at_once_leave_the_cache_whole(tmp_path):
    path = str(tmp_path / "runs" / "t" / calls.CACHE_FILE)
    context = multiprocessing.get_context("spawn")  # two fresh processes, as two runs would be
    writers = [context.Process(target=_write, args=(path, "ref", seed)) for seed in (0, 1)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
        assert w.exitcode == 0
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT x, y FROM evals").fetchall()
    X = np.array([np.frombuffer(x, dtype=np.float64) for x, _ in rows])
    Y = np.array([np.frombuffer(y, dtype=np.float64)[0] for _, y in rows])
    assert len(rows) == 1000 + 2 * 1000 and np.array_equal(Y, 2.0 * X[:, 0])  # the shared rows once each
    db.close()
    assert os.path.getsize(path) > 0


def test_the_command_lines_flags_reach_the_calls(tmp_path, monkeypatch):
    from pipeline import cli
    from pipeline.build import api

    def configure(argv):  # what each verb does before calling the reference: cli's options, through the API
        args = cli.parser().parse_args(argv)
        api._calls(api._runs(args.runs), workers=0, **cli._options(args))

    monkeypatch.setattr(calls, "SETTINGS", calls.Settings())
    for verb in ("train", "verify", "export", "gate"):
        configure([verb, "--no-cache", "--scheduler", "tcp://h:8786", "--runs", str(tmp_path), "t"])
        assert (calls.SETTINGS.cache, calls.SETTINGS.scheduler, calls.SETTINGS.runs) == (
            False,
            "tcp://h:8786",
            tmp_path,
        )
    configure(["verify", "--runs", str(tmp_path), "t"])
    assert calls.SETTINGS.cache and calls.SETTINGS.scheduler == ""
