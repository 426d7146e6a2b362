"""Surrogates of real size: defaults that scale with the inputs, sample-and-search verification, adaptive sampling,
and a guard on cost."""

import textwrap

import numpy as np
import pytest
import torch

from pipeline.build import data, spec, train, verify
from pipeline.build.spec import SpecError
from pipeline.cli import EXIT_GATES_FAILED


def n_input_spec(
    d: int,
    callable_: str = "tests.test_n_inputs:smooth",
    extra: str = "",
    gate: str = "max_rel = 1e-2",
    name: str = "nd",
) -> str:
    """A spec as a new user writes it: names, units, ranges, scales, one output, the reference and a gate."""
    inputs = "".join(
        f"""
        [[inputs]]
        name = "x{k}"
        unit = "1"
        min = 1.0
        max = {2.0 + k}
        """
        for k in range(d)
    )
    return textwrap.dedent(f"""
        spec_version = 1
        name = "{name}"
        [reference]
        callable = "{callable_}"
        {inputs}
        [[outputs]]
        name = "y"
        unit = "1"
        transform = "log"
        [gates]
        {gate}
        """) + textwrap.dedent(extra)


def smooth(X):
    X = np.asarray(X)
    return np.exp(0.3 * np.sin(X).sum(axis=1)) * (1 + 0.1 * X[:, 0])


def test_defaults_follow_the_number_of_inputs():
    small, large = (spec.parse(__import__("tomllib").loads(n_input_spec(d))) for d in (2, 8))
    assert small.sampling.grid == 201 and large.sampling.grid == 0  # past 2 inputs: sample and search
    assert max(large.model.widths) > max(small.model.widths) and large.sampling.count > small.sampling.count
    assert large.training.max_seconds > small.training.max_seconds
    assert large.verification.search_evaluations > small.verification.search_evaluations
    assert large.verification.points >= 100_000


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[sampling]\ncount = 100000000000\n", "need 4e+03 GB of arrays"),
        ("[model]\nwidths = [100000000]\n", "parameters; at most 5,000,000"),
    ],
)
def test_impossible_sizes_are_refused_in_one_line(extra, message):
    with pytest.raises(SpecError) as e:
        spec.parse(__import__("tomllib").loads(n_input_spec(4, extra=extra)))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_domain_points_cover_corners_faces_and_edges(write_spec):
    s = spec.load(write_spec(n_input_spec(3, extra="[verification]\npoints = 64\nface_points = 4\nedge_points = 2\n")))
    U, stage = data.domain_points(s, seed=0)
    assert (stage == "sample").sum() == 64 and (stage == "corner").sum() == 8
    assert (stage == "face").sum() == 6 * 4 and (stage == "edge").sum() == 12 * 2
    at_end = (U == 0) | (U == 1)
    assert (at_end[stage == "corner"].sum(axis=1) == 3).all()
    assert (at_end[stage == "face"].sum(axis=1) >= 1).all() and (at_end[stage == "edge"].sum(axis=1) >= 2).all()


def bumpy(X):
    """smooth() with a narrow bump that a coarse sample steps over."""
    X = np.asarray(X)
    return smooth(X) * (1 + 0.05 * np.exp(-np.sum(((X - [1.37, 1.61, 2.23]) / 0.04) ** 2, axis=1)))


def test_search_finds_the_worst_point_between_samples(write_spec):
    """The model is exactly smooth(); the truth has a bump between the sample's points: only the search finds it."""
    s = spec.load(
        write_spec(
            n_input_spec(
                3,
                "tests.test_n_inputs:bumpy",
                extra="[verification]\npoints = 256\nface_points = 4\nedge_points = 1\nsearches = 8\n",
            )
        )
    )
    d = data.build(s)
    report = verify.verify(s, lambda X: smooth(X)[:, None], d)
    rows = {r.set: r for r in report.rows}
    sample_worst = np.max(np.abs(smooth(d.x_domain) / d.y_domain[:, 0] - 1))
    assert rows["domain"].stage == "search" and rows["domain"].achieved > 3 * sample_worst
    assert rows["domain"].achieved > 0.02  # most of the 5 % bump
    assert abs(rows["domain"].worst_at["x0"] - 1.37) < 0.1
    assert report.plan["searches"] == 8 and report.plan["search_evaluations"] > 8


def corner_spike(X):
    """Smooth, but steep towards one corner of the box, where a Sobol design is sparse."""
    X = np.asarray(X)
    return smooth(X) * (1 + 0.5 * np.exp(-((4 - X[:, 2]) + (3 - X[:, 1])) / 0.15))


@pytest.mark.slow
def test_adaptive_sampling_adds_samples_where_the_error_is(write_spec):
    s = spec.load(
        write_spec(
            n_input_spec(
                3,
                "tests.test_n_inputs:corner_spike",
                gate="max_rel = 3e-3",
                extra="[sampling]\ncount = 300\n[model]\nwidths = [16, 16]\n[training]\nmax_seconds = 120\n",
            )
        )
    )
    r = train.train(s, data.build(s, verification=False), progress=False)
    rounds = [h for h in r.history if h.get("event") == "refine"]
    assert any(h["added"] > 0 for h in rounds) and r.train_samples > 300 + 8
    added_near_corner = rounds[0]["worst_at"]
    assert added_near_corner["x2"] > 3.5 and added_near_corner["x1"] > 2.5  # found at the steep corner
    assert r.stop_reason == "gates met"


def test_failing_run_says_what_to_try(cli, write_spec):
    path = write_spec(
        n_input_spec(
            3,
            gate="max_rel = 1e-7",
            extra="[model]\nwidths = [2]\n[training]\n"
            "max_steps = 40\nrefine_rounds = 0\n[verification]\npoints = 512\n",
        )
    )
    status, out, _ = cli("train", path)
    assert status == EXIT_GATES_FAILED and "FAIL" in out and "next step: " in out
    assert "widths = [4]" in out or "max_steps" in out  # a concrete change, not only "FAIL"
    status, out, _ = cli("verify", path)
    assert status == EXIT_GATES_FAILED and "search" in out and "next step: " in out


def test_parameter_jacobian_matches_autograd():
    torch.manual_seed(0)
    for act in ("tanh", "silu", "relu"):
        net = __import__("pipeline.build.model", fromlist=["mlp"]).mlp(3, [5, 4], 2, act).double()
        u = torch.rand(7, 3, dtype=torch.float64)
        J = train.parameter_jacobian(net, u)
        params = list(net.parameters())
        rows = []
        for n in range(7):
            for k in range(2):
                grads = torch.autograd.grad(net(u[n : n + 1])[0, k], params)
                rows.append(torch.cat([g.flatten() for g in grads]))
        assert torch.allclose(J, torch.stack(rows), atol=1e-12)
        second = train.parameter_jacobian(net, u, torch.tensor([1]))  # one output's rows only (fitted slopes)
        assert torch.allclose(second, torch.stack(rows)[1::2], atol=1e-12)


def test_lm_in_chunks_takes_the_same_steps(write_spec):
    s = spec.load(write_spec(steps=10))
    d = data.build(s, verification=False)
    losses = []
    for gb in (1.0, 1e-5):  # one chunk, then chunks of a few samples
        torch.manual_seed(0)
        model = train.Surrogate(s, d.y_train)
        u, z = model.features(torch.as_tensor(d.x_train)), model.targets(torch.as_tensor(d.y_train))
        steps = train.lm_steps(model, u, z, memory_gb=gb)
        losses.append([next(steps)[0] for _ in range(5)])
    assert np.allclose(losses[0], losses[1], rtol=1e-9)


def test_lm_gives_way_to_adam_past_its_memory_bound(write_spec):
    s = spec.load(write_spec())
    s.training.options.lm_memory_gb = 1e-6
    trainer, note = train.choose_trainer(s, 1000)
    assert trainer == "adam" and "GB" in note and "Adam" in note


@pytest.mark.slow
def test_three_inputs_train_verify_export_with_defaults(cli, write_spec, tmp_path):
    path = write_spec(n_input_spec(3, extra="[verification]\npoints = 4096\n"))
    assert cli("train", path)[0] == 0
    status, out, _ = cli("verify", path)
    assert status == 0 and "domain" in out and "found by" in out
    status, out, err = cli("export", path)
    assert status == 0, err
    card = __import__("json").loads((tmp_path / "exported" / "nd.json").read_text())
    plan = card["verification"]
    assert plan["points"]["corner"] == 8 and plan["points"]["sample"] == 4096 and plan["searches"] > 0
    assert plan["worst"]["y"]["max_rel"]["stage"] and set(plan["worst"]["y"]["max_rel"]["at"]) == {"x0", "x1", "x2"}
    assert (tmp_path / "exported" / "nd_report" / "error_map.png").is_file()
