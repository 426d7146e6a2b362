"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import PipelineError

EXPORTED_DIR = Path("exported")
"""where export writes models and cards, and codegen, fmu and report read them, unless --out says otherwise"""


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
    """
    from .loader import card_path, pending_card_path

    model_path = Path(model_path)
    pending = pending_card_path(model_path)
    atomic_write(pending, card_json)
    atomic_write(model_path, blob)
    try:
        os.replace(pending, card_path(model_path))
    except OSError as e:
        raise PipelineError(f"cannot write {card_path(model_path)}: {e.strerror or e}") from None
