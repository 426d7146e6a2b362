"""The Python API (pipeline.build.api, re-exported by `pipeline`): specs built in code, references passed directly,
train -> verify -> export -> load in a folder of the caller's, and a package that stays torch-free to import."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.build import spec as spec_mod
from pipeline.errors import PipelineError, SpecError

ROOT = Path(__file__).resolve().parents[1]
LINE = [pipeline.Input("x", "1", 0.0, 1.0)]
"""one input: the smallest problem that trains, z = x² on [0, 1]"""
TINY = dict(
    sampling={"count": 60, "holdout": 60, "grid": 21},
    model={"widths": [4]},
    training={"max_steps": 40, "device": "cpu", "refine_rounds": 0},
)
"""the smallest budget that passes a loose gate: a second of training, 21 grid points to verify"""


def tiny(reference, **changes) -> spec_mod.Spec:
    options = TINY | changes
    return pipeline.spec("tiny", LINE, [pipeline.Output("z", "1")], reference, {"max_abs": 0.05}, **options)


def test_importing_the_package_loads_no_torch():
    """`import pipeline`, `import pipeline.loader` and building a spec load no torch (a runtime user has none)."""
    code = (
        "import sys, pipeline\n"
        "assert 'numpy' not in sys.modules, 'import pipeline imports nothing else'\n"
        "import pipeline.loader\n"
        "s = pipeline.spec('t', [('x', '1', 0.0, 1.0)], [('z', '1')], lambda X: X, {'max_abs': 1.0})\n"
        "assert pipeline.GateReport and pipeline.Training and pipeline.Exported\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", spec_mod.available())
def test_every_shipped_spec_writes_back_as_itself(name):
    s = pipeline.load_spec(name)
    again = spec_mod.parse(tomllib.loads(pipeline.to_toml(s)))
    assert again.to_dict() == s.to_dict() and spec_mod.sha256(again) == spec_mod.sha256(s)


def test_a_spec_built_in_code_round_trips_through_toml(tmp_path):
    """Named by import path (the function itself or its "module:function"), a spec written out reads back the same."""
    from pipeline.references import paraboloid

    options = dict(description="a bowl", training={"max_steps": 50, "lr": 0.01, "trainer": "adam"})
    inputs = [pipeline.Input("x", "1", 0.0, 1.0), {"name": "y", "unit": "1", "min": 0, "max": 1, "scale": "linear"}]
    for reference in (paraboloid, "pipeline.references:paraboloid", {"callable": paraboloid, "vectorized": True}):
        s = pipeline.spec("bowl", inputs, [("z", "1")], reference, {"rmse": 1e-3, "max_abs": 1e-2}, **options)
        path = pipeline.save_spec(s, tmp_path / "bowl.toml")
        back = pipeline.load_spec(path)
        assert back.to_dict() == s.to_dict() and spec_mod.sha256(back) == spec_mod.sha256(s)
        assert back.reference.callable.endswith("references:paraboloid") and back.reference.function is None
        assert back.training.trainer == "adam" and back.training.options.lr == 0.01


def test_a_spec_built_in_code_checks_as_a_file_does(write_spec):
    """The same one-line SpecError, naming the spec instead of the file."""
    path = write_spec()
    Path(path).write_text(Path(path).read_text().replace("min = 0.0\nmax = 1.0", "min = 2.0\nmax = 1.0", 1))
    with pytest.raises(SpecError) as from_file:
        pipeline.load_spec(path)
    with pytest.raises(SpecError) as from_code:
        pipeline.spec("tiny", [("x", "1", 2.0, 1.0)], [("z", "1")], "pipeline.references:paraboloid", {"rmse": 1e-3})
    assert str(from_file.value) == "tiny.toml: inputs[0] (x): min (2.0) must be < max (1.0)"
    assert str(from_code.value) == "spec 'tiny': inputs[0] (x): min (2.0) must be < max (1.0)"
    with pytest.raises(SpecError, match=r"^spec 'tiny': training: unknown key 'max_step' \(allowed: "):
        tiny(lambda X: X**2, training={"max_step": 3})
    with pytest.raises(SpecError, match=r"an array of shape \(N, 2\) is needed, columns x, z"):
        tiny(np.zeros((10, 3)))


def test_a_reference_held_in_memory_says_why_it_cannot_be_written():
    with pytest.raises(SpecError, match=r"__main__:<lambda>|<lambda> has no import path"):
        pipeline.to_toml(tiny(lambda X: X**2))
    with pytest.raises(SpecError, match=r"rows held in memory .*to_csv"):
        pipeline.to_toml(tiny(np.zeros((100, 2))))


def test_a_dataframe_reference_takes_its_columns_by_name():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"z": [0.0, 0.25, 1.0], "note": ["a", "b", "c"], "x": [0.0, 0.5, 1.0]})
    s = tiny(frame)
    assert s.reference.table.tolist() == [[0.0, 0.0], [0.5, 0.25], [1.0, 1.0]]
    assert s.reference.data.startswith("<DataFrame of 3 rows, sha256 ")
    with pytest.raises(SpecError, match=r"the DataFrame lacks column\(s\) z \(has: x\)"):
        tiny(pd.DataFrame({"x": [0.0]}))


def test_runs_never_go_into_the_package(tmp_path):
    with pytest.raises(PipelineError, match="inside the pipeline package"):
        pipeline.train(tiny(lambda X: X**2), runs=Path(pipeline.__file__).parent / "runs")


def test_a_reference_that_cannot_pickle_is_refused_before_the_workers_start():
    from pipeline.build import calls

    with pytest.raises(PipelineError, match=r"cannot be sent to them \(.*\): define it with def .* or pass workers=1"):
        calls._check_picklable(tiny(lambda X: X**2), 2)
    calls._check_picklable(tiny(np.square), 2)  # a numpy ufunc pickles by name: fine


def squared(X):
    return X**2


@pytest.mark.parametrize(
    "reference",
    [lambda X: X**2, (np.linspace(0, 1, 200), np.linspace(0, 1, 200) ** 2)],
    ids=["lambda", "arrays"],
)
def test_a_function_or_arrays_train_and_pass_a_loose_gate(reference, tmp_path, capsys):
    s = tiny(reference)
    trained = pipeline.train(s, runs=tmp_path / "runs", progress=False)
    assert (tmp_path / "runs" / "tiny" / "checkpoint.pt").is_file() and trained.short is None
    assert repr(trained).startswith("tiny: ") and "checkpoint in " in repr(trained)
    report = pipeline.verify(s, runs=tmp_path / "runs", progress=False)
    assert report.passed and (tmp_path / "runs" / "tiny" / "gates.json").is_file()
    assert repr(report).startswith("tiny: all gates pass") and "<table>" in report._repr_html_()


def test_a_failing_report_shows_its_rows_and_next_step():
    from pipeline.build.verify import GateReport, GateRow

    rows = [
        GateRow("holdout", "z", "max_abs", 1e-3, 5e-4, True, {"x": 0.5}, "holdout"),
        GateRow("grid", "z", "max_abs", 1e-3, 2e-3, False, {"x": 1.0}, "grid"),
    ]
    report = GateReport("tiny", rows, advice="raise [training] max_steps (now 3) to 6")
    assert not report.passed
    assert repr(report).splitlines()[0] == "tiny: 1 of 2 gates FAIL"
    assert repr(report).endswith("tiny: next step: raise [training] max_steps (now 3) to 6")
    html = report._repr_html_()
    assert "<b>FAIL</b>" in html and "color:#c00" in html and "next step: raise" in html


@pytest.mark.slow
def test_export_then_load_in_a_folder_of_ones_own(tmp_path):
    """A module-level function (no cache warning, picklable), trained, exported under runs/exported, loaded."""
    s = tiny(squared)
    runs = tmp_path / "runs"
    pipeline.train(s, runs=runs, progress=False)
    done = pipeline.export(s, runs=runs, report=False, progress=False)
    assert done.written and done.path == runs / "exported" / "tiny.onnx"
    model = done.load()
    assert model.card.reference == "test_api:squared" or model.card.reference.endswith(":squared")
    assert abs(float(model(np.array([[0.5]]))[0, 0]) - 0.25) < 0.05


def test_every_public_name_is_documented():
    """__all__ is the one list of the API; each name has a docstring and a place in docs/python-api.md."""
    page = (ROOT / "docs" / "python-api.md").read_text()
    missing = [name for name in pipeline.__all__ if f"`{name}" not in page]
    assert not missing, f"docs/python-api.md does not describe {missing}"
    undocumented = [name for name in pipeline.__all__ if not (getattr(pipeline, name).__doc__ or "").strip()]
    assert not undocumented, undocumented
    assert set(pipeline.__all__) <= set(dir(pipeline))
