"""References that cost (issue 19): calls in worker processes, the persistent cache, timeouts and the budget."""

import multiprocessing

import numpy as np
import pytest

from pipeline.build import calls, data, spec
from tests.test_domains_and_references import two_inputs

PER_ROW = """
import math
import os
def f(a, b):
    if a > 2.9 and b > 8.0:
        raise ValueError("math domain error")
    with open(os.path.join(os.path.dirname(__file__), "calls.log"), "a") as log:
        log.write("x")
    return math.sin(a) * math.log(b) / 3
"""

COUNTED = PER_ROW.replace('    if a > 2.9 and b > 8.0:\n        raise ValueError("math domain error")\n', "")

WRITES = """
import numpy as np
def f(X):
    y = np.sin(X[:, 0]) * np.log(X[:, 1]) / 3
    X[:, 0] = 0.0     # writes into its argument
    return y
"""


@pytest.fixture
def fresh(monkeypatch):
    """calls.py's state as a fresh process has it; restored afterwards."""
    monkeypatch.setattr(calls, "SETTINGS", calls.Settings())
    monkeypatch.setattr(calls, "_COSTS", {})
    monkeypatch.setattr(calls, "_CACHES", {})
    monkeypatch.setattr(calls, "_SAID", set())
    monkeypatch.setattr(calls, "_WARM", set())
    yield
    calls.close()


def calls_made(tmp_path) -> int:
    log = tmp_path / "calls.log"
    return len(log.read_text()) if log.is_file() else 0


def points(s, n=300):
    return data.sample(s, n, "sobol", 7)


def test_workers_give_the_serial_values_row_for_row_and_drop_failures(tmp_path, fresh, monkeypatch):
    s = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false", reference_extra='on_error = "drop"'))
    X = np.concatenate([points(s), [[2.95, 9.0]]])  # the last row raises
    serial, ok_serial, first = data.call_reference(s, X)
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 0.0)  # fan out however cheap
    monkeypatch.setattr(calls, "PILOT_SECONDS", 1e-9)
    monkeypatch.setattr(calls, "TASK_SECONDS", 1e-9)  # one row per task: many tasks, finished in any order
    calls.SETTINGS.workers = 2
    calls._COSTS.clear()
    parallel, ok_parallel, first_parallel = data.call_reference(s, X)
    assert np.array_equal(serial, parallel, equal_nan=True) and np.array_equal(ok_serial, ok_parallel)
    assert not ok_parallel[-1] and "ValueError: math domain error" in first_parallel == first
    assert multiprocessing.active_children() == []  # no worker left behind


def test_workers_get_their_own_copy_of_the_inputs(tmp_path, fresh, monkeypatch):
    s = spec.load(two_inputs(tmp_path, WRITES))
    X = points(s, 2000)
    kept = X.copy()
    monkeypatch.setattr(calls, "FAN_OUT_SECONDS", 0.0)
    monkeypatch.setattr(calls, "PILOT_SECONDS", 1e-9)
    calls.SETTINGS.workers = 2
    Y = data.evaluate(s, X)
    assert np.array_equal(X, kept)
    assert np.allclose(Y[:, 0], np.sin(X[:, 0]) * np.log(X[:, 1]) / 3)


def test_chunked_calls_of_the_shipped_references_equal_one_call():
    """A cheap vectorized reference is measured on growing chunks: the values must not depend on the chunks."""
    for name in spec.available():
        s = spec.load(name)
        X = data.sample(s, 1000, "sobol", 0)
        fn = data.resolve_callable(s.reference.callable)
        whole = np.asarray(fn(X.copy()), dtype=np.float64).reshape(len(X), -1)
        assert np.array_equal(data.evaluate(s, X), whole, equal_nan=True), name


def test_a_rerun_reads_the_cache_and_a_changed_reference_does_not(tmp_path, fresh):
    path = two_inputs(tmp_path, COUNTED, vectorized="false")
    s = spec.load(path)
    calls.configure(runs=tmp_path / "runs")
    X = points(s)
    first = data.evaluate(s, X)
    assert calls_made(tmp_path) == len(X)
    assert (tmp_path / "runs" / "t" / calls.CACHE_FILE).is_file()
    calls.configure(runs=tmp_path / "runs")  # as a second run would
    assert np.array_equal(data.evaluate(s, X), first) and calls_made(tmp_path) == len(X)
    assert np.array_equal(data.evaluate(s, X[:7]), first[:7]) and calls_made(tmp_path) == len(X)
    # The same function in a changed module: its entries no longer apply.
    (tmp_path / "ref.py").write_text((tmp_path / "ref.py").read_text().replace("/ 3", "/ 4"))
    data._CALLABLES.clear()
    calls.configure(runs=tmp_path / "runs")
    assert np.allclose(data.evaluate(spec.load(path), X), first * 3 / 4) and calls_made(tmp_path) == 2 * len(X)
    # --no-cache: evaluated afresh
    calls.configure(runs=tmp_path / "runs", cache=False)
    data.evaluate(spec.load(path), X[:10])
    assert calls_made(tmp_path) == 2 * len(X) + 10


def test_failures_are_cached_with_their_message(tmp_path, fresh):
    s = spec.load(two_inputs(tmp_path, PER_ROW, vectorized="false"))
    calls.configure(runs=tmp_path / "runs")
    X = np.array([[2.95, 9.0], [1.5, 2.0]])
    Y, ok, first = data.call_reference(s, X)
    calls.configure(runs=tmp_path / "runs")
    again = data.call_reference(s, X)
    assert np.array_equal(Y, again[0], equal_nan=True) and list(ok) == [False, True] and first == again[2]


def test_a_closure_is_not_cached_and_the_run_says_so(tmp_path, fresh, capsys):
    module = """
    def make():
        k = 3.0
        def f(X):
            return X[:, 0] / k
        return f
    f = make()
    """
    s = spec.load(two_inputs(tmp_path, module))
    calls.configure(runs=tmp_path / "runs")
    data.evaluate(s, points(s))
    data.evaluate(s, points(s))
    out = capsys.readouterr().out
    assert out.count("is not cached") == 1 and "no stable identity" in out
    assert not (tmp_path / "runs" / "t" / calls.CACHE_FILE).exists()


def test_a_call_past_the_timeout_is_a_failure_and_not_cached(tmp_path, fresh):
    slow = """
    import time
    def f(a, b):
        if a > 2.5:
            time.sleep(5)
        return a * b
    """
    s = spec.load(two_inputs(tmp_path, slow, vectorized="false", reference_extra='on_error = "drop"\ntimeout = 0.2'))
    calls.configure(runs=tmp_path / "runs")
    Y, ok, first = data.call_reference(s, np.array([[1.0, 2.0], [2.9, 2.0]]))
    assert list(ok) == [True, False] and "ReferenceTimeout" in first and "reference.timeout" in first
    cache = next(iter(calls._CACHES.values()))
    assert cache.get(np.array([[2.9, 2.0]]), 1)[2].tolist() == [False]  # tried again next time


def test_new_keys_at_their_defaults_leave_the_spec_digest_alone(tmp_path):
    s = spec.load("paraboloid")
    assert "timeout" not in s.to_dict()["reference"] and "budget" not in s.to_dict()["verification"]
    with pytest.raises(spec.SpecError, match="verification.budget"):
        spec.parse({**_raw("paraboloid"), "verification": {"budget": "soon"}})
    for text, expected in [
        ("", (300.0, "seconds")),
        ("20000", (20000.0, "evaluations")),
        ("5 min", (300.0, "seconds")),
    ]:
        assert spec.parse_budget(text) == expected


def _raw(name):
    import tomllib

    return tomllib.loads(spec.spec_path(name).read_text())


THREE = """
spec_version = 1
name = "three"
[reference]
callable = "ref3:f"
[[inputs]]
name = "a"
unit = "1"
min = 0.0
max = 1.0
[[inputs]]
name = "b"
unit = "1"
min = 0.0
max = 1.0
[[inputs]]
name = "c"
unit = "1"
min = 1.0
max = 2.0
[[outputs]]
name = "y"
unit = "1"
[verification]
{budget}
[gates]
max_rel = 5e-3
"""


def test_the_budget_sizes_a_costly_plan_and_leaves_a_cheap_one(tmp_path, fresh):
    (tmp_path / "ref3.py").write_text("def f(X):\n    return X[:, 0] + X[:, 1] * X[:, 2]\n")
    (tmp_path / "three.toml").write_text(THREE.format(budget=""))
    s = spec.load(str(tmp_path / "three.toml"))
    ident = calls.identity(s, data.resolve_callable("ref3:f", tmp_path))
    calls._COSTS[ident] = [1.0, 1_000_000]  # 1 µs per evaluation: today's plan, exactly
    assert data.budget(s) is None
    assert len(data.domain_points(s, 2)[0]) == len(data.domain_points(s, 2)[0]) > s.verification.points
    calls._COSTS[ident] = [5.0, 1000]  # 5 ms: 300 s buy about 60,000 evaluations
    plan = data.budget(s)
    assert plan["points"] == plan["probe_points"] == 8192 and plan["budget"]["reference_seconds"] <= 300
    U, stage = data.domain_points(s, 2)
    assert (stage == "sample").sum() == 8192 and (stage == "face").sum() == 6 * plan["face_points"]
    assert "of 131,072 sample points" in calls.describe(plan)
    # the training samples are counted, never cut; the held-out set is cut, to a prefix of the same draw
    assert plan["budget"]["training_evaluations"] >= s.sampling.count and plan["holdout"] == 1024 < s.sampling.holdout
    text = calls.describe(plan)
    assert f"{plan['budget']['training_evaluations']:,} for training" in text and "1,024 of 3,000 held-out" in text
    assert len(data.build(s, verification=False).x_holdout) == 1024
    (tmp_path / "three.toml").write_text(THREE.format(budget='budget = "20000"'))
    plan = data.budget(spec.load(str(tmp_path / "three.toml")))
    assert plan["budget"]["evaluations"] <= 20000 and "20000 evaluations" in calls.describe(plan)


SLOW_FIRST_CALL = """
import time
import numpy as np
_warm = []
def f(X):
    if not _warm:  # imports, a JIT, a table read: what a library's first call pays
        _warm.append(1)
        time.sleep(0.5)
    return np.sin(X[:, 0]) * np.log(X[:, 1]) / 3
"""


def test_the_first_call_is_not_the_references_cost(tmp_path, fresh):
    """A cheap reference whose first call pays a warm-up is measured by its later calls: otherwise the plan would
    shrink a cheap reference's verification (fluids' first call here costs 19 ms a row, the next ones 5 µs)."""
    s = spec.load(two_inputs(tmp_path, SLOW_FIRST_CALL))
    data.call_reference(s, points(s, 400))
    assert calls.cost(s, data.resolve_callable(s.reference.callable, tmp_path)) < 1e-4


def test_the_budget_sizes_a_grid_plan_and_the_searches(tmp_path, fresh):
    """1-2 inputs verify on a grid: a costly reference gets a coarser one (odd: each axis keeps its midpoint); the
    worst-point searches (verification's and every refiner check's) are cut when they alone would take over a third
    of the budget."""
    s = spec.load(two_inputs(tmp_path, SMOOTH_TWO))
    s.sampling.grid = 201
    ident = calls.identity(s, data.resolve_callable("ref:f", tmp_path))
    calls._COSTS[ident] = [1.0, 1_000_000]  # 1 µs: the spec's 201 x 201 grid, exactly
    assert data.budget(s) is None and len(data.grid(s)) == 201**2
    calls._COSTS[ident] = [1.0, 100]  # 10 ms: 300 s buy 30,000 evaluations
    plan = data.budget(s)
    assert plan["grid"] % 2 == 1 and 11 <= plan["grid"] < 201 and plan["budget"]["evaluations"] <= 30_000
    assert len(data.grid(s)) == plan["grid"] ** 2 == plan["probe_points"]
    text = calls.describe(plan)
    assert f"a {plan['grid']}-point-per-axis grid of the spec's 201" in text and "what a miss would mean" in text
    calls._COSTS[ident] = [1.0, 1]  # 1 s: 300 evaluations; the searches are cut to a third of them
    plan = data.budget(s)
    assert plan["searches"] == 1 and plan["search_evaluations"] == 4 * (2 + 1)  # the least a simplex needs
    assert plan["grid"] == calls.MIN_GRID  # the least grid: this plan overruns the budget, and says so
    assert "1 of 8 searches" in calls.describe(plan) and "over the budget" in calls.describe(plan)


SMOOTH_TWO = """
import numpy as np
def f(X):
    return np.sin(X[:, 0]) * np.log(X[:, 1]) / 3
"""


def test_verification_does_not_reuse_the_points_training_saw(tmp_path):
    """Held-out, grid and domain points are drawn apart from the training design; only the domain's corners are in
    both, on purpose (extrapolation starts there, so training fits them and verification checks them)."""
    (tmp_path / "ref3.py").write_text("def f(X):\n    return X[:, 0] + X[:, 1] * X[:, 2]\n")
    (tmp_path / "three.toml").write_text(THREE.format(budget=""))
    for path in (str(tmp_path / "three.toml"), two_inputs(tmp_path, SMOOTH_TWO)):
        s = spec.load(path)
        d = data.build(s)
        trained = {row.tobytes() for row in d.x_train}
        corners = {row.tobytes() for row in data.corners(s)}
        verified = d.x_grid if d.x_grid is not None else d.x_domain
        assert not trained & {row.tobytes() for row in d.x_holdout}
        assert trained & {row.tobytes() for row in verified} == corners


def test_a_costly_references_searches_run_side_by_side_and_find_the_same_points(tmp_path, fresh, monkeypatch):
    """Past a budget the worst-point searches ask for their points together (one batch per round, which the workers
    can share); each search takes the same path as it does alone."""
    from pipeline.build import verify

    (tmp_path / "ref3.py").write_text("def f(X):\n    return 1.0 + X[:, 0] + X[:, 1] * X[:, 2]\n")
    (tmp_path / "three.toml").write_text(THREE.format(budget=""))
    s = spec.load(str(tmp_path / "three.toml"))
    ident = calls.identity(s, data.resolve_callable("ref3:f", tmp_path))
    U = data.unit_sample(3, 256, "sobol", 0)
    X = data.from_unit(s, U)
    Y = data.call_reference(s, X)[0]

    def predict(X):  # a model with a smooth error of a few percent
        return (1.0 + X[:, 0] + X[:, 1] * X[:, 2] + 0.03 * np.sin(5 * X[:, 0] * X[:, 2]))[:, None]

    batches, call = [], data.call_reference
    monkeypatch.setattr(data, "call_reference", lambda spec, X, *a: batches.append(len(X)) or call(spec, X, *a))
    runs = {}
    for cost in ([1.0, 1_000_000], [5.0, 1000]):  # 1 µs: one search after another; 5 ms: side by side
        calls._COSTS[ident] = cost
        batches.clear()
        runs[cost[1]] = (verify.search_worst(s, predict, U, Y, predict(X)), max(batches))
    (alone, one), (together, most) = runs[1_000_000], runs[1000]
    assert data.budget(s)["searches"] == s.verification.searches and one == 1 and most == s.verification.searches
    assert together["evaluations"] == alone["evaluations"] and together["searches"] == alone["searches"]
    assert np.array_equal(together["X"], alone["X"]) and np.array_equal(together["Y"], alone["Y"])


def test_side_by_side_searches_stop_together_on_a_failed_point(tmp_path, fresh):
    """on_error = "error": the first failed search point is the one-line report, raised once every search has
    stopped; no search thread is left waiting."""
    import threading

    from pipeline.build import verify
    from pipeline.errors import PipelineError

    (tmp_path / "ref3.py").write_text(
        "import numpy as np\ndef f(X):\n    return np.where(X[:, 0] > 0.05, np.nan, 1.0)\n"
    )
    (tmp_path / "three.toml").write_text(THREE.format(budget=""))
    s = spec.load(str(tmp_path / "three.toml"))
    calls._COSTS[calls.identity(s, data.resolve_callable("ref3:f", tmp_path))] = [5.0, 1000]  # costly: side by side
    U = data.unit_sample(3, 64, "sobol", 0)
    Y, P = np.ones((64, 1)), 1.0 + U[:, :1]  # the sample's values as if known; the searches' points fail
    before = threading.active_count()
    assert data.budget(s) is not None  # the side-by-side path
    with pytest.raises(PipelineError, match="search points"):
        verify.search_worst(s, lambda X: np.ones((len(X), 1)), U, Y, P)
    assert threading.active_count() == before
