"""Exported model -> the plots a person looks at before trusting it, and a markdown page that links them.

Written by `export` (and `python -m pipeline report NAME`) to exported/NAME_report/:
  loss.png       training loss (normalized MSE) against step, with the held-out gate checks
  parity.png     surrogate against reference on the held-out samples, one panel per output
  error_map.png  (callable reference) error over the whole domain on the verification grid for two inputs, with
                 the boundary of a domain that is not a box drawn in; past two inputs, a slice over the two most
                 influential inputs through the worst point verification found. Log axes where the input scale is
                 log; relative error where a relative gate is set, absolute otherwise
  bound_K.png    (a domain that is not a box) the error along each bound and just inside it, where properties steepen
  moody.png      (colebrook only) a Moody chart drawn by the surrogate over the reference curves
  README.md      gates, achieved accuracy and the plots

Every prediction here comes from the exported .onnx through the loader: the report describes the file that ships.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..errors import PipelineError
from ..runtime import domain as domain_mod
from ..runtime.card import Card
from ..runtime.files import atomic_write
from ..runtime.loader import load
from . import checkpoint, data as data_mod, spec as spec_mod
from .spec import Spec
from .verify import describe_noise, describe_plan


def subplots(*args, **kwargs):
    """A figure and its axes, as plt.subplots makes them, but outside pyplot: rendering a report never switches the
    caller's backend (a notebook's inline plots) nor keeps a figure open in it."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(*args, **kwargs)


def png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def loss_plot(history: list[dict]) -> bytes:
    fig, ax = subplots(figsize=(6, 4))
    rounds = [h for h in history if h.get("event") == "refine" and h["added"]]
    history = [h for h in history if "loss" in h]
    steps = [h["step"] for h in history]
    ax.semilogy(steps, [h["loss"] for h in history], marker=".", label="training loss (normalized MSE)")
    for k, r in enumerate(rounds):
        ax.axvline(
            r["step"],
            color="0.6",
            lw=0.8,
            ls=":",
            label="samples added where the error was largest" if k == 0 else None,
        )
    met = [h for h in history if h["gates_met"]]
    if met:
        ax.semilogy(
            [h["step"] for h in met],
            [h["loss"] for h in met],
            "o",
            color="green",
            label="held-out gates met (with stop margin)",
        )
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return png(fig)


def parity_plot(spec: Spec, y_pred: np.ndarray, y_ref: np.ndarray) -> bytes:
    n = len(spec.outputs)
    fig, axes = subplots(1, n, figsize=(4 * n, 4), squeeze=False)
    for k, (ax, out) in enumerate(zip(axes[0], spec.outputs)):
        ax.plot(y_ref[:, k], y_pred[:, k], ".", ms=2)
        lo, hi = y_ref[:, k].min(), y_ref[:, k].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        if out.transform == "log":
            ax.set(xscale="log", yscale="log")
        ax.set(
            xlabel=f"reference {out.name} [{out.unit}]",
            ylabel=f"surrogate {out.name} [{out.unit}]",
            title=f"{out.name}: held-out parity",
        )
    return png(fig)


def error_map(
    spec: Spec,
    X: np.ndarray,
    y_pred: np.ndarray,
    y_ref: np.ndarray,
    shape: tuple[int, int],
    axes: tuple[int, int] = (0, 1),
    note: str = "",
) -> bytes:
    """Error over a 2-D (possibly curvilinear) grid of inputs axes[0] x axes[1], one panel per output."""
    relative = any(m.endswith("_rel") for m in spec.gates)
    n = len(spec.outputs)
    fig, panels = subplots(1, n, figsize=(5 * n, 4.3), squeeze=False)
    a, b = spec.inputs[axes[0]], spec.inputs[axes[1]]
    A, B = X[:, axes[0]].reshape(shape), X[:, axes[1]].reshape(shape)
    for k, (ax, out) in enumerate(zip(panels[0], spec.outputs)):
        err = np.abs(y_pred[:, k] - y_ref[:, k])
        if relative:
            err = err / np.abs(y_ref[:, k])
        err = np.maximum(err, 1e-12).reshape(shape)
        mesh = ax.pcolormesh(
            A,
            B,
            err,
            norm=LogNorm(vmin=max(err.min(), err.max() * 1e-4), vmax=err.max()),
            shading="auto",
            cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, label=("relative" if relative else "absolute") + " error")
        for bound in data_mod.bounds(spec):  # the edge of a domain that is not a box
            names = [a.name, b.name]
            if bound["input"] in names and bound["of"] in names:
                of = spec.inputs[spec.input_names.index(bound["of"])]
                t = np.linspace(0, 1, 400)
                v = (
                    10 ** (np.log10(of.min) + t * np.log10(of.max / of.min))
                    if of.scale == "log"
                    else of.min + t * (of.max - of.min)
                )
                curve = domain_mod.bound_value(bound, v)
                xy = (curve, v) if bound["input"] == a.name else (v, curve)
                ax.plot(*xy, "r-", lw=1.2, label=f"{bound['input']} = {bound['label']}")
                ax.legend(fontsize=7, loc="lower right")
        for axis, inp in (("x", a), ("y", b)):
            if inp.scale == "log":
                getattr(ax, f"set_{axis}scale")("log")
        ax.set(xlabel=f"{a.name} [{a.unit}]", ylabel=f"{b.name} [{b.unit}]", title=f"{out.name}: error{note}")
    return png(fig)


def influential_inputs(spec: Spec, model, n: int = 2048) -> list[int]:
    """Inputs ordered by how much the surrogate's outputs change along them (mean |finite difference| over the
    unit cube, on log outputs where the spec transforms them): the axes of the error slice past 2 inputs."""
    d = len(spec.inputs)
    U = data_mod.unit_sample(d, n, "sobol", 77)
    base = model(data_mod.from_unit(spec, U))
    logs = np.array([o.transform == "log" for o in spec.outputs])
    scale = np.std(base, axis=0) + 1e-300

    def f(Y):
        return np.where(logs, np.log(np.maximum(np.abs(Y), 1e-300)), Y / scale)

    effect = []
    for i in range(d):
        V = U.copy()
        V[:, i] = np.where(V[:, i] < 0.95, V[:, i] + 0.05, V[:, i] - 0.05)
        effect.append(float(np.mean(np.abs(f(model(data_mod.from_unit(spec, V))) - f(base)))))
    return sorted(range(d), key=lambda i: -effect[i])


def error_slice(spec: Spec, model, card: Card, points: int = 61) -> tuple[bytes, str]:
    """Past 2 inputs: the error over the two most influential inputs, the others held at the worst point."""
    i, j = sorted(influential_inputs(spec, model)[:2])
    worst = max(
        (
            (w["value"] / card.gates[metric], w["at"])
            for out in card.verification["worst"].values()
            for metric, w in out.items()
        ),
        key=lambda t: t[0],
    )[1]
    u_worst = _to_unit(spec, np.array([[worst[n] for n in spec.input_names]]))[0]  # the slice goes through it
    axis = np.linspace(0.0, 1.0, points)
    U = np.tile(u_worst, (points * points, 1))
    U[:, i], U[:, j] = np.repeat(axis, points), np.tile(axis, points)
    X = data_mod.from_unit(spec, U)
    Y = data_mod.evaluate(spec, X, "slice points")
    ok = np.isfinite(Y).all(axis=1)
    P = np.where(ok[:, None], model(X), np.nan)
    held = ", ".join(f"{n}={worst[n]:.4g}" for k, n in enumerate(spec.input_names) if k not in (i, j))
    image = error_map(spec, X, P, np.where(ok[:, None], Y, np.nan), (points, points), (i, j), note=f" (slice; {held})")
    names = f"{spec.input_names[i]} and {spec.input_names[j]}"
    return (
        image,
        f"the two most influential inputs, {names}, with the others held at the worst point verification "
        f"found ({held})",
    )


def _to_unit(spec: Spec, X: np.ndarray) -> np.ndarray:
    """Inverse of data.from_unit for points of a box (bounded inputs are placed relative to their bound)."""
    U = np.empty_like(X, dtype=np.float64)
    for k, inp in enumerate(spec.inputs):
        f = np.log10 if inp.scale == "log" else (lambda v: v)
        U[:, k] = (f(X[:, k]) - f(inp.min)) / (f(inp.max) - f(inp.min))
    names = spec.input_names
    for b in data_mod.bounds(spec):
        i, j = names.index(b["input"]), names.index(b["of"])
        inp, limit = spec.inputs[i], domain_mod.bound_value(b, X[:, j])
        f = np.log10 if inp.scale == "log" else (lambda v: v)
        lo, hi = (f(inp.min), f(limit)) if b["side"] == "max" else (f(limit), f(inp.max))
        U[:, i] = (f(X[:, i]) - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.clip(U, 0.0, 1.0)


def boundary_errors(spec: Spec, model, bound: dict, offsets=(0.0, 0.02, 0.1), points: int = 200) -> bytes:
    """Error along a bound of the domain and just inside it, against the bound's `of` input: where properties
    steepen (cp near saturation) the surrogate is weakest, and this is where to see it. Offsets are fractions of
    the bounded input's range, measured inwards from the bound."""
    names = spec.input_names
    i, j = names.index(bound["input"]), names.index(bound["of"])
    relative = any(m.endswith("_rel") for m in spec.gates)
    target, of = spec.inputs[i], spec.inputs[j]
    d = len(spec.inputs)
    fig, axes = subplots(1, len(spec.outputs), figsize=(4.5 * len(spec.outputs), 3.8), squeeze=False)
    for offset in offsets:
        U = np.full((points, d), 0.5)
        U[:, j] = np.linspace(0.0, 1.0, points)
        U[:, i] = 1.0 if bound["side"] == "max" else 0.0
        X = data_mod.from_unit(spec, U)
        step = offset * (target.max - target.min)
        X[:, i] = X[:, i] - step if bound["side"] == "max" else X[:, i] + step
        # A narrow domain that touches the box: "inside" by a share of the range may leave the box (or cross
        # another bound); such points are drawn where the domain ends instead, not evaluated outside it.
        X = np.clip(X, [v.min for v in spec.inputs], [v.max for v in spec.inputs])
        X = domain_mod.clip(data_mod.bounds(spec), names, X)
        Y = data_mod.evaluate(spec, X, "points along the domain's bound")
        err = np.abs(model(X) - Y) / (np.abs(Y) if relative else 1.0)
        for k, (ax, out) in enumerate(zip(axes[0], spec.outputs)):
            ax.plot(
                X[:, j],
                err[:, k],
                label=f"{bound['input']} = {bound['label']}" + (f" - {step:.3g} {target.unit}" if offset else ""),
            )
    for k, (ax, out) in enumerate(zip(axes[0], spec.outputs)):
        ax.set(
            yscale="log",
            xscale="log" if of.scale == "log" else "linear",
            xlabel=f"{of.name} [{of.unit}]",
            ylabel=("relative" if relative else "absolute") + " error",
            title=f"{out.name} along the bound",
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return png(fig)


def band_plot(spec: Spec, model, runs: Path | None, dataset: data_mod.Dataset) -> tuple[bytes, str]:
    """A noisy fit over its most influential input, the others at the middle of their ranges: the rows (shifted to
    the slice by the fit's own change between their inputs and the slice's, so that rows from the whole box line
    up), the fit, its ±σ band (the trend's uncertainty) and ±σ with the scatter (where new rows would fall); below,
    the same relative to the fit (log outputs) or as differences from it."""
    from . import noisy

    i = influential_inputs(spec, model)[0]
    inp, d = spec.inputs[i], len(spec.inputs)
    U = np.full((200, d), 0.5)
    U[:, i] = np.linspace(0.0, 1.0, 200)
    X_line = data_mod.from_unit(spec, U)
    band = noisy.band(spec, X_line, runs)
    centre = data_mod.from_unit(spec, np.full((1, d), 0.5))[0]
    others = [j for j in range(d) if j != i]
    n = len(spec.outputs)
    fig, axes = subplots(2, n, figsize=(5.5 * n, 7.0), squeeze=False, sharex="col")
    for k, out in enumerate(spec.outputs):
        log, top, bottom = out.transform == "log", axes[0][k], axes[1][k]
        scatter = model.card.noise["estimates"][out.name]["scatter"] if model.card.noise else 0.0
        mean, sigma = band.mean[:, k], band.sigma[:, k]
        for X, Y, style, label in (
            (dataset.x_train, dataset.y_train, dict(ms=3, color="0.55"), "training rows"),
            (dataset.x_holdout, dataset.y_holdout, dict(ms=4, color="tab:red"), "held-out rows"),
        ):
            Xs = np.array(X, dtype=np.float64)
            Xs[:, others] = centre[others]
            f_row, f_slice = model(X)[:, k], model(Xs)[:, k]
            top.plot(
                X[:, i], Y[:, k] * f_slice / f_row if log else Y[:, k] - f_row + f_slice, ".", label=label, **style
            )
            bottom.plot(X[:, i], 100 * (Y[:, k] / f_row - 1) if log else Y[:, k] - f_row, ".", **style)
        total = np.sqrt(sigma**2 + scatter**2)
        to_plot = (lambda v: 100 * v) if log else (lambda v: v)
        for ax, centre_line, edges in (
            (top, mean, lambda w: (mean * np.exp(-w), mean * np.exp(w)) if log else (mean - w, mean + w)),
            (bottom, 0 * mean, lambda w: (-to_plot(w), to_plot(w))),
        ):
            ax.fill_between(X_line[:, i], *edges(total), color="tab:blue", alpha=0.12, label="±σ with the scatter")
            ax.fill_between(X_line[:, i], *edges(sigma), color="tab:blue", alpha=0.4, label="±σ (the trend)")
            ax.plot(X_line[:, i], centre_line, color="tab:blue", lw=1.5, label="fit")
            ax.set(xscale="log" if inp.scale == "log" else "linear")
            ax.grid(True, which="both", alpha=0.3)
        top.set(yscale="log" if log else "linear", ylabel=f"{out.name} [{out.unit}]", title=f"{out.name}: fit and band")
        bottom.set(
            xlabel=f"{inp.name} [{inp.unit}]", ylabel="rows / fit - 1 [%]" if log else f"rows - fit [{out.unit}]"
        )
        top.legend(fontsize=7)
    held = ", ".join(f"{spec.input_names[j]}={centre[j]:.4g}" for j in others)
    return png(fig), f"the most influential input, {inp.name}" + (f", with {held}" if held else "")


def moody_chart(spec: Spec, model) -> bytes:
    """Friction factor against Re for several roughnesses: reference curves, surrogate dashed on top."""
    Re = np.logspace(np.log10(spec.inputs[0].min), np.log10(spec.inputs[0].max), 200)
    fig, ax = subplots(figsize=(7, 5))
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


def _more_plots(spec: Spec, model, runs, dataset, files: dict, plots: list) -> None:
    """The band of a noisy fit, and a reference's own chart (EXTRA_PLOTS)."""
    if spec.noisy and (checkpoint.run_dir(spec.name, runs) / "members.json").is_file():
        files["band.png"], how = band_plot(spec, model, runs, dataset)
        plots.append((f"Data, fit and ±σ band over {how}", "band.png"))
    if spec.reference.callable in EXTRA_PLOTS:
        file, title, fn = EXTRA_PLOTS[spec.reference.callable]
        files[file] = fn(spec, model)
        plots.append((title, file))


def render(
    spec: Spec, model, model_name: str, runs: Path | None = None, dataset: data_mod.Dataset | None = None
) -> dict[str, bytes]:
    """The report's files by name, rendered in memory: export renders them before it replaces anything."""
    dataset = dataset or data_mod.build(spec)
    files, plots = {}, []
    history = checkpoint.read_json(checkpoint.run_dir(spec.name, runs) / "history.json")
    if history:
        files["loss.png"] = loss_plot(history)
        plots.append(("Training loss", "loss.png"))
    files["parity.png"] = parity_plot(spec, model(dataset.x_holdout), dataset.y_holdout)
    plots.append(("Parity on held-out samples", "parity.png"))
    if dataset.x_grid is not None and len(spec.inputs) == 2 and len(dataset.x_grid) == spec.sampling.grid**2:
        g = spec.sampling.grid
        files["error_map.png"] = error_map(
            spec, dataset.x_grid, model(dataset.x_grid), dataset.y_grid, (g, g), note=" over the domain"
        )
        plots.append(("Error over the domain (verification grid)", "error_map.png"))
    elif len(spec.inputs) > 2 and spec.reference.callable and not spec.noisy:
        files["error_map.png"], how = error_slice(spec, model, model.card)
        plots.append((f"Error over {how}", "error_map.png"))
    for k, bound in enumerate(data_mod.bounds(spec) if spec.reference.callable else []):
        files[f"bound_{k}.png"] = boundary_errors(spec, model, bound)
        plots.append(
            (f"Error along the bound {bound['input']} = {bound['label']}, and just inside it", f"bound_{k}.png")
        )
    _more_plots(spec, model, runs, dataset, files, plots)

    card = model.card
    lines = [
        f"# {spec.name}",
        "",
        spec.description,
        "",
        f"Model: `{model_name}` ({card.architecture.parameters} parameters, "
        f"{'-'.join(map(str, [len(spec.inputs), *spec.model.widths, len(spec.outputs)]))} "
        f"{spec.model.activation}); reference: `{card.reference}`.",
        "",
        "| input | unit | range | scale |",
        "|---|---|---|---|",
        *(f"| {i.name} | {i.unit} | {i.min:g} – {i.max:g} | {i.scale} |" for i in spec.inputs),
        "",
        "| set | output | metric | gate | achieved (onnxruntime) |",
        "|---|---|---|---:|---:|",
    ]
    for set_name, outputs in card.achieved.items():
        for out, metrics in outputs.items():
            lines += [
                f"| {set_name} | {out} | {m} | {spec.gates.get(m, spec.derivatives.gate):.3g} | {v:.3g} |"
                for m, v in metrics.items()
            ]
    if card.verification.get("plan"):
        lines += ["", describe_plan(card.verification) + "."]
    if card.noise:
        lines += ["", *(f"- {line}" for line in describe_noise(card.noise))]
    if card.derivatives:
        slopes = card.derivatives
        gate_text = f" (gate {slopes['gate']:g})" if slopes.get("gate") else ""
        lines += [
            "",
            f"Slopes on {slopes['points']:,} points: the largest |dS/dx - dR/dx| as a share of the rms "
            f"of dR/dx"
            f"{gate_text}:",
            "",
            "| output | " + " | ".join(f"d/d{i.name}" for i in spec.inputs) + " |",
            "|---|" + "---:|" * len(spec.inputs),
            *(
                f"| {o}{' (reported, not gated)' if o in slopes.get('report_only', []) else ''} | "
                + " | ".join(f"{e[i.name]:.3g}" for i in spec.inputs)
                + " |"
                for o, e in slopes["errors"].items()
            ),
        ]
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
    """Write the report folder beside model_path; returns the folder. The model must have been exported from this
    very spec (the card's spec_sha256): a same-named spec with other ranges or gates would draw wrong plots under
    the card's pass."""
    model = load(model_path)
    if model.card.spec_sha256 != spec_mod.sha256(spec):
        where = f" ({spec.path})" if spec.path else ""
        raise PipelineError(
            f"{model_path}: exported from another spec than {spec.name}'s{where} (spec_sha256 "
            f"{str(model.card.spec_sha256)[:12]}…, this spec {spec_mod.sha256(spec)[:12]}…); export it again from "
            f"this spec, or report with the spec it was exported from"
        )
    files = render(spec, model, model_path.name, runs, dataset)
    return write_files(model_path.with_name(f"{spec.name}_report"), files)
