"""Calling a reference that costs: in worker processes, cached on disk, with progress and a plan sized by its cost.

data.call_reference decides *what* a row's value is (vectorized or per row, failures, copies of the inputs); this
module decides *where and when* rows are evaluated:

- The cost per evaluation is measured on the first rows of a batch, called in this process in growing chunks (so a
  cheap vectorized reference, sub-millisecond per row, is called as before, only in a few pieces).
- The rest of a batch runs in worker processes (cores.available(): a process inside a pool sees SURROGATE_JOBS=1
  and uses one) only when it is expected to take longer than FAN_OUT_SECONDS; each worker's BLAS and OpenMP
  threads are held to one (threadpoolctl), ignores Ctrl-C (this process stops them), and calls the same
  data._raw_rows, so the values equal the serial ones row for row. A vectorized reference is called in chunks.
  With a Dask scheduler (--scheduler ADDRESS or reference.scheduler), those chunks go to its workers instead
  (cluster.py); the measurement, and the worst-point search's one-point calls, stay in this process.
- A batch expected to take longer than PROGRESS_SECONDS is announced in one line ("about N evaluations at t s each,
  about T on W workers") and shows a tqdm bar on stderr (off with progress=False / --quiet).
- With a cache configured (the command line: runs/NAME/reference_cache.sqlite; --no-cache turns it off), every
  evaluation is kept in SQLite (WAL mode, so that two runs may share it) keyed by the reference's identity (its
  module file's sha256, the function's name, the versions of fluids/ht/CoolProp/numpy/scipy it imports, and the
  options that change its values) and the exact bytes of the input row. A rerun evaluates no point it has; chunks
  are written as they finish, so an interrupted run loses at most the chunks in flight. A function without a stable
  identity (a lambda, a closure, a function defined inside another) is not cached, and the run says so once.
  Calls that time out are not cached (the next run tries them again).
- budget(): the verification plan and the refiner's probe set sized so that their evaluations cost about
  verification.budget (default DEFAULT_BUDGET_SECONDS of reference time); a cheap reference keeps the spec's plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PipelineError, ReferenceTimeout
from . import cluster, cores
from .spec import DEFAULT_BUDGET_SECONDS, parse_budget

FAN_OUT_SECONDS = 1.0
"""a batch expected to take longer than this (after its first chunks) runs in worker processes"""
PROGRESS_SECONDS = 2.0
"""a batch expected to take longer than this is announced and shows a progress bar"""
PILOT_SECONDS = 0.1
"""rows are called in this process in growing chunks until a chunk takes this long: the cost measurement"""
TASK_SECONDS = 0.25
"""the work of one task sent to a worker (small enough for a smooth progress bar and little lost on Ctrl-C)"""
PACKAGES = {"fluids": "fluids", "ht": "ht", "CoolProp": "CoolProp", "numpy": "numpy", "scipy": "scipy"}
"""import name -> distribution: the packages whose versions are part of a reference's identity"""
CACHE_FILE = "reference_cache.sqlite"
CACHE_MIN_SECONDS = 50e-6
"""a reference cheaper than this per evaluation is not cached: calling it is about as fast as reading the cache"""


@dataclass
class Settings:
    runs: Path | None = None
    """folder of runs: the cache is runs/NAME/reference_cache.sqlite; None: no cache (library calls, tests)"""
    cache: bool = True
    progress: bool = True
    workers: int = 0
    """0: cores.available()"""
    scheduler: str = ""
    """address of a Dask scheduler (--scheduler), ahead of the spec's reference.scheduler; "": the spec's"""


SETTINGS = Settings()
_COSTS: dict[str, list[float]] = {}
"""identity -> [seconds, rows] measured in this process"""
_WARM: set[str] = set()
"""references called once in this process already: their next calls are measured"""
_CACHES: dict[tuple[str, str], Cache] = {}
_SAID: set[str] = set()


def configure(
    runs: Path | None = None, cache: bool = True, progress: bool = True, workers: int = 0, scheduler: str = ""
) -> None:
    """How this process calls references (the command line calls this once per command)."""
    close()
    SETTINGS.runs, SETTINGS.cache, SETTINGS.progress, SETTINGS.workers = runs, cache, progress, workers
    SETTINGS.scheduler = scheduler


def close() -> None:
    for c in _CACHES.values():
        c.db.close()
    _CACHES.clear()
    cluster.close()


def workers() -> int:
    return max(1, SETTINGS.workers or cores.available())


# --- identity ------------------------------------------------------------------------------------------------------


_IDENTITIES: dict[tuple, str | None] = {}


def identity(spec, fn) -> str | None:
    """What the reference's values depend on, as a string; None for a function with no stable identity."""
    key = (id(fn), fn, spec.reference.vectorized, len(spec.outputs), len(spec.inputs))
    if key not in _IDENTITIES:
        _IDENTITIES[key] = _identity(spec, fn)
    return _IDENTITIES[key]


def _identity(spec, fn) -> str | None:
    qualname = getattr(fn, "__qualname__", "") or ""
    if "<lambda>" in qualname or "<locals>" in qualname or getattr(fn, "__closure__", None):
        return None
    code = getattr(fn, "__code__", None)
    path = getattr(code, "co_filename", None)
    if not path or not Path(path).is_file():
        return None
    source = Path(path).read_bytes()
    text = source.decode("utf-8", "replace")
    names = getattr(fn, "__globals__", {})
    used = {
        name
        for name in PACKAGES
        if re.search(rf"^\s*(import|from)\s+{name}\b", text, re.M)
        or any(getattr(v, "__name__", "").split(".")[0] == name for v in names.values() if hasattr(v, "__name__"))
    }
    from importlib import metadata

    versions = {}
    for name in sorted(used):
        try:
            versions[name] = metadata.version(PACKAGES[name])
        except metadata.PackageNotFoundError:
            versions[name] = "?"
    r = spec.reference
    return json.dumps(
        {
            "module_sha256": hashlib.sha256(source).hexdigest(),
            "function": qualname,
            "packages": versions,
            "options": {"vectorized": r.vectorized, "outputs": len(spec.outputs), "inputs": len(spec.inputs)},
        },
        sort_keys=True,
    )


# --- the cache -----------------------------------------------------------------------------------------------------


class Cache:
    """Evaluations of one reference identity in runs/NAME/reference_cache.sqlite."""

    def __init__(self, path: Path, ident: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS refs (id INTEGER PRIMARY KEY, identity TEXT UNIQUE, cost REAL)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS evals (ref INTEGER, x BLOB, y BLOB, error TEXT, PRIMARY KEY (ref, x))"
            " WITHOUT ROWID"
        )
        self.db.execute("INSERT OR IGNORE INTO refs (identity) VALUES (?)", (ident,))
        self.ref, self.cost = self.db.execute("SELECT id, cost FROM refs WHERE identity = ?", (ident,)).fetchone()

    def get(self, X: np.ndarray, n_out: int) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
        """(Y, errors, found per row) for the rows of X the cache has."""
        keys = [row.tobytes() for row in np.ascontiguousarray(X, dtype=np.float64)]
        found: dict[bytes, tuple] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            rows = self.db.execute(
                f"SELECT x, y, error FROM evals WHERE ref = ? AND x IN ({','.join('?' * len(part))})",
                (self.ref, *part),
            )
            found.update((x, (y, e)) for x, y, e in rows)
        Y = np.full((len(X), n_out), np.nan)
        hit = np.zeros(len(X), dtype=bool)
        errors = {}
        for k, key in enumerate(keys):
            if key in found:
                y, e = found[key]
                Y[k], hit[k] = np.frombuffer(y, dtype=np.float64), True
                if e:
                    errors[k] = e
        return Y, errors, hit

    def put(self, X: np.ndarray, Y: np.ndarray, errors: dict[int, str]) -> None:
        rows = [
            (self.ref, x.tobytes(), np.ascontiguousarray(y, dtype=np.float64).tobytes(), errors.get(k))
            for k, (x, y) in enumerate(zip(np.ascontiguousarray(X, dtype=np.float64), Y))
            if not errors.get(k, "").startswith(ReferenceTimeout.__name__)
        ]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO evals VALUES (?, ?, ?, ?)", rows)

    def set_cost(self, cost: float) -> None:
        """The cost the plans are sized with: the first one measured, so that a rerun plans the same points."""
        if self.cost is None:
            self.db.execute("UPDATE refs SET cost = ? WHERE id = ? AND cost IS NULL", (cost, self.ref))
            self.cost = self.db.execute("SELECT cost FROM refs WHERE id = ?", (self.ref,)).fetchone()[0]


def _cache(spec, ident: str | None) -> Cache | None:
    if SETTINGS.runs is None or not SETTINGS.cache:
        return None
    if ident is None:
        # said for a spec file's reference; one passed in code (api.spec) is documented as uncached when anonymous
        if spec.reference.callable not in _SAID and spec.reference.function is None:
            _SAID.add(spec.reference.callable)
            print(
                f"{spec.name}: reference {spec.reference.callable} is not cached: a lambda, closure or nested "
                f"function has no stable identity (define it at the top level of a module)"
            )
        return None
    path = Path(SETTINGS.runs) / spec.name / CACHE_FILE
    key = (str(path), ident)
    if key not in _CACHES:
        try:
            _CACHES[key] = Cache(path, ident)
        except sqlite3.Error as e:
            raise PipelineError(f"reference cache {path}: {e} (--no-cache runs without it)") from None
    return _CACHES[key]


# --- cost ----------------------------------------------------------------------------------------------------------


def cost(spec, fn) -> float | None:
    """Seconds per evaluation of the reference: the cached figure, or the one measured in this process."""
    ident = identity(spec, fn) or f"anonymous:{spec.reference.callable}:{id(fn)}"
    c = _cache(spec, identity(spec, fn))
    if c is not None and c.cost is not None:
        return c.cost
    seconds, rows = _COSTS.get(ident, (0.0, 0))
    return seconds / rows if rows else None


def _measured(ident: str, seconds: float, rows: int, cache: Cache | None) -> None:
    total = _COSTS.setdefault(ident, [0.0, 0])
    total[0] += seconds
    total[1] += rows
    if cache is not None and total[0] >= PILOT_SECONDS:
        cache.set_cost(total[0] / total[1])


# --- a per-call timeout -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise ReferenceTimeout in the code inside after `seconds` (0: no limit): by SIGALRM in the main thread, in
    another thread (a Dask worker runs its tasks in threads) by an exception set in that thread. Either way a call
    stuck inside C code that never returns to Python is stopped when it does."""
    if not seconds:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        with _thread_deadline(seconds):
            yield
        return

    def expired(signum, frame):
        raise ReferenceTimeout(f"took longer than {seconds:g} s (reference.timeout)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def _thread_deadline(seconds: float):
    """deadline() outside the main thread: a timer sets ReferenceTimeout in this thread (PyThreadState_SetAsyncExc),
    raised at its next Python instruction. The lock makes the timer fire at most once and only inside the block; one
    set but not yet raised when the block ends is cleared and raised here, so it never escapes into later code."""
    import ctypes

    tid, lock, state = ctypes.c_ulong(threading.get_ident()), threading.Lock(), {"over": False, "fired": False}

    def expire():
        with lock:
            if not state["over"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(tid, ctypes.py_object(ReferenceTimeout))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        try:
            yield
        finally:
            with lock:
                state["over"] = True
                timer.cancel()
                if state["fired"]:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(tid, None)
            if state["fired"]:
                raise ReferenceTimeout()
    except ReferenceTimeout:
        raise ReferenceTimeout(f"took longer than {seconds:g} s (reference.timeout)") from None


# --- batches -------------------------------------------------------------------------------------------------------


def run(spec, X: np.ndarray, fn, raw, what: str = "inputs") -> tuple[np.ndarray, dict[int, str]]:
    """The reference's values at X and its failures per row, {row: message}: from the cache where it has them, the
    rest evaluated by raw(spec, rows) -> (Y, errors) here or in workers (see the module docstring)."""
    n, n_out = len(X), len(spec.outputs)
    ident = identity(spec, fn)
    cache = _cache(spec, ident)
    if cache is not None and (cache.cost or 1.0) < CACHE_MIN_SECONDS:
        cache = None
    Y, errors = np.full((n, n_out), np.nan), {}
    todo = np.arange(n)
    if cache is not None and n:
        Y, errors, hit = cache.get(X, n_out)
        todo = np.flatnonzero(~hit)
    if len(todo):
        Yt, Et = _evaluate(spec, X[todo], raw, ident or f"anonymous:{spec.reference.callable}:{id(fn)}", cache, what)
        Y[todo] = Yt
        errors.update({int(todo[k]): e for k, e in Et.items()})
    return Y, errors


def _evaluate(spec, X: np.ndarray, raw, ident: str, cache: Cache | None, what: str):
    n, n_out = len(X), len(spec.outputs)
    Y, errors = np.full((n, n_out), np.nan), {}
    vectorized = spec.reference.vectorized
    done, chunk = 0, 64 if vectorized else 1
    known = _COSTS.get(ident)
    per_row = known[0] / known[1] if known and known[1] and known[0] >= PILOT_SECONDS else None

    def piece(lo: int, hi: int) -> float | None:
        start = time.perf_counter()
        Yc, Ec = raw(spec, X[lo:hi])
        seconds = time.perf_counter() - start
        Y[lo:hi] = Yc
        errors.update({lo + k: e for k, e in Ec.items()})
        if cache is not None:
            cache.put(X[lo:hi], Yc, Ec)
        if ident not in _WARM:  # the first call in a process pays for imports and warm-up: never a cost
            _WARM.add(ident)
            return None
        if vectorized is False or hi - lo >= 32:
            _measured(ident, seconds, hi - lo, cache)
        return seconds

    # Measure: growing chunks in this process, until one takes PILOT_SECONDS (or the cost is known already). The
    # first call's time is not a measurement: fluids' first call here took 19 ms a row, its next ones 5 µs.
    while done < n and per_row is None:
        hi = min(n, done + chunk)
        seconds = piece(done, hi)
        if seconds is not None and (seconds >= PILOT_SECONDS or hi == n):
            per_row = seconds / (hi - done)
        done, chunk = hi, chunk * 2
    if done >= n:
        return Y, errors
    rest = n - done
    expected = rest * per_row
    place, w = _placement(spec, rest, expected)
    parallel = bool(place)
    wall = expected / w
    bar = None
    if wall > PROGRESS_SECONDS:
        on = f"{w} worker{'s' if w > 1 else ''}" + (f" of the Dask cluster at {place}" if place != "local" else "")
        print(
            f"{spec.name}: about {rest:,} evaluations of the reference ({what}) at {_duration(per_row)} each, "
            f"about {_duration(wall)} on {on if parallel else '1 worker'}",
            flush=True,
        )
        if SETTINGS.progress:
            from tqdm import tqdm

            bar = tqdm(total=rest, desc=f"{spec.name}: {what}", unit="eval", file=sys.stderr, dynamic_ncols=True)
    try:
        if not parallel:
            step = rest if vectorized and wall <= PROGRESS_SECONDS else max(1, int(TASK_SECONDS / max(per_row, 1e-9)))
            for lo in range(done, n, step):
                hi = min(n, lo + step)
                piece(lo, hi)
                if bar is not None:
                    bar.update(hi - lo)
        else:
            _in_workers(spec, X, Y, errors, done, per_row, (place, w), raw, ident, cache, bar)
    finally:
        if bar is not None:
            bar.close()
    return Y, errors


def _placement(spec, rest: int, expected: float) -> tuple[str, int]:
    """Where the rest of a batch runs, and on how many workers: ("", 1) here; ("local", w) in worker processes on
    this machine; (address, w) on a Dask cluster. A batch expected to take under FAN_OUT_SECONDS stays here (and
    does not connect to a scheduler)."""
    if expected <= FAN_OUT_SECONDS:
        return "", 1
    scheduler = SETTINGS.scheduler or spec.reference.scheduler
    if scheduler:
        return scheduler, min(cluster.workers(scheduler), rest)
    w = min(workers(), rest)
    return ("local", w) if w > 1 else ("", 1)


def _in_workers(spec, X, Y, errors, done, per_row, where, raw, ident, cache, bar) -> None:
    """Rows done: onwards in chunks of about TASK_SECONDS, on the workers `where` names (see _placement), each
    chunk's values kept (and cached) as it finishes, in whatever order."""
    (place, w), n = where, len(X)
    _check_picklable(spec, w)
    step = max(1, min(int(TASK_SECONDS / max(per_row, 1e-9)), math.ceil((n - done) / w)))
    tasks = {lo: X[lo : min(n, lo + step)] for lo in range(done, n, step)}
    source = _local_results(w, raw, spec, tasks) if place == "local" else cluster.results(place, raw, spec, tasks)
    with contextlib.closing(source) as finished:
        for lo, (Yc, Ec, seconds) in finished:
            hi = lo + len(Yc)
            Y[lo:hi] = Yc
            errors.update({lo + k: e for k, e in Ec.items()})
            if cache is not None:
                cache.put(X[lo:hi], Yc, Ec)
            _measured(ident, seconds, hi - lo, cache)
            if bar is not None:
                bar.update(hi - lo)


def _local_results(w: int, raw, spec, tasks: dict[int, np.ndarray]):
    """Yield (first row, (Y, errors, seconds)) for each chunk {first row: X}, from w worker processes."""
    import concurrent.futures as cf
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = cf.ProcessPoolExecutor(w, mp_context=multiprocessing.get_context(method), initializer=_worker_start)
    try:
        running = {pool.submit(_worker_call, raw, spec, X): lo for lo, X in tasks.items()}
        for future in cf.as_completed(running):
            yield running[future], future.result()
    except BaseException:  # Ctrl-C, an error, or the caller's own (closing this generator): no worker left behind
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _check_picklable(spec, w: int) -> None:
    """A reference built in code travels to the workers by pickle: one that cannot is refused in one line, before a
    worker starts (pickle's own error would come from inside the pool)."""
    import pickle

    fn = spec.reference.function
    if fn is None:
        return
    try:
        pickle.dumps(fn)
    except Exception as e:  # noqa: BLE001 - PicklingError, AttributeError, TypeError: all mean the same here
        raise PipelineError(
            f"reference {spec.reference.callable} costs enough to be called in {w} worker processes, but cannot be "
            f"sent to them ({type(e).__name__}: {str(e).splitlines()[0]}): define it with def at the top level of a "
            f"module or notebook cell (a lambda or a closure does not pickle), or pass workers=1 to call it here"
        ) from None


def _worker_start() -> None:
    """In a reference worker: one thread for BLAS/OpenMP, no pools of its own, Ctrl-C left to the parent, and on
    Linux killed with the parent (a run killed outright, SIGKILL, cannot stop its workers itself)."""
    os.environ[cores.ENV] = "1"
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        pass


def _worker_call(raw, spec, X):
    start = time.perf_counter()
    Y, errors = raw(spec, X)
    return Y, errors, time.perf_counter() - start


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


# --- the plan sized by the budget ----------------------------------------------------------------------------------


def _pow2_floor(x: float, least: int) -> int:
    return max(least, 2 ** int(math.floor(math.log2(max(x, 1.0)))))


MIN_GRID = 11
"""the fewest points per axis a budget leaves a verification grid (1-2 inputs)"""
SEARCH_SHARE = 1 / 3
"""the share of the budget the worst-point searches may take before they are cut"""


def budget(spec, fn) -> dict | None:
    """The verification plan (grid or sample, faces, derivative points, worst-point searches) and the refiner's
    probe set, sized so that their evaluations fit verification.budget at the measured cost; None where the spec's
    own plan fits it (or the cost is not known yet): then every count is the spec's, exactly.

    The training samples, the refinement's and the corners are counted first and never cut: they are what the
    network needs to fit (6 per parameter and output by default), and a smaller set would only move the miss from
    verification to training. The searches are counted for verification and for every check of the refiner
    (refine_rounds + 1); they are cut first (fewer starts, then fewer evaluations each) when they alone would take
    more than SEARCH_SHARE of the budget; the held-out set and the checking samples then shrink to fit the rest.
    Returns the counts {"grid" (per axis, 0 past 2 inputs), "points", "probe_points", "face_points",
    "derivative_points", "holdout", "searches", "search_evaluations"} and, under "budget", what the budget bought,
    for the gate table and the card (describe()).
    """
    if not spec.reference.callable:
        return None
    t = cost(spec, fn)
    if t is None or t <= 0:
        return None
    amount, unit = parse_budget(spec.verification.budget)
    allowed = amount / t if unit == "seconds" else amount
    v, s = spec.verification, spec.sampling
    own = {
        "grid": s.grid,
        "points": s.grid ** len(spec.inputs) if s.grid else v.points,
        "probe_points": s.grid ** len(spec.inputs) if s.grid else v.points,
        "face_points": 0 if s.grid else v.face_points,
        "derivative_points": spec.derivatives.points,
        "holdout": s.holdout,
        "searches": v.searches,
        "search_evaluations": v.search_evaluations,
    }
    if _evaluations(spec, own) <= allowed:
        return None
    plan = _fit(spec, own, allowed)
    evaluations = _evaluations(spec, plan)
    plan["budget"] = {
        "budget": spec.verification.budget or f"{DEFAULT_BUDGET_SECONDS:g} s",
        "seconds_per_evaluation": t,
        "evaluations": int(evaluations),
        "allowed_evaluations": int(allowed),
        "reference_seconds": evaluations * t,
        "search_evaluations": int(_search_evaluations(spec, plan)),
        "training_evaluations": _training(spec),
        "inputs": len(spec.inputs),
        **{f"spec_{k}": n for k, n in own.items() if k != "probe_points"},
    }
    return plan


def _search_evaluations(spec, plan: dict) -> int:
    """The worst-point searches' evaluations at most: verification's (past 2 inputs) and each refiner check's."""
    t, d = spec.training, len(spec.inputs)
    kinds = len({"abs" if m in ("rmse", "max_abs") else "rel" for m in spec.gates})
    checks = (0 if plan["grid"] else 1) + (t.refine_rounds + 1 if t.refine_rounds > 0 else 0)
    return len(spec.outputs) * kinds * plan["searches"] * plan["search_evaluations"] * checks * (d > 0)


def _training(spec) -> int:
    """The training design (sample and corners) and, at most, what refinement adds: per round 3 jittered copies of
    a quarter of the round (train._round_size: a tenth of the design, 20 per input at least) and of the failed
    searches' optima (train.Refiner.new_samples). Fitted slopes take 2 more evaluations per sample and input
    (derivatives.reference_slopes_u)."""
    d, t = len(spec.inputs), spec.training
    design = spec.sampling.count + 2**d
    per_round = 3 * (max(20 * d, design // 10) // 4 + 2 * spec.verification.searches)
    return (design + t.refine_rounds * per_round) * (1 + 2 * d if spec.derivatives.fit else 1)


def _fixed(spec, plan: dict) -> int:
    """Evaluations that no count of the plan changes: the training samples (_training), and corners and edges,
    verification's (past a grid) and the refiner's (data.domain_points)."""
    d = len(spec.inputs)
    box = 2**d + (d * 2 ** (d - 1) * spec.verification.edge_points if d > 1 else 0)
    return _training(spec) + box * ((0 if plan["grid"] else 1) + 1)


def _scalable(spec, plan: dict) -> int:
    """Evaluations that shrink with the plan's counts: held-out, sample (or grid), probes, faces, derivative points."""
    d = len(spec.inputs)
    faces = (0 if plan["grid"] else 1) + (1 if d > 1 else 0)  # verification's (past a grid) and the refiner's
    return (
        plan["holdout"]
        + plan["points"]
        + plan["probe_points"]
        + faces * 2 * d * plan["face_points"]
        + 2 * d * min(plan["derivative_points"], plan["points"])
    )


def _evaluations(spec, plan: dict) -> int:
    return _fixed(spec, plan) + _scalable(spec, plan) + _search_evaluations(spec, plan)


def _fit(spec, own: dict, allowed: float) -> dict:
    """own's counts cut to fit `allowed` evaluations (see budget())."""
    d, plan = len(spec.inputs), dict(own)
    share = allowed * SEARCH_SHARE
    if _search_evaluations(spec, plan) > share:
        per_start = _search_evaluations(spec, {**plan, "searches": 1})
        plan["searches"] = max(1, int(plan["searches"] * share / _search_evaluations(spec, plan)))
        if per_start > share:
            least = 4 * (d + 1)  # a Nelder-Mead simplex and a few steps
            plan["search_evaluations"] = max(least, int(plan["search_evaluations"] * share / per_start))
    f = min(1.0, max(0.0, allowed - _fixed(spec, plan) - _search_evaluations(spec, plan)) / _scalable(spec, own))
    if own["grid"]:
        g = max(MIN_GRID, int(own["grid"] * f ** (1 / d)))
        plan["grid"] = min(own["grid"], g - (1 - g % 2))  # odd: the grid keeps each axis's midpoint
        plan["points"] = plan["probe_points"] = plan["grid"] ** d
    else:
        plan["points"] = plan["probe_points"] = min(own["points"], _pow2_floor(own["points"] * f, 256))
        plan["face_points"] = min(own["face_points"], _pow2_floor(own["face_points"] * f, 16))
    plan["derivative_points"] = min(own["derivative_points"], _pow2_floor(own["derivative_points"] * f, 256))
    plan["holdout"] = min(own["holdout"], _pow2_floor(own["holdout"] * f, 1024))  # it decides when training stops
    return plan


def describe(plan: dict) -> str:
    """What the budget bought, and what a miss would mean, in one sentence (the gate table and the card)."""
    b = plan["budget"]
    _, unit = parse_budget(b["budget"])
    over = (
        ", over the budget: the training set and the floors of the cut counts take more"
        if b["evaluations"] > b["allowed_evaluations"]
        else ""
    )
    if plan["grid"]:
        where = f"a {plan['grid']}-point-per-axis grid of the spec's {b['spec_grid']} ({plan['points']:,} points)"
        spacing = 1 / (plan["grid"] - 1)
    else:
        where = (
            f"{plan['points']:,} of {b['spec_points']:,} sample points, {plan['face_points']} of "
            f"{b['spec_face_points']} per face"
        )
        spacing = plan["points"] ** (-1 / b["inputs"])  # a low-discrepancy sample's typical spacing
    return (
        f"budget {b['budget']}{' of reference time' if unit == 'seconds' else ' evaluations'} at "
        f"{_duration(b['seconds_per_evaluation'])} per evaluation: about {b['evaluations']:,} evaluations "
        f"({_duration(b['reference_seconds'])}{over}); {b['training_evaluations']:,} for training (its samples and "
        f"refinement's at most, never cut), {plan['holdout']:,} of {b['spec_holdout']:,} held-out; {where}, "
        f"{plan['derivative_points']:,} of "
        f"{b['spec_derivative_points']:,} derivative points, {plan['searches']} of {b['spec_searches']} searches of "
        f"{plan['search_evaluations']} of {b['spec_search_evaluations']} evaluations per output and error kind "
        f"({b['search_evaluations']:,} evaluations at most, training's checks included); what a miss would mean: a "
        f"region where the gate fails that is narrower than about {spacing:.1%} of each input's range can lie "
        f"between the points, found only if a search reaches it"
    )
