"""The notebooks of examples/notebooks/: committed without outputs, and run top to bottom on this interpreter (the
checkout's .venv) with nbclient, in a folder of their own, where they write everything."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
KERNEL = "surrogate-pipeline-test"


def test_there_is_a_notebook():
    assert NOTEBOOKS, "examples/notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    """Outputs would be stale the moment the code changes, and make every diff unreadable."""
    nb = json.loads(path.read_text())
    dirty = [
        k for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


def venv_kernel(folder: Path) -> Path:
    """A kernel spec that starts this very interpreter, in a Jupyter data folder of its own (JUPYTER_PATH is
    searched first): a kernel "python3" registered elsewhere on the machine cannot stand in for the checkout's."""
    spec = folder / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": "pipeline .venv", "language": "python"}))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JUPYTER_PATH", str(venv_kernel(tmp_path / "jupyter")))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # ipykernel's inline backend, as in Jupyter
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(path, work)
    nb = nbformat.read(work / path.name, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(work)}}).execute()
    seconds = time.perf_counter() - start
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"python: {sys.executable}\n" in printed, "the notebook ran on another interpreter than this one"
    assert list((work / "runs").glob("*/checkpoint.pt")) and list((work / "runs" / "exported").glob("*.onnx"))
    after_export = nb.cells[next(k for k, c in enumerate(nb.cells) if "pipeline.export(" in c.source) :]
    shown = [o for c in after_export if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert shown, "no plot shown after the export: did the report's rendering switch the notebook's backend?"
    print(f"{path.name}: {seconds:.1f} s")
    if keep := __import__("os").environ.get("KEEP_EXECUTED_NOTEBOOK"):  # to read what it printed
        nbformat.write(nb, keep)
