"""A costly reference's calls on a Dask cluster (issue 19): the tests start a LocalCluster of their own, two worker
processes of one thread each, and check that what comes back is what a serial run gets, row for row."""

import numpy as np
import pytest

from pipeline.build import calls, cluster, data, spec
from pipeline.errors import PipelineError
from tests.test_domains_and_references import two_inputs
from tests.test_reference_calls import PER_ROW, WRITES, fresh, points  # noqa: F401 - fresh is a fixture

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (make venv installs it; pip install '.[cluster]')"
)


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as local:
        yield local.scheduler_address


@pytest.fixture
def on_cluster(fresh, monkeypatch, scheduler):  # noqa: F811 - the imported fixture, used
    """Every batch fans out, in one-row chunks (many tasks, finished in any order), to the LocalCluster."""
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 0.0)
    monkeypatch.setattr(calls, "PILOT_SECONDS", 1e-9)
    monkeypatch.setattr(calls, "TASK_SECONDS", 1e-9)
    calls.SETTINGS.scheduler = scheduler
    yield scheduler
    cluster.close()


def test_the_cluster_gives_the_serial_values_row_for_row_and_the_same_failures(tmp_path, on_cluster, monkeypatch):
    s = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false", reference_extra='on_error = "drop"'))
    X = np.concatenate([points(s, 200), [[2.95, 9.0]]])  # the last row raises
    calls.SETTINGS.scheduler = ""
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 1e9)  # serial: all in this process
    serial, ok_serial, first = data.call_reference(s, X)
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 0.0)
    calls.SETTINGS.scheduler = on_cluster
    calls._COSTS.clear()
    remote, ok_remote, first_remote = data.call_reference(s, X)
    assert np.array_equal(serial, remote, equal_nan=True) and np.array_equal(ok_serial, ok_remote)
    assert not ok_remote[-1] and "ValueError: math domain error" in first_remote == first
    assert cluster._CLIENTS  # the batch did go to the cluster


def test_cluster_workers_get_their_own_copy_of_the_inputs(tmp_path, on_cluster, monkeypatch):
    s = spec.load(two_inputs(tmp_path, WRITES))
    monkeypatch.setattr(calls, "TASK_SECONDS", 0.25)
    X = points(s, 2000)
    kept = X.copy()
    Y = data.evaluate(s, X)
    assert np.array_equal(X, kept)
    assert np.allclose(Y[:, 0], np.sin(X[:, 0]) * np.log(X[:, 1]) / 3)


def test_on_the_cluster_a_call_past_the_timeout_is_a_failure(tmp_path, on_cluster):
    """A Dask worker runs tasks in a thread, where SIGALRM cannot reach: the timeout is raised in that thread."""
    slow = """
    import time
    def f(a, b):
        if a > 2.5:
            for _ in range(500):  # 5 s, in steps: a thread is stopped at its next Python instruction
                time.sleep(0.01)
        return a * b
    """
    s = spec.load(two_inputs(tmp_path, slow, vectorized="false", reference_extra='on_error = "drop"\ntimeout = 0.2'))
    X = np.array([[1.0, 2.0], [1.5, 2.0], [1.2, 3.0], [2.9, 2.0]])  # the first 3 measure the cost, here
    Y, ok, first = data.call_reference(s, X)
    assert ok.tolist() == [True, True, True, False] and np.allclose(Y[ok, 0], X[ok, 0] * X[ok, 1])
    assert "ReferenceTimeout" in first and "reference.timeout" in first and cluster._CLIENTS


def test_the_spec_names_the_scheduler_and_it_is_not_part_of_the_digest(tmp_path, on_cluster):
    plain = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false"))
    s = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false", reference_extra=f'scheduler = "{on_cluster}"'))
    assert s.reference.scheduler == on_cluster and spec.sha256(s) == spec.sha256(plain)
    calls.SETTINGS.scheduler = ""  # the spec's address, then
    X = points(s, 50)
    assert np.array_equal(data.evaluate(s, X), data.evaluate(plain, X))
    assert on_cluster in cluster._CLIENTS


def test_a_scheduler_that_cannot_be_reached_is_one_line(tmp_path, fresh, monkeypatch):  # noqa: F811
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 0.0)
    monkeypatch.setattr(calls, "PILOT_SECONDS", 1e-9)
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    calls.SETTINGS.scheduler = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    s = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false"))
    with pytest.raises(PipelineError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        data.evaluate(s, points(s, 50))
