"""Trained model -> checkpoint on disk, and back.

A run's folder (runs/NAME/ by default) holds:
  checkpoint.pt  the Surrogate's weights and scaling, and the spec it was trained from
  history.json   the training loss and held-out gate checks, step by step
  metrics.json   steps, seconds, stop reason, device, parameter count
  gates.json     the gate report written by `verify`
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import PipelineError
from ..runtime.files import atomic_write
from .model import Surrogate
from .spec import Spec, parse

RUNS_DIR = Path("runs")


def run_dir(name: str, runs: Path | None = None) -> Path:
    return Path(runs or RUNS_DIR) / name


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save(folder: Path, spec: Spec, model: Surrogate, history: list[dict], metrics: dict) -> None:
    buf = io.BytesIO()
    torch.save({"spec": spec.to_dict(), "state_dict": model.state_dict()}, buf)
    atomic_write(folder / "checkpoint.pt", buf.getvalue())
    write_json(folder / "history.json", history)
    write_json(folder / "metrics.json", metrics)


def load(folder: Path, spec: Spec) -> Surrogate:
    """The trained Surrogate; refuses a checkpoint trained from a different spec."""
    path = folder / "checkpoint.pt"
    if not path.is_file():
        raise PipelineError(f"no checkpoint at {path}: run `python -m pipeline train {spec.name}` first")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["spec"] != spec.to_dict():
        raise PipelineError(f"{path} was trained from a different spec than {spec.name}'s current one: retrain it")
    trained_spec = parse(ckpt["spec"])
    # The scaling buffers are overwritten by the state dict; y_train only sizes them.
    model = Surrogate(trained_spec, np.ones((2, len(spec.outputs))))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def read_json(path: Path):
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None
