"""The "Extending" page (docs/extending.md, linked from the README), done as it says: a toy codegen language, a toy
trainer and a toy benchmark backend, each registered in its registries and used through the public entry points (the
CLI, benchmarks.backends and the benchmark summary). A step the page leaves out shows up here as a failure."""

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from pipeline import codegen
from pipeline.build import spec, train, trainer_options
from pipeline.errors import SpecError
from tests.conftest import PARABOLOID

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"


def extending_section() -> str:
    return (ROOT / "docs" / "extending.md").read_text()


def test_readme_names_every_registry_this_test_fills():
    section = extending_section()
    for registry in ("`LANGUAGES`", "`TRAINERS`", "`OPTIONS`", "`BACKENDS`", "trainer_options.py", "toolchains.py"):
        assert registry in section, registry


def toy_language(graph, precision: str) -> dict[str, str]:
    """One file listing the graph's operators: enough to show the registry and the CLI."""
    return {
        f"{graph.name}.toy": f"{graph.name} {graph.n_in}->{graph.n_out} {precision}: {[s.op for s in graph.steps]}\n"
    }


def test_a_codegen_language_is_one_function_and_one_line(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(codegen.LANGUAGES, "toy", toy_language)
    status, out, _ = cli("codegen", "paraboloid", "--lang", "toy", "--dest", str(tmp_path / "gen"), out=EXPORTED)
    assert status == 0 and "paraboloid.toy" in out
    written = (tmp_path / "gen" / "paraboloid.toy").read_text()
    assert written.startswith("paraboloid 2->1 float: [") and "'Gemm'" in written


@dataclasses.dataclass
class ToyOptions:  # declared without `from __future__ import annotations`, as a user's module may be
    step_size: float = 0.05
    default_steps: ClassVar[int] = 40

    def check(self) -> str:
        return "" if self.step_size > 0 else f"step_size must be > 0, got {self.step_size}"


def toy_steps(model, u, z, t, slopes):
    """Plain full-batch gradient descent."""
    opt = torch.optim.SGD(model.net.parameters(), lr=t.options.step_size)
    while True:
        opt.zero_grad()
        loss = train.mse(model.net(u), z)
        loss.backward()
        opt.step()
        yield float(loss.detach()), False


@pytest.fixture
def toy_trainer(monkeypatch):
    monkeypatch.setitem(train.TRAINERS, "toy", toy_steps)
    monkeypatch.setitem(trainer_options.OPTIONS, "toy", ToyOptions)


def toy_spec(write_spec, training: str) -> str:
    text = PARABOLOID.format(name="toy", steps=0, rmse=1e3, max_abs=1e3)
    return write_spec(text.replace("max_steps = 0\n", training))


def test_a_trainer_is_a_step_function_and_its_options(toy_trainer, cli, write_spec, tmp_path):
    path = toy_spec(write_spec, 'trainer = "toy"\nstep_size = 0.1\n')
    assert spec.load(path).training.options == ToyOptions(step_size=0.1)
    assert spec.load(path).training.max_steps == ToyOptions.default_steps
    status, out, _ = cli("train", path)
    assert status == 0 and "gates met" in out
    metrics = json.loads((tmp_path / "runs" / "toy" / "metrics.json").read_text())
    assert metrics["trainer"] == "toy"


def test_a_trainers_options_are_checked_in_one_line(toy_trainer, write_spec):
    with pytest.raises(SpecError, match=r"training.step_size must be > 0, got -1.0$"):
        spec.load(toy_spec(write_spec, 'trainer = "toy"\nstep_size = -1.0\n'))
    with pytest.raises(SpecError, match="lr is an option of the lm and adam trainers, not of 'toy'"):
        spec.load(toy_spec(write_spec, 'trainer = "toy"\nlr = 0.1\n'))


def test_a_benchmark_backend_is_a_prepare_function_and_one_line(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from benchmarks import backends, summarize
    from pipeline.loader import load

    monkeypatch.chdir(ROOT)
    toy = backends.Backend("generated", lambda name, path, X: (load(path), X))
    monkeypatch.setitem(backends.BACKENDS, "toy", toy)
    assert "toy" in backends.backends("paraboloid") and backends.kind("paraboloid", "toy") == "generated"
    fn, X = backends.prepare("paraboloid", "toy", 64)
    assert np.allclose(fn(X), backends.reference_values("paraboloid", 64), atol=1e-2)

    # its timings, recorded with its kind as benchmarks/test_inference.py records them, reach the summary
    raw = json.loads((ROOT / "benchmarks/results/bench.json").read_text())
    timed = [b for b in raw["benchmarks"] if b["extra_info"].get("backend") == "c-backend"]
    for b in timed:
        entry = json.loads(json.dumps(b))
        entry["extra_info"].update(backend="toy", backend_kind="generated", backend_one_sample=False)
        raw["benchmarks"].append(entry)
    (tmp_path / "raw.json").write_text(json.dumps(raw))
    summarize.KINDS.clear(), summarize.ONE_SAMPLE.clear()
    full, _ = summarize.summary(summarize.load(tmp_path / "raw.json"), plots=False, out=tmp_path)
    assert "| toy |" in full
