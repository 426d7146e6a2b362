import dataclasses

import numpy as np
import pytest
import torch

from pipeline.build import data, spec, train
from pipeline.build.trainer_options import AdamOptions
from pipeline.errors import PipelineError
from tests.conftest import PARABOLOID


def test_lm_meets_gates_and_stops_early(write_spec):
    s = spec.load(write_spec(rmse=1e-3, max_abs=1e-2, steps=300))
    r = train.train(s, data.build(s), progress=False)
    assert r.stop_reason == "gates met" and r.steps < 300
    steps = [h for h in r.history if "loss" in h]
    assert steps[-1]["gates_met"]
    losses = [h["loss"] for h in steps]
    assert losses[-1] < losses[0] * 1e-2


def test_budget_stops_a_run_that_cannot_meet_its_gates(write_spec):
    s = spec.load(write_spec(rmse=1e-12, max_abs=1e-12, steps=7))
    r = train.train(s, data.build(s), progress=False)
    assert r.steps == 7 and r.stop_reason == "step budget" and not r.history[-1]["gates_met"]


def test_budget_holds_when_the_gates_are_met_at_the_last_step(write_spec):
    """Gates met on the held-out samples at the last step, but not at the worst points the refiner finds: the run
    ends on its budget (it went on adding rounds past max_steps before)."""
    s = spec.load(write_spec(steps=10))
    s.training = dataclasses.replace(s.training, stop_margin=1.0, refine_margin=1e-9, check_every=5, refine_every=5)
    r = train.train(s, data.build(s), progress=False)
    assert r.steps == 10 and r.stop_reason == "step budget"


def test_adam_lowers_the_loss(write_spec):
    s = spec.load(write_spec(rmse=1e-9, max_abs=1e-9, steps=300))
    s.training = dataclasses.replace(s.training, trainer="adam", options=AdamOptions(lr=1e-2), check_every=50)
    r = train.train(s, data.build(s), progress=False)
    assert r.history[-1]["loss"] < 0.05  # from ~1 for standardized targets


def test_same_seed_same_weights_other_seed_other_weights(write_spec):
    s = spec.load(write_spec(steps=20))
    d = data.build(s)
    a, b = (train.train(s, d, progress=False).model.state_dict() for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    s.training.seed = 1
    c = train.train(s, d, progress=False).model.state_dict()
    assert not torch.equal(a["net.0.weight"], c["net.0.weight"])


@pytest.mark.parametrize("slopes", [False, True])
def test_lm_threads_build_the_same_bytes(write_spec, monkeypatch, slopes):
    """LM's blocks (values, and slope rows where they are fitted), built by one thread or by three at once, are
    added in their order: the same weights."""
    monkeypatch.setattr(train, "BLOCK_ROWS", 64)  # the 500 samples in 8 blocks, their slope rows in 16
    derivatives = "[derivatives]\ngate = 0.05\nfit = true\n\n[gates]" if slopes else "[gates]"
    s = spec.load(write_spec(PARABOLOID.replace("[gates]", derivatives).format(name="t", steps=10, rmse=1, max_abs=1)))
    d = data.build(s, verification=False)
    weights = []
    for threads in (1, 3):
        s.training.threads = threads
        weights.append(train.train(s, d, progress=False).model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when no CUDA device exists")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(PipelineError, match="no CUDA device"):
        train.pick_device("cuda")
    assert train.pick_device("auto").type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_path(write_spec):
    s = spec.load(write_spec(steps=300))
    r = train.train(s, data.build(s), device="cuda", progress=False)
    assert r.device.startswith("cuda") and r.stop_reason == "gates met"
    assert np.isfinite([h["loss"] for h in r.history if "loss" in h][-1])  # the last entry may be a refinement round


def test_training_leaves_the_process_settings_as_it_found_them(write_spec):
    """Determinism and one thread are for the run: a caller's own torch code keeps its settings."""
    s = spec.load(write_spec(steps=5))
    torch.use_deterministic_algorithms(False)
    threads = torch.get_num_threads()
    train.train(s, data.build(s, verification=False), progress=False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == threads


def test_lm_with_every_slope_report_only_fits_the_values(write_spec):
    """fit = true with every output report_only: no slope rows, and the values train as without them."""
    derivatives = '[derivatives]\ngate = 0.05\nfit = true\nreport_only = ["z"]\n\n[gates]'
    s = spec.load(write_spec(PARABOLOID.replace("[gates]", derivatives).format(name="r", steps=5, rmse=1, max_abs=1)))
    r = train.train(s, data.build(s, verification=False), progress=False)
    assert r.steps == 5 and r.rows == r.train_samples  # one value row per sample (one output), no slope rows
