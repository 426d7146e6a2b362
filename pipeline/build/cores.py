"""The core policy: how the work of a run is spread over this machine's cores, in one place.

- A training run uses one thread (training.threads), so that its bytes do not depend on the machine's load or core
  count; the cores are used by running several surrogates at once, one process each (`--jobs`, default: one per
  core available to this process, never more than there are surrogates). Each process is single-threaded and seeded,
  so the bytes are the same whatever the number of jobs and the order they finish in.
- Reference workers and CI's parallel jobs draw from the same count (`available()`), so that two layers of
  parallelism never multiply: a process that runs inside a pool sees SURROGATE_JOBS=1 and does not start another.
"""

from __future__ import annotations

import os

ENV = "SURROGATE_JOBS"
"""environment variable that caps the processes a run starts (CI and the Makefile pass JOBS through it)"""


def available() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count), capped by SURROGATE_JOBS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get(ENV, "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else cores


def jobs(requested: int | None, tasks: int) -> int:
    """Processes for `tasks` independent tasks: the request (0 or None: available()), at most one per task."""
    n = available() if not requested else requested
    return max(1, min(n, tasks))
