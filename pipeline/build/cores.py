"""The core policy: how the work of a run is spread over this machine's cores, in one place.

- A training run's bytes never depend on the cores, the load or the number of jobs: every operation runs on one
  thread, and LM (train.lm_steps) spreads its normal equations over fixed blocks of rows, `training.threads` blocks
  at a time (0, the default: one per core this process may run on, training_threads()), added in a fixed order.
- Several surrogates run at once in processes (`--jobs`, default: one per core available to this process, never
  more than there are surrogates), each seeded, so the bytes are the same whatever the number of jobs and the order
  they finish in. Their LM threads are not capped by SURROGATE_JOBS: a block thread never spins, so while every
  job runs they share the cores at little cost, and the last job left takes them all (make train's tail: water).
- Reference workers and CI's parallel jobs draw from the same count (`available()`), so that two layers of
  processes never multiply: a process that runs inside a pool sees SURROGATE_JOBS=1 and does not start another.
"""

from __future__ import annotations

import os

ENV = "SURROGATE_JOBS"
"""environment variable that caps the processes a run starts (CI and the Makefile pass JOBS through it)"""


def available() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count), capped by SURROGATE_JOBS."""
    cores = _affinity()
    cap = os.environ.get(ENV, "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else cores


def jobs(requested: int | None, tasks: int) -> int:
    """Processes for `tasks` independent tasks: the request (0 or None: available()), at most one per task."""
    n = available() if not requested else requested
    return max(1, min(n, tasks))


def training_threads(requested: int) -> int:
    """LM's block threads: the request, or (0) one per core this process may run on, SURROGATE_JOBS or not."""
    return requested if requested > 0 else _affinity()


def _affinity() -> int:
    """Cores this process may run on: its affinity mask where the OS has one, not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
