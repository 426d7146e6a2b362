"""Data -> trained model: fit a Surrogate to the training samples until the gates are met or the budget ends.

Two trainers, both plain loops:

- "lm", Levenberg-Marquardt (the default): the classic trainer for small regression networks. Each step solves
  (JᵀJ + μI) δ = Jᵀr for all parameters at once, using the Jacobian J of every residual; μ shrinks after a step
  that lowers the loss and grows after one that does not. On the paraboloid it reaches errors ~100x lower than
  Adam's plateau in a second or two. Its cost grows with samples x parameters², so it suits nets of up to a few
  thousand parameters.
- "adam": minibatch Adam with a cosine learning-rate decay, for larger nets and data sets.

The faults of the seed script are impossible here: the optimizer owns the gradients (LM has none to accumulate;
Adam zeroes them every step), the loss is a mean over samples, and `mse` refuses tensors of different shapes
instead of broadcasting an (N, 1) prediction against an (N,) target into an N x N matrix.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch.func import functional_call, jacrev, vmap
from tqdm import tqdm

from .data import Dataset
from .model import Surrogate
from .spec import PipelineError, Spec
from .verify import meets_gates


@dataclass
class TrainResult:
    model: Surrogate
    history: list[dict] = field(default_factory=list)
    """one entry per check: step, seconds, training loss (normalized MSE), held-out gates met"""
    steps: int = 0
    seconds: float = 0.0
    stop_reason: str = ""
    device: str = "cpu"


def pick_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise PipelineError("training.device = \"cuda\" but no CUDA device is available (use \"auto\" or \"cpu\")")
    return torch.device("cpu")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of two tensors of the same shape; never broadcasts."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}: "
                         "refusing to broadcast (an (N, 1) vs (N,) mix-up would give an N x N loss)")
    return torch.mean((pred - target) ** 2)


def train(spec: Spec, data: Dataset, device: str | None = None, progress: bool = True) -> TrainResult:
    """Fit a Surrogate for `spec` on `data`; stops when the held-out gates are met (with margin) or on budget."""
    t = spec.training
    dev = pick_device(device or t.device)
    torch.manual_seed(t.seed)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    model = Surrogate(spec, data.y_train).to(dev)
    u = model.features(torch.as_tensor(data.x_train, device=dev))
    z = model.targets(torch.as_tensor(data.y_train, device=dev))
    x_hold = torch.as_tensor(data.x_holdout, device=dev)

    def gates_met() -> bool:
        with torch.no_grad():
            pred = model(x_hold).cpu().numpy()
        return meets_gates(spec, pred, data.y_holdout, margin=t.stop_margin)

    step_fn = lm_steps(model, u, z) if t.trainer == "lm" else adam_steps(model, u, z, t)
    result = TrainResult(model, device=str(dev))
    start = time.perf_counter()
    bar = tqdm(total=t.max_steps, desc=f"train {spec.name} ({t.trainer}, {dev.type})", disable=not progress,
               unit="step", mininterval=0.5, leave=True)
    for step in range(1, t.max_steps + 1):
        loss, stuck = next(step_fn)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3e}", refresh=False)
        seconds = time.perf_counter() - start
        last = step == t.max_steps or stuck or seconds > t.max_seconds
        if step % t.check_every == 0 or last:
            met = gates_met()
            result.history.append({"step": step, "seconds": round(seconds, 4), "loss": loss, "gates_met": met})
            reason = ("gates met" if met else "converged (no further progress)" if stuck else
                      "step budget" if step == t.max_steps else "time budget" if seconds > t.max_seconds else "")
            if reason:
                result.stop_reason = reason
                break
    bar.close()
    result.steps, result.seconds = step, time.perf_counter() - start
    model.cpu()
    return result


def lm_steps(model: Surrogate, u: torch.Tensor, z: torch.Tensor):
    """Levenberg-Marquardt on the flat parameter vector; yields (loss, stuck) after each step."""
    net = model.net
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    sizes = [p.numel() for p in net.parameters()]
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])
    eye = torch.eye(len(theta), dtype=theta.dtype, device=theta.device)

    def forward(params: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        tensors = {n: p.view(s) for n, p, s in zip(names, params.split(sizes), shapes)}
        return functional_call(net, tensors, (inputs,))

    def residuals(params: torch.Tensor) -> torch.Tensor:
        pred = forward(params, u)
        assert pred.shape == z.shape, f"prediction {tuple(pred.shape)} vs target {tuple(z.shape)}"
        return (pred - z).flatten()

    # Per-sample Jacobians, batched: d(net(u_i))/d(theta) for every sample i, shape (N * n_out, P).
    jacobian = vmap(jacrev(lambda p, x: forward(p, x[None])[0]), in_dims=(None, 0))
    mu = 1e-3
    r = residuals(theta)
    loss = float(torch.mean(r ** 2))
    while True:
        J = jacobian(theta, u).reshape(len(r), -1)
        JtJ, Jtr = J.T @ J, J.T @ r
        stuck = True
        while mu < 1e10:
            delta = torch.linalg.solve(JtJ + mu * eye, Jtr)
            r_new = residuals(theta - delta)
            loss_new = float(torch.mean(r_new ** 2))
            if math.isfinite(loss_new) and loss_new < loss:
                theta, r, loss, stuck = theta - delta, r_new, loss_new, False
                mu = max(mu / 3, 1e-12)
                break
            mu *= 4
        with torch.no_grad():
            for p, new in zip(net.parameters(), theta.split(sizes)):
                p.copy_(new.view(p.shape))
        yield loss, stuck


def adam_steps(model: Surrogate, u: torch.Tensor, z: torch.Tensor, t):
    """Minibatch Adam with cosine decay of the learning rate; yields (loss, stuck) after each step."""
    opt = torch.optim.Adam(model.net.parameters(), lr=t.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.max_steps, eta_min=t.lr * 1e-3)
    gen = torch.Generator(device="cpu").manual_seed(t.seed)
    n = len(u)
    order, pos = torch.randperm(n, generator=gen), 0
    while True:
        if pos + t.batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + t.batch_size].to(u.device)
        pos += t.batch_size
        opt.zero_grad(set_to_none=True)
        loss = mse(model.net(u[idx]), z[idx])
        loss.backward()
        opt.step()
        sched.step()
        yield float(loss.detach()), False


def summary(spec: Spec, data: Dataset, result: TrainResult) -> dict:
    """What the run's metrics.json records."""
    return {"surrogate": spec.name, "trainer": spec.training.trainer, "device": result.device,
            "steps": result.steps, "train_seconds": round(result.seconds, 3), "stop_reason": result.stop_reason,
            "final_loss": result.history[-1]["loss"] if result.history else None,
            "parameters": sum(p.numel() for p in result.model.net.parameters()),
            "train_samples": len(data.x_train), "dropped_rows": data.dropped_rows}
