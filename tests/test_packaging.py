"""The runtime a solver's Python can pip-install: `pip install .` gives pipeline.loader with numpy and onnxruntime
only; torch and the rest come with the `train` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and installs it into fresh virtual environments

ROOT = Path(__file__).resolve().parents[1]
NO_NETWORK = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No matching distribution found",
    "Could not find a version",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built offline with this environment's setuptools, from a copy of what it packages (a
    build writes build/ and *.egg-info beside its sources: not into the checkout)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "pipeline", src / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("surrogate_pipeline-*.whl")
    return path


def test_wheel_requires_numpy_and_onnxruntime_only(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        names = z.namelist()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    runtime = sorted(r.split(">")[0].split("=")[0].split(";")[0].strip() for r in requires if "extra ==" not in r)
    assert runtime == ["numpy", "onnxruntime"]
    assert any(r.startswith("torch") and 'extra == "train"' in r for r in requires)
    for f in (
        "loader.py",
        "card.py",
        "errors.py",
        "runtime/loader.py",
        "runtime/card.py",
        "runtime/domain.py",
        "specs/water.toml",
    ):
        assert f"pipeline/{f}" in names


def fresh_venv(wheel: Path, folder: Path, extra: str = "") -> Path:
    """A new virtual environment with the wheel installed (with `extra`); returns its python."""
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    requirement = f"{wheel}[{extra}]" if extra else str(wheel)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0 and any(s in done.stderr for s in NO_NETWORK):
        pytest.skip(f"pip cannot reach a package index for {requirement} (no network)")
    assert done.returncode == 0, done.stderr[-2000:]
    return python


def run_in(python: Path, code: str, cwd: Path, *args: str) -> str:
    """Run code (or, with args, `python -m` args) outside the checkout, so that only the installed package imports."""
    command = [str(python), *args] if args else [str(python), "-c", code]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


PARABOLOID = str(ROOT / "exported" / "paraboloid.onnx")


def test_fresh_venv_without_torch_loads_an_exported_model(wheel, tmp_path):
    python = fresh_venv(wheel, tmp_path / "env")
    code = (
        "import importlib.util, sys; from pipeline.loader import load; from pipeline.errors import LoaderError\n"
        f"f = load({PARABOLOID!r})\n"
        "print(f([[0.3, 0.4]])[0, 0], f.card.name, importlib.util.find_spec('torch') is None, "
        "sorted(m for m in ('torch', 'onnx', 'scipy') if m in sys.modules))\n"
        "for call in (lambda: load(f.path, backend='c'), lambda: f.jacobian([[0.3, 0.4]])):\n"
        "    try: call()\n"
        "    except LoaderError as e: print(str(e).replace(' ', '_'))\n"
    )
    out = run_in(python, code, tmp_path)
    value, name, no_torch, heavy, *missing = out.replace(", ", ",").split()
    assert abs(float(value) - 0.25) < 1e-3 and name == "paraboloid" and no_torch == "True" and heavy == "[]"
    assert len(missing) == 2 and all("surrogate-pipeline[c]" in m and "'onnx'" in m for m in missing), missing


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_the_c_extra_gives_the_c_backend_and_jacobians_without_torch(wheel, tmp_path):
    python = fresh_venv(wheel, tmp_path / "env", "c")
    code = (
        "import importlib.util; from pipeline.loader import load\n"
        f"f, c = load({PARABOLOID!r}), load({PARABOLOID!r}, backend='c')\n"
        "J = f.jacobian([[0.3, 0.4]])\n"
        "print(c([[0.3, 0.4]])[0, 0], J[0, 0, 0], J[0, 0, 1], importlib.util.find_spec('torch') is None)\n"
    )
    value, dx, dy, no_torch = run_in(python, code, tmp_path).split()
    assert abs(float(value) - 0.25) < 1e-3 and abs(float(dx) - 0.6) < 0.02 and abs(float(dy) - 0.8) < 0.02
    assert no_torch == "True"


def test_the_train_extra_trains_and_exports_a_spec(wheel, tmp_path):
    """Everything training imports comes with the extra (threadpoolctl included): train, then export, a tiny spec.
    The extras that go with it are installed alongside and used: a task on a Dask LocalCluster ([cluster]), a
    notebook run by nbclient with a DataFrame in it ([test]) and a Gaussian process fitted ([compare])."""
    from conftest import PARABOLOID as TEMPLATE

    python = fresh_venv(wheel, tmp_path / "env", "train,cluster,test,compare")
    extras = (
        "import nbformat, nbclient\n"
        "from dask.distributed import Client, LocalCluster\n"
        "from sklearn.gaussian_process import GaussianProcessRegressor\n"
        "with LocalCluster(n_workers=1, processes=False) as cluster, Client(cluster) as client:\n"
        "    print(client.submit(sum, [1, 2]).result())\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('import pandas; print(len(pandas.DataFrame({\"a\": [1, 2, 3]})))')])\n"
        "nbclient.NotebookClient(nb, kernel_name='python3').execute()\n"
        "print(nb.cells[0].outputs[0]['text'].strip())\n"
        "print(round(float(GaussianProcessRegressor().fit([[0.0], [1.0]], [0.0, 1.0]).predict([[1.0]])[0]), 3))\n"
    )
    assert run_in(python, extras, tmp_path).split() == ["3", "3", "1.0"]
    spec = tmp_path / "tiny.toml"
    spec.write_text(TEMPLATE.format(name="tiny", steps=30, rmse=1e9, max_abs=1e9))
    folders = ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "exported")]
    run_in(python, "", tmp_path, "-m", "pipeline", "train", "--quiet", *folders, str(spec))
    run_in(python, "", tmp_path, "-m", "pipeline", "export", *folders, str(spec))
    assert (tmp_path / "exported" / "tiny.onnx").is_file()
