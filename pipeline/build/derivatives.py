"""Derivatives: the surrogate's Jacobian against the reference's, gated, reported and (optionally) fitted.

Newton-type solvers differentiate the properties and closures they call, so a surrogate that matches its reference
to 0.1 % can still mislead them: a network's error is small but wiggly, and its slope error is not small where the
reference's slope is (viscosity barely depends on pressure, so 0.1 % of noise in mu is half of d mu / d p).

Reference derivatives come from central differences of the reference in the network's input space (every input
mapped to [-1, 1], after a log where the scale is log), with a step of `derivatives.step` there, one-sided at the
edges of the box; the chain rule turns them into physical units. The surrogate's derivatives are exact (autograd
through the float32 module that ships: scalings and log transforms included).

The metric, per output k and input i, is the largest |dS_k/dx_i - dR_k/dx_i| over the points, as a share of the
root mean square of dR_k/dx_i over the same points. `[derivatives] gate` bounds it for every pair; with
`fit = true`, training adds derivative residuals as extra LM rows (see train.lm_steps).
"""

from __future__ import annotations

import numpy as np
import torch

from . import data as data_mod
from .model import Surrogate
from .spec import Spec


def reference_slopes_u(spec: Spec, model: Surrogate, X: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """dR/du at X, shape (N, n_outputs, n_inputs), in the network's input space; and per point whether the
    reference answered at every shifted input (points where it failed are dropped by the caller)."""
    with torch.no_grad():
        u = model.features(torch.as_tensor(X, dtype=torch.float64, device=model.in_a.device))
    n, d = u.shape
    slopes = np.empty((n, len(spec.outputs), d))
    ok = np.ones(n, dtype=bool)
    for i in range(d):
        hi, lo = u.clone(), u.clone()
        hi[:, i] = torch.clamp(u[:, i] + h, max=1.0)
        lo[:, i] = torch.clamp(u[:, i] - h, min=-1.0)
        with torch.no_grad():
            both = model.from_features(torch.cat([hi, lo])).cpu().numpy()
        both = np.clip(both, [i.min for i in spec.inputs], [i.max for i in spec.inputs])
        Y = data_mod.evaluate(spec, both, "points near which derivatives are taken")
        ok &= np.isfinite(Y[:n]).all(axis=1) & np.isfinite(Y[n:]).all(axis=1)
        slopes[:, :, i] = (Y[:n] - Y[n:]) / (hi[:, i] - lo[:, i]).cpu().numpy()[:, None]
    return slopes, ok


def reference_jacobian(spec: Spec, model: Surrogate, X: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """dR/dx at X in physical units, shape (N, n_outputs, n_inputs), and the mask of points where it exists."""
    slopes, ok = reference_slopes_u(spec, model, X, h)
    return slopes * du_dx(model, X)[:, None, :], ok


def du_dx(model: Surrogate, X: np.ndarray) -> np.ndarray:
    """d(network input)/d(physical input), per point and input: a, or a / x on log inputs."""
    a, is_log = model.in_a.cpu().numpy(), model.in_log.cpu().numpy() > 0
    return np.where(is_log, a / np.where(is_log, X, 1.0), a)


def surrogate_jacobian(module: torch.nn.Module, X: np.ndarray, dtype=torch.float32) -> np.ndarray:
    """dS/dx of a torch module at X, shape (N, n_outputs, n_inputs), exact (autograd), in chunks."""
    out = []
    with torch.enable_grad():  # callers often hold no_grad for the forward passes around this
        for start in range(0, len(X), 4096):
            x = torch.as_tensor(X[start : start + 4096], dtype=dtype).requires_grad_(True)
            y = module(x)
            rows = [
                torch.autograd.grad(y[:, k].sum(), x, retain_graph=k + 1 < y.shape[1])[0] for k in range(y.shape[1])
            ]
            out.append(torch.stack(rows, dim=1).detach().double().numpy())
    return np.concatenate(out)


def relative_errors(J_s: np.ndarray, J_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (output, input): max |J_s - J_r| / rms(J_r), and the index of the worst point."""
    diff = np.abs(J_s - J_r)
    rms = np.sqrt(np.mean(J_r**2, axis=0))
    return np.max(diff, axis=0) / np.maximum(rms, np.finfo(float).tiny), np.argmax(diff, axis=0)


def verification_points(spec: Spec, data: data_mod.Dataset) -> np.ndarray:
    """Where derivatives are verified: the grid or the domain sample, thinned to derivatives.points."""
    X = data.x_grid if data.x_grid is not None else data.x_domain if data.x_domain is not None else data.x_holdout
    sized = data_mod.budget(spec)  # a costly reference: as many points as verification.budget buys
    step = max(1, int(np.ceil(len(X) / (sized["derivative_points"] if sized else spec.derivatives.points))))
    return X[::step]


def report(spec: Spec, surrogate: Surrogate, module: torch.nn.Module, X: np.ndarray) -> dict:
    """Derivative accuracy of `module` (the shipped float32 function) at X, for every output x input."""
    J_r, ok = reference_jacobian(spec, surrogate, X, spec.derivatives.step)
    X, J_r = X[ok], J_r[ok]
    errors, worst = relative_errors(surrogate_jacobian(module, X), J_r)
    gate = spec.derivatives.gate
    gated = np.array([o.name not in spec.derivatives.report_only for o in spec.outputs])
    return {
        "gate": gate or None,
        "points": int(len(X)),
        "step": spec.derivatives.step,
        "passed": bool(not gate or np.all(errors[gated] <= gate)),
        "report_only": list(spec.derivatives.report_only),
        "errors": {
            o.name: {i.name: float(errors[k, j]) for j, i in enumerate(spec.inputs)} for k, o in enumerate(spec.outputs)
        },
        "worst_at": {
            o.name: {i.name: dict(zip(spec.input_names, X[worst[k, j]].tolist())) for j, i in enumerate(spec.inputs)}
            for k, o in enumerate(spec.outputs)
        },
    }


def training_targets(
    spec: Spec, model: Surrogate, X: np.ndarray, rms: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """For derivative fitting: network inputs u, the reference's slopes dz/du (N, m, d) in the network's own units,
    per point the factor that turns an error in dz/du into the gate's measure (the error in dy/dx, physical units,
    as a share of gate x rms(dy/dx); on a log input it grows as 1/x, as the physical slope does), the rms used, and
    the mask of the points of X kept (those where the reference answered at every shifted input).

    `rms` (n_outputs, n_inputs), the rms of dy/dx over the domain, is taken from these points unless given: samples
    added by refinement crowd where the error is worst, so their own rms would not be the domain's."""
    slopes_u, ok = reference_slopes_u(spec, model, X, spec.derivatives.step)
    X, slopes_u = X[ok], slopes_u[ok]
    Y = data_mod.evaluate(spec, X, "derivative fitting points")
    is_log = model.out_log.cpu().numpy() > 0
    std = model.out_std.cpu().numpy()
    dy_dz = np.where(is_log, Y, 1.0) * std  # z = (T(y) - mean) / std, T = log or identity
    dz_du = slopes_u / dy_dz[:, :, None]
    convert = dy_dz[:, :, None] * du_dx(model, X)[:, None, :]  # dz/du error -> dy/dx error
    if rms is None:
        rms = np.sqrt(np.mean((slopes_u * du_dx(model, X)[:, None, :]) ** 2, axis=0))
    fitted = np.array([o.name not in spec.derivatives.report_only for o in spec.outputs])
    convert = convert * fitted[None, :, None]  # report_only outputs: weight 0
    gate = spec.derivatives.gate or 0.05
    dev = model.in_a.device
    with torch.no_grad():
        u = model.features(torch.as_tensor(X, dtype=torch.float64, device=dev))
    return (
        u,
        torch.as_tensor(dz_du, device=dev),
        torch.as_tensor(convert / (gate * np.maximum(rms, 1e-300)), device=dev),
        rms,
        ok,
    )
