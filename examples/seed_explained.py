"""Why the seed script never learned z = x² + y², told one fault at a time.

The original loop had three faults:
  1. no `optimizer.zero_grad()`: every step adds its gradient to all the previous ones;
  2. the loss compares an (N, 1) prediction with an (N,) target, which broadcasts to an N x N matrix (every
     prediction against every target), and sums it instead of averaging;
  3. plain SGD at lr 1e-6: with a summed loss the step size depends on N, and with a mean loss it is far too small.
Then one thing that is not a fault but matters as much: inputs and outputs scaled to O(1).

Each stage below removes one more fault and prints the validation RMSE (lower is better), then the pipeline's own
trainer (Levenberg-Marquardt on the shipped paraboloid spec's network, `python -m pipeline train paraboloid`)
finishes the lesson.

    python examples/seed_explained.py          # about half a minute on 2 cores
    python examples/seed_explained.py --quick  # fewer steps, for the tests
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_TRAIN, N_VAL = 1000, 2000


def make_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N_TRAIN + N_VAL, 2, generator=g)
    z = x[:, 0] ** 2 + x[:, 1] ** 2  # shape (N,): the shape that trips up the loss
    return x[:N_TRAIN], z[:N_TRAIN], x[N_TRAIN:], z[N_TRAIN:]


def seed_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 10), nn.ReLU(), nn.Linear(10, 1))


def val_rmse(model, x_val, z_val, scale=None) -> float:
    with torch.no_grad():
        pred = model(x_val if scale is None else scale["x"](x_val)).squeeze(-1)
        if scale is not None:
            pred = scale["z_inv"](pred)
    return float(torch.sqrt(torch.mean((pred - z_val) ** 2)))


def run(stage: int, steps: int, data) -> float:
    """Stage 0 is the original loop; stage k removes the first k faults."""
    x, z, x_val, z_val = data
    model = seed_net()
    scale = None
    if stage >= 4:  # inputs to [-1, 1], output standardized
        mean, std = z.mean(), z.std()
        scale = {"x": lambda v: 2 * v - 1, "z": lambda v: (v - mean) / std, "z_inv": lambda v: v * std + mean}
    if stage >= 3:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        if stage >= 3:  # Adam on minibatches of 64
            idx = torch.randint(0, len(x), (64,), generator=g)
            xb, zb = x[idx], z[idx]
        else:
            xb, zb = x, z
        if stage >= 1:
            opt.zero_grad()  # fault 1 fixed
        if scale is not None:
            xb, zb = scale["x"](xb), scale["z"](zb)
        pred = model(xb)  # (N, 1)
        if stage >= 2:
            loss = torch.mean((pred.squeeze(-1) - zb) ** 2)  # fault 2 fixed: (N,) vs (N,), averaged
        else:
            loss = torch.sum((pred - zb) ** 2)  # (N, 1) - (N,) -> (N, N), summed
        loss.backward()
        opt.step()
    return val_rmse(model, x_val, z_val, scale)


def pipeline_stage() -> tuple[float, str]:
    """The pipeline's default: LM on the shipped paraboloid spec, verified on the 201 x 201 grid."""
    import numpy as np

    from pipeline.build import data, spec, train

    s = spec.load("paraboloid")
    net = "-".join(map(str, [2, *s.model.widths, 1])) + " " + s.model.activation
    d = data.build(s)
    result = train.train(s, d, progress=False)
    module = result.model.export_model()
    with torch.no_grad():
        pred = module(torch.as_tensor(d.x_grid, dtype=torch.float32)).numpy()
    rmse = float(np.sqrt(np.mean((pred - d.y_grid) ** 2)))
    return rmse, f"{net}, {result.steps} LM steps"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps (for the tests)")
    args = p.parse_args()
    full_batch_steps, minibatch_steps = (200, 500) if args.quick else (2000, 2500)
    data = make_data()
    stages = [
        "0. the original loop (no zero_grad, (N,1) vs (N,) summed, SGD lr 1e-6)",
        "1. + optimizer.zero_grad()",
        "2. + loss on matching shapes, averaged",
        "3. + Adam lr 1e-3 on minibatches of 64",
        "4. + inputs scaled to [-1, 1], output standardized",
    ]
    print(f"{'stage':<82} {'val RMSE':>10} {'time':>7}")
    results = []
    for k, label in enumerate(stages):
        t0 = time.perf_counter()
        rmse = run(k, full_batch_steps if k < 3 else minibatch_steps, data)
        results.append(rmse)
        print(f"{label:<82} {rmse:>10.2e} {time.perf_counter() - t0:>6.1f}s", flush=True)
    t0 = time.perf_counter()
    rmse, how = pipeline_stage()
    results.append(rmse)
    print(
        f"{'5. the pipeline: Levenberg-Marquardt (' + how + ', grid RMSE)':<82} {rmse:>10.2e} "
        f"{time.perf_counter() - t0:>6.1f}s"
    )
    print(f"\nfrom the original loop to the pipeline: {results[0] / results[-1]:,.0f}x lower RMSE")


if __name__ == "__main__":
    main()
