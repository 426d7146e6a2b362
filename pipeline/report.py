"""Exported model -> the plots a person looks at before trusting it, and a markdown page that links them.

Written by `export` (and `python -m pipeline report NAME`) to exported/NAME_report/:
  loss.png       training loss (normalized MSE) against step, with the held-out gate checks
  parity.png     surrogate against reference on the held-out samples, one panel per output
  error_map.png  (two inputs, callable reference) error over the whole domain on the verification grid, log axes
                 where the input scale is log: relative error where a relative gate is set, absolute otherwise
  moody.png      (colebrook only) a Moody chart drawn by the surrogate over the reference curves
  README.md      gates, achieved accuracy and the plots

Every prediction here comes from the exported .onnx through the loader: the report describes the file that ships.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from . import checkpoint, data as data_mod  # noqa: E402
from .files import atomic_write  # noqa: E402
from .loader import load  # noqa: E402
from .spec import Spec  # noqa: E402


def png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def loss_plot(history: list[dict]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [h["step"] for h in history]
    ax.semilogy(steps, [h["loss"] for h in history], marker=".", label="training loss (normalized MSE)")
    met = [h for h in history if h["gates_met"]]
    if met:
        ax.semilogy([h["step"] for h in met], [h["loss"] for h in met], "o", color="green",
                    label="held-out gates met (with stop margin)")
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return png(fig)


def parity_plot(spec: Spec, y_pred: np.ndarray, y_ref: np.ndarray) -> bytes:
    n = len(spec.outputs)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 4), squeeze=False)
    for k, (ax, out) in enumerate(zip(axes[0], spec.outputs)):
        ax.plot(y_ref[:, k], y_pred[:, k], ".", ms=2)
        lo, hi = y_ref[:, k].min(), y_ref[:, k].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        if out.transform == "log":
            ax.set(xscale="log", yscale="log")
        ax.set(xlabel=f"reference {out.name} [{out.unit}]", ylabel=f"surrogate {out.name} [{out.unit}]",
               title=f"{out.name}: held-out parity")
    return png(fig)


def error_map(spec: Spec, X: np.ndarray, y_pred: np.ndarray, y_ref: np.ndarray) -> bytes:
    relative = any(m.endswith("_rel") for m in spec.gates)
    n, g = len(spec.outputs), spec.sampling.grid
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), squeeze=False)
    A, B = X[:, 0].reshape(g, g), X[:, 1].reshape(g, g)
    for k, (ax, out) in enumerate(zip(axes[0], spec.outputs)):
        err = np.abs(y_pred[:, k] - y_ref[:, k])
        if relative:
            err = err / np.abs(y_ref[:, k])
        err = np.maximum(err, 1e-12).reshape(g, g)
        mesh = ax.pcolormesh(A, B, err, norm=LogNorm(vmin=max(err.min(), err.max() * 1e-4), vmax=err.max()),
                             shading="auto", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=("relative" if relative else "absolute") + " error")
        for axis, inp in (("x", spec.inputs[0]), ("y", spec.inputs[1])):
            if inp.scale == "log":
                getattr(ax, f"set_{axis}scale")("log")
        ax.set(xlabel=f"{spec.inputs[0].name} [{spec.inputs[0].unit}]",
               ylabel=f"{spec.inputs[1].name} [{spec.inputs[1].unit}]", title=f"{out.name}: error over the domain")
    return png(fig)


def moody_chart(spec: Spec, model) -> bytes:
    """Friction factor against Re for several roughnesses: reference curves, surrogate dashed on top."""
    Re = np.logspace(np.log10(spec.inputs[0].min), np.log10(spec.inputs[0].max), 200)
    fig, ax = plt.subplots(figsize=(7, 5))
    for eD in (1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 0.01, 0.05):
        X = np.column_stack([Re, np.full_like(Re, eD)])
        ax.loglog(Re, data_mod.evaluate(spec, X)[:, 0], color="0.6", lw=3)
        ax.loglog(Re, model(X)[:, 0], "--", lw=1.2, label=f"ε/D = {eD:g}")
    ax.plot([], [], color="0.6", lw=3, label="Colebrook (fluids)")
    ax.set(xlabel="Re", ylabel="Darcy friction factor", title="Moody chart: surrogate (dashed) over Colebrook")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


EXTRA_PLOTS = {"pipeline.references:colebrook": ("moody.png", "Moody chart", moody_chart)}


def render(spec: Spec, model, model_name: str, runs: Path | None = None,
           dataset: data_mod.Dataset | None = None) -> dict[str, bytes]:
    """The report's files by name, rendered in memory: export renders them before it replaces anything."""
    dataset = dataset or data_mod.build(spec)
    files, plots = {}, []
    history = checkpoint.read_json(checkpoint.run_dir(spec.name, runs) / "history.json")
    if history:
        files["loss.png"] = loss_plot(history)
        plots.append(("Training loss", "loss.png"))
    files["parity.png"] = parity_plot(spec, model(dataset.x_holdout), dataset.y_holdout)
    plots.append(("Parity on held-out samples", "parity.png"))
    if dataset.x_grid is not None and len(spec.inputs) == 2:
        files["error_map.png"] = error_map(spec, dataset.x_grid, model(dataset.x_grid), dataset.y_grid)
        plots.append(("Error over the domain (verification grid)", "error_map.png"))
    if spec.reference.callable in EXTRA_PLOTS:
        file, title, fn = EXTRA_PLOTS[spec.reference.callable]
        files[file] = fn(spec, model)
        plots.append((title, file))

    card = model.card
    lines = [f"# {spec.name}", "", spec.description, "",
             f"Model: `{model_name}` ({card['architecture']['parameters']} parameters, "
             f"{'-'.join(map(str, [len(spec.inputs), *spec.model.widths, len(spec.outputs)]))} "
             f"{spec.model.activation}); reference: `{card['reference']}`.", "",
             "| input | unit | range | scale |", "|---|---|---|---|",
             *(f"| {i.name} | {i.unit} | {i.min:g} – {i.max:g} | {i.scale} |" for i in spec.inputs), "",
             "| set | output | metric | gate | achieved (onnxruntime) |", "|---|---|---|---:|---:|"]
    for set_name, outputs in card["achieved"].items():
        for out, metrics in outputs.items():
            lines += [f"| {set_name} | {out} | {m} | {spec.gates[m]:.3g} | {v:.3g} |" for m, v in metrics.items()]
    lines.append("")
    for title, file in plots:
        lines += [f"## {title}", "", f"![{title}]({file})", ""]
    files["README.md"] = "\n".join(lines).encode()
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for name, blob in files.items():
        atomic_write(folder / name, blob)
    return folder


def write(spec: Spec, model_path: Path, runs: Path | None = None, dataset: data_mod.Dataset | None = None) -> Path:
    """Write the report folder beside model_path; returns the folder."""
    files = render(spec, load(model_path), model_path.name, runs, dataset)
    return write_files(model_path.with_name(f"{spec.name}_report"), files)

