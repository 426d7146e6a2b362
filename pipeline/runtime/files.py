"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; exports of one name must then not overlap
    fcntl = None

from ..errors import PipelineError

EXPORTED_DIR = Path("exported")
"""where export writes models and cards, and codegen, fmu and report read them, unless --out says otherwise"""


SYSTEM_HEADERS = frozenset(
    # C17/C23 standard headers, the POSIX ones a solver or the generated code's users commonly include, the headers
    # the C backend (Python.h) and the FMU (fmi2*.h) compile against
    """assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg
    stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar
    wctype aio cpio dirent dlfcn fcntl fnmatch glob grp iconv langinfo libgen monetary mqueue ndbm netdb nl_types
    poll pthread pwd regex sched search semaphore spawn strings stropts syslog tar termios trace ulimit unistd utime
    utmpx wordexp alloca malloc memory features endian byteswap omp mpi python fmi2functions fmi2functiontypes
    fmi2typesplatform""".split()
)
"""names whose generated NAME.h would shadow a header the C includes with <...> wherever the generated folder is
added with -I (compared case-insensitively: macOS and Windows file systems are)"""


def shadowed_header(name: str) -> str | None:
    """'math.h' where a surrogate named `name` would generate a header that shadows a system one, else None."""
    return f"{name}.h" if isinstance(name, str) and name.lower() in SYSTEM_HEADERS else None


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise PipelineError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model is meant to be read by others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise PipelineError(f"cannot write {path}: {e.strerror or e}") from None


def replace_model(model_path: Path, blob: bytes, card_json: bytes) -> None:
    """Replace a model and its card file so that a reader never meets a pair that does not belong together.

    Three atomic steps: the new card is parked under loader.pending_card_path, the model is replaced, then the
    parked card is renamed over the card file. The loader reads the card file before the model and accepts the
    parked card where it is the one that matches the model, so a reader during the export, and any reader after an
    export killed between the steps, loads the model with its own card (see loader._read_pair).

    Exports of one name, from threads or processes, are serialised by an advisory lock (flock) on .NAME.lock
    beside the model: two at once would share the parked card file and leave a model with the other's card.
    The lock file stays (removing it would race with the next export); the last export to finish wins whole.
    """
    from .loader import card_path, pending_card_path

    model_path = Path(model_path)
    pending = pending_card_path(model_path)
    with export_lock(model_path):
        atomic_write(pending, card_json)
        atomic_write(model_path, blob)
        try:
            os.replace(pending, card_path(model_path))
        except OSError as e:
            raise PipelineError(f"cannot write {card_path(model_path)}: {e.strerror or e}") from None


@contextlib.contextmanager
def export_lock(model_path: Path):
    """Hold the exclusive lock on .NAME.lock beside model_path (blocking); a no-op where there is no flock."""
    model_path = Path(model_path)
    lock = model_path.with_name(f".{model_path.stem}.lock")
    if fcntl is None:
        yield
        return
    try:
        model_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise PipelineError(
            f"cannot write {model_path}: cannot create its lock file {lock.name}: {e.strerror or e}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
