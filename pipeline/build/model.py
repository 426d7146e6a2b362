"""Data -> model: an MLP wrapped in the scaling that makes it learnable, and its export form.

`Surrogate` is what trains: physical inputs -> (log where the spec says) -> affine to [-1, 1] -> MLP ->
standardized outputs -> undo standardization -> (exp where the spec says) -> physical outputs. Training works in
the normalized space, where every input and output is O(1) and the optimizer's defaults make sense.

`ExportModel` is what ships: the same function in float32 with the two affine scalings folded into the weights
of the first and last layer, so that the exported graph is Log? -> Gemm -> act -> ... -> Gemm -> Exp? with no
separate scaling nodes for a runtime to execute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .spec import Spec


@dataclass(frozen=True)
class Activation:
    module: type[nn.Module]
    slope: Callable[[torch.Tensor], torch.Tensor]
    """d act / da at pre-activations a: LM builds its Jacobian by explicit backpropagation (train.py)"""
    smooth: bool
    """a continuous slope: offered by the architecture search (search.py), which gates on slopes too"""


def _tanh_slope(a: torch.Tensor) -> torch.Tensor:
    t = torch.tanh(a)
    return 1 - t * t


def _silu_slope(a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(a)
    return s * (1 + a * (1 - s))


ACTIVATIONS = {
    "tanh": Activation(nn.Tanh, _tanh_slope, smooth=True),
    "silu": Activation(nn.SiLU, _silu_slope, smooth=True),
    "relu": Activation(nn.ReLU, lambda a: (a > 0).to(a.dtype), smooth=False),
}
"""model.activation -> its module and slope. spec.py accepts these names; the exported ONNX operators must be ones
codegen handles (codegen.UNARY/BINARY: Tanh, Sigmoid, Relu, Mul, ...)."""


def activation_of(module: nn.Module) -> Activation:
    for entry in ACTIVATIONS.values():
        if type(module) is entry.module:
            return entry
    raise ValueError(f"no registered activation for {type(module).__name__}")


def mlp(n_in: int, widths: list[int], n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(n_in, w), ACTIVATIONS[activation].module()]
        n_in = w
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class Surrogate(nn.Module):
    """Physical inputs (N, d_in) -> physical outputs (N, d_out), in float64 for training."""

    def __init__(self, spec: Spec, y_train: np.ndarray):
        super().__init__()
        f64 = torch.float64
        self.register_buffer("in_log", torch.tensor([i.scale == "log" for i in spec.inputs], dtype=f64))
        self.register_buffer("out_log", torch.tensor([o.transform == "log" for o in spec.outputs], dtype=f64))
        lo = self.transform_in(torch.tensor([[i.min for i in spec.inputs]], dtype=f64))[0]
        hi = self.transform_in(torch.tensor([[i.max for i in spec.inputs]], dtype=f64))[0]
        # u = a * t + c maps the transformed range [lo, hi] onto [-1, 1].
        self.register_buffer("in_a", 2.0 / (hi - lo))
        self.register_buffer("in_c", -1.0 - 2.0 * lo / (hi - lo))
        t = self.transform_out(torch.as_tensor(y_train, dtype=f64))
        std = t.std(dim=0) if len(t) > 1 else torch.ones(t.shape[1], dtype=f64)
        self.register_buffer("out_mean", t.mean(dim=0))
        self.register_buffer("out_std", torch.where(std > 0, std, torch.ones_like(std)))
        self.net = mlp(len(spec.inputs), spec.model.widths, len(spec.outputs), spec.model.activation).to(f64)
        self.activation = spec.model.activation

    def transform_in(self, x: torch.Tensor) -> torch.Tensor:
        m = self.in_log
        return torch.log(torch.where(m > 0, x, torch.ones_like(x))) * m + x * (1 - m)

    def transform_out(self, y: torch.Tensor) -> torch.Tensor:
        m = self.out_log
        return torch.log(torch.where(m > 0, y, torch.ones_like(y))) * m + y * (1 - m)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Physical inputs -> the network's inputs in [-1, 1]."""
        return self.transform_in(x) * self.in_a + self.in_c

    def from_features(self, u: torch.Tensor) -> torch.Tensor:
        """The network's inputs -> physical inputs (the inverse of features)."""
        t = (u - self.in_c) / self.in_a
        m = self.in_log
        return torch.exp(t * m) * m + t * (1 - m)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Physical outputs -> what the network learns (standardized, log where the spec says)."""
        return (self.transform_out(y) - self.out_mean) / self.out_std

    def physical(self, z: torch.Tensor) -> torch.Tensor:
        """Network outputs -> physical outputs."""
        t = z * self.out_std + self.out_mean
        return torch.exp(t * self.out_log) * self.out_log + t * (1 - self.out_log)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.physical(self.net(self.features(x)))

    def export_model(self) -> "ExportModel":
        """The same function in float32, with scaling folded into the first and last layer."""
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        weights = [(l.weight.detach().clone(), l.bias.detach().clone()) for l in linears]
        W, b = weights[0]
        weights[0] = (W * self.in_a, W @ self.in_c + b)  # W (a t + c) + b
        W, b = weights[-1]
        weights[-1] = (W * self.out_std[:, None], b * self.out_std + self.out_mean)  # std (W h + b) + mean
        return ExportModel(weights, self.activation, self.in_log.tolist(), self.out_log.tolist())


class ExportModel(nn.Module):
    """float32, physical in and out: the module handed to the ONNX exporter."""

    def __init__(self, weights, activation: str, in_log: list[float], out_log: list[float]):
        super().__init__()
        self.layers = nn.ModuleList()
        for W, b in weights:
            layer = nn.Linear(W.shape[1], W.shape[0])
            layer.weight.data = W.to(torch.float32).contiguous()
            layer.bias.data = b.to(torch.float32).contiguous()
            self.layers.append(layer)
        self.act = ACTIVATIONS[activation].module()
        # Which columns are log-scaled decides the graph's shape: all (one Log node), none, or a masked mix.
        self.in_mode, self.in_mask = _mode(in_log)
        self.out_mode, self.out_mask = _mode(out_log)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_mode == "all":
            x = torch.log(x)
        elif self.in_mode == "mixed":
            m = self.in_mask
            x = torch.log(x * m + (1 - m)) * m + x * (1 - m)  # log(1) = 0 on linear columns
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        y = self.layers[-1](x)
        if self.out_mode == "all":
            y = torch.exp(y)
        elif self.out_mode == "mixed":
            m = self.out_mask
            y = torch.exp(y * m) * m + y * (1 - m)
        return y


def _mode(mask: list[float]) -> tuple[str, torch.Tensor]:
    mode = "all" if all(mask) else "none" if not any(mask) else "mixed"
    return mode, torch.tensor(mask, dtype=torch.float32)


def parameter_count(widths: list[int], n_in: int, n_out: int) -> int:
    sizes = [n_in, *widths, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def flops_per_sample(widths: list[int], n_in: int, n_out: int) -> int:
    """Multiply-adds of the dense layers, counted as 2 FLOPs each (activations not counted)."""
    sizes = [n_in, *widths, n_out]
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
