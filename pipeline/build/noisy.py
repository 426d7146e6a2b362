"""Noisy references -> one network that follows the trend under the scatter, with honest numbers about it.

For measured data (and callables declared `noisy`) training does not chase the training rows: per output,
networks of every candidate width in [noise] widths, from several random starts, are fitted by Bayesian-regularised
LM (bayes.py), which sets the weight decay and the noise level from the data. Their log evidence ranks them, and
the best `members` are averaged. The average is written into the one exported MLP exactly: each member's tanh units
side by side with their output weights divided by the count, and the linear paths as one near-linear unit per input
(tanh(εu)/ε = u - ε²u³/3, ε = 1e-2: a relative deviation below 1e-4 over [-1, 1]). The held-out rows take part in
no choice: they are gated at the end.

What the fit says about the data (stored in metrics.json, then in the card's `noise` part):
  scatter          per output, the rms of the scatter about the trend, 1/sqrt(β) of the best member, in the units
                   the network learns (a share of the value where the output is log-transformed)
  cv_rms           the rms residual of k-fold cross-validation on the training rows (members refitted without
                   each fold): the scatter and the model's error together, on data no fit saw
  trend_error_rms  the model's estimated error against the underlying trend over the domain: the rms of the ±σ
                   band (the Laplace approximation of each member's posterior, A⁻¹ from LM's JᵀJ, and the spread
                   of the members) over a Sobol sample of the domain
  trend_sigma_max  the largest σ there (the error at a point is about within ±σ two times in three, so the
                   largest error can be larger: 0.75-2.1x this on the probe's data and the worked example)
The band itself, per prediction, is `band(spec, X)`; the members it needs are in runs/NAME/members.json.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import PipelineError
from . import bayes, checkpoint, data as data_mod, spec as spec_mod
from .data import Dataset
from .model import Surrogate
from .spec import Spec

EPSILON = 1e-2
"""input weight of the near-linear units that carry the members' linear paths"""
MEMBERS_FILE = "members.json"


def fit_output(U: np.ndarray, z: np.ndarray, spec: Spec, k: int, widths: list[int] | None = None, restarts=None):
    """Every candidate fit of output k, best evidence first (at least one, else PipelineError)."""
    n = spec.noise
    fits = []
    for h in widths or spec_mod.noisy_plan(spec)[1]:
        for r in range(restarts or n.restarts):
            rng = np.random.default_rng([spec.training.seed, k, h, r])
            member = bayes.fit(U, z, h, rng, n.max_steps)
            if member is not None:
                fits.append(member)
    if not fits:
        raise PipelineError(f"{spec.name}: no Bayesian-regularised fit of {spec.outputs[k].name} converged")
    return sorted(fits, key=lambda m: -m.evidence)


def merge(model: Surrogate, members: list[list[bayes.Member]]) -> None:
    """Write the average of each output's members into the model's one hidden layer (see the module docstring)."""
    first, last = model.net[0], model.net[-1]
    d, width = first.in_features, first.out_features
    W1, b1 = np.zeros((width, d)), np.zeros(width)
    W2, b2 = np.zeros((last.out_features, width)), np.zeros(last.out_features)
    linear, pos = width - d, 0
    W1[linear:] = EPSILON * np.eye(d)
    for k, chosen in enumerate(members):
        for m in chosen:
            W, a, v, c, b = bayes.unpack(m.theta, d, m.width)
            W1[pos : pos + m.width], b1[pos : pos + m.width] = W, a
            W2[k, pos : pos + m.width] = v / len(chosen)
            W2[k, linear:] += c / (EPSILON * len(chosen))
            b2[k] += b / len(chosen)
            pos += m.width
    if pos > linear:
        raise PipelineError(f"model.widths = [{width}] cannot hold {pos} tanh units and {d} linear ones")
    with torch.no_grad():
        for layer, (W, b) in ((first, (W1, b1)), (last, (W2, b2))):
            layer.weight.copy_(torch.as_tensor(W))
            layer.bias.copy_(torch.as_tensor(b))


def ensemble(members: list[bayes.Member], U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (z units) of the members' average at U: each member's Laplace variance and the
    spread between them, as for a mixture (conservative: the members saw the same rows)."""
    means = np.array([m.predict(U) for m in members])
    variances = np.array([m.sigma(U) ** 2 for m in members])
    return means.mean(axis=0), np.sqrt(variances.mean(axis=0) + means.var(axis=0))


def cross_validated(spec: Spec, U: np.ndarray, z: np.ndarray, k: int, widths: list[int]) -> np.ndarray:
    """Residuals of k-fold cross-validation on the training rows: members of the chosen widths refitted without
    each fold (two starts each), their average evaluated on it."""
    folds = spec.noise.folds
    order = np.random.default_rng([spec.sampling.seed, k]).permutation(len(U))
    residuals = np.empty(len(U))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        fits = fit_output(U[train], z[train], spec, k, widths, restarts=2)[: spec_mod.noisy_plan(spec)[0]]
        residuals[test] = np.mean([m.predict(U[test]) for m in fits], axis=0) - z[test]
    return residuals


@dataclass
class Fitted:
    members: list[list[bayes.Member]]
    estimates: dict
    steps: int
    losses: list[float]


def fit(spec: Spec, model: Surrogate, data: Dataset) -> Fitted:
    """Members per output, merged into `model`, and the estimates for the card (module docstring)."""
    U = model.features(torch.as_tensor(data.x_train)).numpy()
    Z = model.targets(torch.as_tensor(data.y_train)).numpy()
    U_domain = model.features(torch.as_tensor(data_mod.sample(spec, 4096, "sobol", spec.sampling.seed + 3))).numpy()
    members, estimates, steps = [], {}, 0
    for k, out in enumerate(spec.outputs):
        fits = fit_output(U, Z[:, k], spec, k)
        steps += sum(m.steps for m in fits)
        chosen = fits[: spec_mod.noisy_plan(spec)[0]]
        members.append(chosen)
        std = float(model.out_std[k])
        _, sigma = ensemble(chosen, U_domain)
        best = chosen[0]
        estimates[out.name] = {
            "units": "relative" if out.transform == "log" else out.unit,
            "scatter": std / math.sqrt(best.beta),
            "effective_parameters": best.gamma,
            "rows": len(U),
            "widths": [m.width for m in chosen],
            "trend_error_rms": std * float(np.sqrt(np.mean(sigma**2))),
            "trend_sigma_max": std * float(sigma.max()),
        }
        if spec.noise.folds:
            cv = cross_validated(spec, U, Z[:, k], k, sorted({m.width for m in chosen}))
            estimates[out.name]["cv_rms"] = std * float(np.sqrt(np.mean(cv**2)))
    merge(model, members)
    with torch.no_grad():
        residual = model.net(torch.as_tensor(U)).numpy() - Z
    for k, out in enumerate(spec.outputs):
        estimates[out.name]["train_rms"] = float(model.out_std[k]) * float(np.sqrt(np.mean(residual[:, k] ** 2)))
    return Fitted(members, estimates, steps, members[0][0].losses)


def train(spec: Spec, data: Dataset, result_type):
    """The noisy counterpart of train.train: a result of `result_type` (train.TrainResult) with the estimates."""
    start = time.perf_counter()
    model = Surrogate(spec, data.y_train)
    fitted = fit(spec, model, data)
    seconds = time.perf_counter() - start
    history = [{"step": i + 1, "loss": loss, "gates_met": False} for i, loss in enumerate(fitted.losses)]
    members, widths = spec_mod.noisy_plan(spec)
    result = result_type(
        model.eval(),
        history=history,
        steps=fitted.steps,
        seconds=seconds,
        stop_reason=f"evidence: best {members} of {len(widths) * spec.noise.restarts} Bayesian-regularised fits averaged",
        trainer="lm (Bayesian regularisation)",
        train_samples=len(data.x_train),
        rows=len(data.x_train) * len(spec.outputs),
    )
    result.noise = {"estimates": fitted.estimates, "members": fitted.members}
    return result


def save_members(folder: Path, members: list[list[bayes.Member]]) -> None:
    """What band() needs besides the checkpoint: each output's members (width, parameters, A⁻¹)."""
    record = [
        [{"width": m.width, "theta": m.theta.tolist(), "covariance": m.covariance.tolist()} for m in chosen]
        for chosen in members
    ]
    checkpoint.write_json(folder / MEMBERS_FILE, record)


def load_members(folder: Path) -> list[list[bayes.Member]]:
    path = folder / MEMBERS_FILE
    if not path.is_file():
        raise PipelineError(f"no {MEMBERS_FILE} in {folder}: the band needs a noisy run; train it again")
    record = json.loads(path.read_text())
    return [
        [
            bayes.Member(m["width"], np.array(m["theta"]), np.zeros(0), 0.0, 0.0, 0.0, np.array(m["covariance"]), 0, [])
            for m in chosen
        ]
        for chosen in record
    ]


@dataclass
class Band:
    """The fit and its ±σ band (the model's uncertainty about the trend, not the scatter of new measurements)."""

    mean: np.ndarray
    """(N, m) the averaged members in physical units (the exported model, to within its near-linear units)"""
    sigma: np.ndarray
    """(N, m) σ in the units the network learns: relative where the output is log-transformed"""
    lower: np.ndarray
    """(N, m) the trend's -σ edge in physical units"""
    upper: np.ndarray
    """(N, m) its +σ edge"""


def band(spec: Spec, X: np.ndarray, runs: Path | None = None) -> Band:
    """The ±σ band at physical inputs X, from the run's checkpoint and members (the ONNX graph is the mean only)."""
    folder = checkpoint.run_dir(spec.name, runs)
    model = checkpoint.load(folder, spec)
    members = load_members(folder)
    U = model.features(torch.as_tensor(np.asarray(X, dtype=np.float64))).numpy()
    Z, S = np.empty((len(U), len(members))), np.empty((len(U), len(members)))
    for k, chosen in enumerate(members):
        Z[:, k], S[:, k] = ensemble(chosen, U)
    with torch.no_grad():
        phys = lambda z: model.physical(torch.as_tensor(z)).numpy()  # noqa: E731
        std = model.out_std.numpy()
        return Band(phys(Z), S * std, phys(Z - S), phys(Z + S))
