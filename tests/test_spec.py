import tomllib

import pytest

from pipeline.build import spec
from pipeline.build.spec import SpecError
from tests.conftest import PARABOLOID


def base() -> dict:
    return tomllib.loads(PARABOLOID.format(name="t", steps=10, rmse=1e-3, max_abs=1e-2))


def test_shipped_specs_load():
    assert "paraboloid" in spec.available()
    for name in spec.available():
        s = spec.load(name)
        assert s.name == name and s.inputs and s.outputs and s.gates


def test_defaults_fill_in():
    s = spec.parse(base())
    assert s.model.activation == "tanh" and s.training.trainer == "lm" and s.sampling.method == "sobol"
    assert s.input_names == ["x", "y"] and s.output_names == ["z"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["training"].update(epochs=3), "training: unknown key 'epochs'"),
        (lambda d: d["inputs"][0].update(min=1.0, max=0.0), "inputs[0] (x): min (1.0) must be < max (0.0)"),
        (lambda d: d["inputs"][1].update(scale="log"), "inputs[1] (y): log scale needs a positive range"),
        (lambda d: d["sampling"].update(count=-1), "sampling.count must be >= 1"),
        (lambda d: d["gates"].update(rmse=-1.0), "gates.rmse must be a positive finite threshold"),
        (lambda d: d["gates"].update(r2=0.9), "unknown metric 'r2'"),
        (lambda d: d["model"].update(widths=[8, 0]), "model.widths must be a non-empty list"),
        (lambda d: d["model"].update(activation="gelu"), "model.activation must be one of"),
        (lambda d: d["training"].update(device="tpu"), "training.device must be one of"),
        (lambda d: d["inputs"][0].update(min="zero"), "inputs[0].min must be float"),
        (lambda d: d.pop("gates"), "missing required key 'gates'"),
        (lambda d: d["reference"].update(data="x.csv"), "exactly one of 'callable' or 'data'"),
        (lambda d: d["outputs"][0].update(name="x"), "used twice"),
        (lambda d: d.update(spec_version=9), "spec_version 9 is not supported"),
    ],
)
def test_bad_specs_name_the_field(mutate, message):
    d = base()
    mutate(d)
    with pytest.raises(SpecError) as e:
        spec.parse(d, where="t.toml")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_surrogate_lists_the_known_ones():
    with pytest.raises(SpecError, match="unknown surrogate 'nope' \\(known: .*paraboloid"):
        spec.load("nope")


def test_invalid_toml(write_spec):
    with pytest.raises(SpecError, match="not valid TOML"):
        spec.load(write_spec("name = "))


def test_spec_names_what_model_and_train_implement():
    """spec.py names the activations, and trainer_options declares the trainers' options, without importing torch;
    the registries implement exactly those."""
    from pipeline.build import model, train, trainer_options

    assert set(spec.ACTIVATIONS) == set(model.ACTIVATIONS)
    assert set(trainer_options.OPTIONS) == set(train.TRAINERS)


def test_spec_list_codegen_and_fmu_need_no_torch(tmp_path):
    """With torch unavailable, specs are read and listed, and code and FMUs are generated from exported models."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from pipeline.build import spec\n"
        "from pipeline import codegen\n"
        "from pipeline.codegen import fmu\n"
        "from pipeline.cli import main\n"
        "assert [spec.load(n).name for n in spec.available()]\n"
        "assert main(['list']) == 0\n"
        f"assert main(['codegen', 'water', '--lang', 'c', '--dest', {str(tmp_path)!r}]) == 0\n"
        f"assert main(['codegen', 'water', '--lang', 'fortran', '--dest', {str(tmp_path)!r}]) == 0\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
