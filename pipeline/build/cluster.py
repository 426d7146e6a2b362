"""A costly reference's calls on a Dask cluster: `--scheduler ADDRESS` or `[reference] scheduler = "ADDRESS"`.

calls.py decides which rows are evaluated and in what chunks; this module sends the chunks to the workers of an
existing Dask distributed scheduler (dask.distributed.Client.map over the chunks) and yields their results as they
finish. A worker runs the same data._raw_rows as a local worker process, so values, failures (on_error), copies of
the inputs and timeouts are the same; it loads the reference from the spec's path, so the workers must see the same
files (a shared filesystem, or the same checkout at the same path) and have this package installed.

Ctrl-C (or any error) cancels every chunk not yet finished; the cluster's workers are the cluster's, and stay up.
"""

from __future__ import annotations

import os
import time

from ..errors import PipelineError

CONNECT_SECONDS = 20
"""how long to wait for the scheduler before saying it cannot be reached"""

_CLIENTS: dict[str, object] = {}


def client(address: str):
    """One Client per scheduler address in this process (closed by calls.close())."""
    if address not in _CLIENTS:
        try:
            from distributed import Client
        except ImportError:
            raise PipelineError(
                f'--scheduler {address}: Dask distributed is not installed (pip install ".[cluster]", or make venv)'
            ) from None
        try:
            _CLIENTS[address] = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise PipelineError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    return _CLIENTS[address]


def close() -> None:
    for c in _CLIENTS.values():
        c.close()
    _CLIENTS.clear()


def workers(address: str) -> int:
    """Threads the cluster's workers run tasks in (at least 1, so that a plan is announced while workers join)."""
    return max(1, sum(client(address).nthreads().values()))


def results(address: str, raw, spec, tasks: dict[int, object]):
    """Yield (first row, (Y, errors, seconds)) for each chunk {first row: X} as the cluster finishes it."""
    from distributed import as_completed

    c = client(address)
    starts = list(tasks)
    futures = c.map(_task, [raw] * len(starts), [spec] * len(starts), [tasks[lo] for lo in starts], pure=False)
    where = {f.key: lo for f, lo in zip(futures, starts)}
    try:
        for future in as_completed(futures, loop=c.loop):
            yield where[future.key], future.result()
    except BaseException:
        c.cancel(futures)  # Ctrl-C or an error: nothing of this run keeps the cluster busy
        raise


def _task(raw, spec, X):
    """On a Dask worker: the chunk's values with BLAS/OpenMP held to one thread, as in a local worker."""
    from threadpoolctl import threadpool_limits

    from . import cores

    os.environ[cores.ENV] = "1"
    start = time.perf_counter()
    with threadpool_limits(1):
        Y, errors = raw(spec, X)
    return Y, errors, time.perf_counter() - start
