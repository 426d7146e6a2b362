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


def test_fresh_venv_without_torch_loads_an_exported_model(wheel, tmp_path):
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and any(s in done.stderr for s in NO_NETWORK):
        pytest.skip("pip cannot reach a package index for numpy and onnxruntime (no network)")
    assert done.returncode == 0, done.stderr[-2000:]
    code = (
        "import importlib.util, sys; from pipeline.loader import load; "
        f"f = load({str(ROOT / 'exported' / 'paraboloid.onnx')!r}); "
        "print(f([[0.3, 0.4]])[0, 0], f.card.name, importlib.util.find_spec('torch') is None, "
        "sorted(m for m in ('torch', 'onnx', 'scipy') if m in sys.modules))"
    )
    # run outside the checkout, so that only the installed package can be imported
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    value, name, no_torch, heavy = out.split(maxsplit=3)
    assert abs(float(value) - 0.25) < 1e-3 and name == "paraboloid" and no_torch == "True" and heavy.strip() == "[]"
