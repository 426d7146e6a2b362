"""Training's stop decision is one table (train.STOP_REASONS): the first reason that applies wins."""

from pipeline.build import spec, train
from pipeline.build.train import Check, stop_reason


def check(**changes) -> Check:
    base = dict(met=False, stuck=False, step=10, seconds=1.0, round_start=0, rounds=0, refining=True, history=[])
    return Check(**{**base, **changes})


T = spec.TrainingSpec(max_steps=100, max_seconds=60.0, refine_rounds=2, refine_every=10)


def test_nothing_applies_goes_on_stepping():
    assert stop_reason(check(step=5), T) == ""


def test_reasons_in_order_of_precedence():
    assert stop_reason(check(met=True, stuck=True, step=100, seconds=99.0), T) == "gates met"
    assert stop_reason(check(stuck=True, step=100, seconds=99.0), T) == "converged (no further progress)"
    assert stop_reason(check(step=100, seconds=99.0), T) == "step budget"
    assert stop_reason(check(step=101), T) == "step budget"  # a round that began past the budget ends at once
    assert stop_reason(check(seconds=99.0), T) == "time budget"
    assert stop_reason(check(), T) == "round"


def test_a_round_needs_a_refiner_and_rounds_left():
    assert stop_reason(check(refining=False), T) == ""
    assert stop_reason(check(rounds=2), T) == ""
    assert stop_reason(check(step=9), T) == ""


def test_plateau_reads_this_rounds_checks():
    flat = [{"step": s, "loss": 1.0, "holdout_ratio": 2.0} for s in range(0, 201, 5)]
    long = spec.TrainingSpec(max_steps=1000, max_seconds=60.0, refine_rounds=2, refine_every=10)
    assert stop_reason(check(step=200, refining=False, history=flat), long) == "plateau"
    assert stop_reason(check(step=200, refining=False, history=flat, round_start=150), long) == ""


def test_every_reason_is_named_once():
    names = [name for name, _ in train.STOP_REASONS]
    assert len(set(names)) == len(names) and set(train.BUDGET_REASONS) <= set(names)
