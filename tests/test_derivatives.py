"""Derivative accuracy: the surrogate's slopes against the reference's, gated, reported and fitted."""

import numpy as np
import pytest
import torch

from pipeline.build import data, derivatives, spec, train
from pipeline.build.model import Surrogate
from pipeline.build.spec import SpecError
from tests.conftest import PARABOLOID


def small_slope(X):
    """A function whose slope along y is tiny next to its values: the case that value gates do not protect."""
    X = np.asarray(X)
    return (np.exp(X[:, 0]) + 0.003 * np.sin(3 * X[:, 1]))[:, None]


def load(write_spec, extra: str = "", callable_: str = "tests.test_derivatives:small_slope", name: str = "d"):
    text = PARABOLOID.replace("pipeline.references:paraboloid", callable_).replace("[gates]", extra + "\n[gates]")
    s = spec.load(write_spec(text.format(name=name, steps=150, rmse=1e-4, max_abs=1e-3)))
    s.training.device = "cpu"  # the step budgets here are the CPU's (seeded, bit-reproducible); CUDA has its own test
    return s


class Exact(torch.nn.Module):
    """z = x² + y² written out: its slopes are exact, so the measured error is the reference's difference error."""

    def forward(self, x):
        return (x[:, 0] ** 2 + x[:, 1] ** 2)[:, None]


def test_exact_slopes_measure_no_error_and_wrong_ones_do(write_spec):
    s = spec.load(write_spec())
    X = data.grid(s)[::5]
    surrogate = Surrogate(s, np.ones((2, 1)))
    report = derivatives.report(s, surrogate, Exact(), X)
    assert report["points"] == len(X) and max(report["errors"]["z"].values()) < 2e-3  # one-sided at the edges

    class Tilted(Exact):
        def forward(self, x):
            return super().forward(x) + 0.1 * x[:, :1]  # dz/dx off by 0.1 everywhere

    tilted = derivatives.report(s, surrogate, Tilted(), X)["errors"]["z"]
    rms = np.sqrt(np.mean((2 * X[:, 0]) ** 2))
    assert tilted["x"] == pytest.approx(0.1 / rms, rel=0.02) and tilted["y"] < 2e-3


def test_surrogate_jacobian_is_the_chain_rule_through_the_graph(write_spec):
    s = spec.load(write_spec())
    torch.manual_seed(0)
    module = Surrogate(s, np.ones((2, 1)) * 3).export_model().double()  # float64: the FD check below is exact
    X = np.random.default_rng(0).uniform(0.1, 0.9, (20, 2))
    J = derivatives.surrogate_jacobian(module, X, dtype=torch.float64)
    h = 1e-6
    for i in range(2):
        Xp, Xm = X.copy(), X.copy()
        Xp[:, i] += h
        Xm[:, i] -= h
        with torch.no_grad():
            fd = (module(torch.as_tensor(Xp)) - module(torch.as_tensor(Xm))).numpy() / (2 * h)
        assert np.allclose(J[:, :, i], fd, rtol=1e-5, atol=1e-9)


def test_fitting_slopes_fixes_the_slope_that_value_gates_miss(write_spec):
    errors = {}
    for fit in ("false", "true"):
        s = load(write_spec, f"[derivatives]\ngate = 0.05\nfit = {fit}\n", name=f"fit_{fit}")
        d = data.build(s)
        r = train.train(s, d, progress=False)
        report = derivatives.report(s, r.model, r.model.export_model(), d.x_grid[::9])
        errors[fit] = report["errors"]["z"]["y"]
    assert errors["true"] < 0.5 * errors["false"], errors


def test_derivatives_in_the_gate_table(write_spec):
    s = load(write_spec, "[derivatives]\ngate = 1e-9\n")  # a slope gate nothing meets
    d = data.build(s)
    module = Surrogate(s, d.y_train).export_model()
    from pipeline.build.verify import verify

    surrogate = Surrogate(s, d.y_train)
    report = verify(
        s,
        lambda X: module(torch.as_tensor(X, dtype=torch.float32)).detach().numpy(),
        d,
        lambda X: derivatives.report(s, surrogate, module, X),
    )
    slope_rows = [r for r in report.rows if r.set == "slopes"]
    assert {r.output for r in slope_rows} == {"dz/dx", "dz/dy"} and not any(r.passed for r in slope_rows)
    assert set(report.plan["derivatives"]["errors"]["z"]) == {"x", "y"}


def test_derivatives_need_a_callable(write_spec, tmp_path):
    raw = __import__("tomllib").loads(PARABOLOID.format(name="t", steps=1, rmse=1, max_abs=1))
    raw["reference"] = {"data": "x.csv"}
    raw["derivatives"] = {"gate": 0.05}
    with pytest.raises(SpecError, match="derivatives need a callable reference"):
        spec.parse(raw)


def test_report_only_outputs_are_reported_not_gated(write_spec):
    """An output whose reference has a kink can be exempted by name; its slopes stay in the card."""
    s = load(write_spec, '[derivatives]\ngate = 1e-9\nreport_only = ["z"]\n')
    d = data.build(s)
    surrogate = Surrogate(s, d.y_train)
    module = surrogate.export_model()
    from pipeline.build.verify import verify

    report = verify(
        s,
        lambda X: module(torch.as_tensor(X, dtype=torch.float32)).detach().numpy(),
        d,
        lambda X: derivatives.report(s, surrogate, module, X),
    )
    assert not [r for r in report.rows if r.set == "slopes"]
    found = report.plan["derivatives"]
    assert found["passed"] and found["report_only"] == ["z"] and found["errors"]["z"]["x"] > 1e-9
    with pytest.raises(SpecError, match="report_only names 'k'"):
        load(write_spec, '[derivatives]\nreport_only = ["k"]\n')


def test_refinement_looks_for_slope_errors_and_fits_the_slopes_of_what_it_adds(write_spec):
    """With a derivative gate being fitted, the refiner ranks its probe points by slope error too (a network that is
    right in value and wrong in slope is refined where its slope is wrong), and the samples it adds become slope rows
    with the initial design's rms and tolerances."""
    s = load(write_spec, "[derivatives]\ngate = 0.05\nfit = true\n")
    d = data.build(s)
    torch.manual_seed(0)
    model = Surrogate(s, d.y_train)
    slopes, kept = train.slope_targets(s, model, d.x_train, d.y_train)
    assert kept.all() and slopes.t.shape == (len(d.x_train), 1, 2)
    by_value = train.Refiner(s, model).check(model)["probe_ratios"]
    by_both = train.Refiner(s, model, slopes).check(model)["probe_ratios"]
    assert np.all(by_both >= by_value) and np.any(by_both > by_value)

    X_new = d.x_train[:7] * 0.5
    added, _ = train.slope_targets(s, model, X_new, d.y_train[:7], like=slopes)
    both = slopes.extended(added)
    assert len(both.u) == len(d.x_train) + 7 and np.array_equal(added.rms, slopes.rms)
    assert torch.equal(both.w[-7:], s.derivatives.weight * slopes.tol[None, :, None] * added.share)
