"""Trainers declare their own options (pipeline/build/trainer_options.py); [training] stays one flat table."""

import pytest

from pipeline.build import spec
from pipeline.build.trainer_options import OPTIONS, AdamOptions, LMOptions
from pipeline.errors import SpecError
from tests.conftest import PARABOLOID


def parsed(**training) -> spec.Spec:
    import tomllib

    raw = tomllib.loads(PARABOLOID.format(name="t", steps=100, rmse=1e-3, max_abs=1e-2))
    raw["training"].update(training)
    return spec.parse(raw, where="t.toml")


def test_the_chosen_trainers_options_are_read_into_its_dataclass():
    s = parsed(trainer="adam", lr=1e-2, batch_size=64)
    assert s.training.options == AdamOptions(lr=1e-2, batch_size=64)
    assert parsed(lm_memory_gb=2).training.options == LMOptions(lm_memory_gb=2.0)


def test_lm_takes_the_options_of_the_adam_it_gives_way_to():
    assert parsed(trainer="lm", lr=1e-2).training.options.lr == 1e-2


def test_default_steps_are_the_trainers():
    assert parsed(trainer="adam", max_steps=0).training.max_steps == AdamOptions.default_steps
    assert parsed(max_steps=0).training.max_steps == LMOptions.default_steps


@pytest.mark.parametrize(
    "training, message",
    [
        (
            {"trainer": "adam", "lm_memory_gb": 2.0},
            "training: lm_memory_gb is an option of the lm trainer, not of 'adam'",
        ),
        ({"trainer": "adam", "lr": -1.0}, "training.lr must be > 0, got -1.0"),
        ({"batch_size": 0}, "training.batch_size must be >= 1"),
        ({"lm_memory_gb": 0.0}, "training.lm_memory_gb must be > 0"),
        ({"trainer": "adam", "lr": "fast"}, "training.lr must be float"),
        ({"momentum": 0.9}, "training: unknown key 'momentum' (allowed: trainer, max_steps"),
        ({"options": {}}, "training: unknown key 'options'"),
        ({"trainer": "sgd"}, "training.trainer must be one of 'lm', 'adam'"),
    ],
)
def test_a_wrong_option_is_one_line_naming_the_key(training, message):
    with pytest.raises(SpecError) as e:
        parsed(**training)
    assert str(e.value).startswith("t.toml: ") and message in str(e.value) and "\n" not in str(e.value)


def test_the_spec_records_training_flat_as_written():
    """to_dict() (the card's spec_sha256, a checkpoint's spec) keeps [training] one table, options included."""
    training = parsed(trainer="adam", lr=1e-2).to_dict()["training"]
    assert training["lr"] == 1e-2 and "options" not in training and training["trainer"] == "adam"


def test_every_options_class_checks_its_defaults_clean():
    assert all(cls().check() == "" for cls in OPTIONS.values())
