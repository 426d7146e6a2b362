"""Checkpoint -> ONNX model + model card, checked before anything is replaced.

The exported graph takes `x` of shape [batch, n_inputs] in physical units and returns `y` of shape
[batch, n_outputs] in physical units: log transforms and scaling are inside the graph (scaling folded into the
first and last Gemm, see model.ExportModel). One file, no external data, opset 18, float32, dynamic batch axis.

Before the files are replaced, export checks, and fails loudly otherwise:
  1. `onnx.checker.check_model(full_check=True)`;
  2. parity: PyTorch (the float32 module that was exported) vs onnxruntime vs `onnx.reference`, on random and
     grid inputs, within |a - b| <= PARITY_RTOL * |b| + PARITY_ATOL * max|y| per output. The tolerance is a few
     float32 ulps carried through the layers: runtimes differ in summation order and in their tanh/exp kernels;
  3. the gates, recomputed from onnxruntime's outputs with the full verification plan (held-out samples, and the
     grid or the sample-and-search of verify.py), so the card reports the accuracy of the file that ships. A model that fails them never replaces an exported one.

The card (NAME.json) is also stored in the model's metadata_props under "surrogate_card"; the file copy adds the
sha256 of the .onnx (which cannot contain its own hash). The model carries a digest of itself as its last metadata
entry, checked at every load (loader.verify_integrity); model, card file and report are written only after every
check and rendering has passed, the report first (see write_model). Nothing in either depends on the time or the
folder the export ran in, so the same checkpoint gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import onnx.reference
import torch

from ..errors import PipelineError
from ..runtime.card import Architecture, Card, Domain, Input, OnnxInterface, Output
from ..runtime.files import EXPORTED_DIR, replace_model
from ..runtime.loader import CARD_KEY, Model, make_session, seal
from . import checkpoint, data as data_mod, derivatives, report as report_mod, spec as spec_mod
from .model import ExportModel, flops_per_sample, parameter_count
from .spec import Spec
from .verify import verify

OPSET = 18
PARITY_RTOL = 1e-5
PARITY_ATOL = 1e-6


def to_onnx(model: ExportModel, n_inputs: int) -> onnx.ModelProto:
    """Export with the dynamo exporter; a batch of 2 in the example keeps the batch axis dynamic."""
    example = torch.ones(2, n_inputs)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["x"],
            output_names=["y"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            optimize=True,
            verbose=False,
            report=False,
        )
    proto = program.model_proto
    # The exporter records stack traces (with this checkout's paths) per node; drop them for reproducible bytes.
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto


def parity(name: str, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Check every runtime's outputs against PyTorch's; returns the largest differences."""
    base = outputs["torch"]
    scale = np.max(np.abs(base), axis=0)
    report = {}
    for runtime, y in outputs.items():
        if runtime == "torch":
            continue
        diff = np.abs(y.astype(np.float64) - base)
        allowed = PARITY_RTOL * np.abs(base) + PARITY_ATOL * scale
        if not np.all(diff <= allowed):
            k = int(np.argmax(diff - allowed)) // base.shape[1]
            raise PipelineError(
                f"{name}: {runtime} and PyTorch disagree beyond tolerance (rtol {PARITY_RTOL}, "
                f"atol {PARITY_ATOL} x max|y|): {y[k].tolist()} vs {base[k].tolist()} at row {k}"
            )
        report[f"max_abs_diff_{runtime}_vs_torch"] = float(diff.max())
    return report


def build_card(spec: Spec, report, parity_report: dict, metrics: dict) -> Card:
    widths, n_in, n_out = spec.model.widths, len(spec.inputs), len(spec.outputs)
    return Card(
        name=spec.name,
        description=spec.description,
        inputs=[Input(i.name, i.unit, i.min, i.max, i.scale) for i in spec.inputs],
        outputs=[Output(o.name, o.unit, o.transform) for o in spec.outputs],
        onnx=OnnxInterface(
            opset=OPSET,
            dtype="float32",
            input="x",
            output="y",
            input_shape=["batch", n_in],
            output_shape=["batch", n_out],
        ),
        architecture=Architecture(
            widths=widths,
            activation=spec.model.activation,
            parameters=parameter_count(widths, n_in, n_out),
            flops_per_sample=flops_per_sample(widths, n_in, n_out),
        ),
        reference=spec.reference.callable or spec.reference.data,
        domain=Domain(bounds=data_mod.bounds(spec)),
        training={
            k: metrics.get(k)
            for k in (
                "trainer",
                "steps",
                "stop_reason",
                "initial_samples",
                "train_samples",
                "refinement_rounds",
                "dropped_rows",
                "reference_failures",
            )
        }
        | {"seed": spec.training.seed, "sampling_seed": spec.sampling.seed},
        gates=spec.gates,
        achieved=report.achieved(),
        gates_passed=report.passed,
        verification={k: v for k, v in report.plan.items() if k not in ("derivatives", "noise")}
        | {"worst": report.worst()},
        derivatives=report.plan.get("derivatives"),
        parity={"rtol": PARITY_RTOL, "atol_fraction_of_max": PARITY_ATOL} | parity_report,
        spec_sha256=spec_mod.sha256(spec),
        versions={p: version(p) for p in ("torch", "onnx", "onnxruntime", "onnxscript", "numpy")}
        | {"python": platform.python_version()},
        noise=report.plan.get("noise"),
    )


def export(
    spec: Spec,
    runs: Path | None = None,
    out_dir: Path | None = None,
    data: data_mod.Dataset | None = None,
    with_report: bool = True,
) -> tuple[Path, Card, bool]:
    """Export a trained surrogate to out_dir/NAME.onnx, NAME.json and the report folder NAME_report/; returns the
    model path, its card (with onnx_sha256) and whether anything was written (False: the exported model already
    was this one within rounding, see reproduces_exported).

    `data` is the spec's dataset when the caller has it already (building it evaluates the reference on the grid).
    """
    out_dir = Path(out_dir or EXPORTED_DIR)
    folder = checkpoint.run_dir(spec.name, runs)
    surrogate = checkpoint.load(folder, spec)
    metrics = checkpoint.read_json(folder / "metrics.json") or {}
    if spec.noisy and "noise" not in metrics:  # its gates need the scatter the fit estimated
        raise PipelineError(f"{folder} holds no noisy fit of {spec.name}: train it again")
    module = surrogate.export_model()
    proto = to_onnx(module, len(spec.inputs))
    proto.graph.doc_string = spec.description
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as e:
        raise PipelineError(f"{spec.name}: onnx.checker rejects the exported graph: {str(e).splitlines()[0]}") from None
    if any(o.domain not in ("", "ai.onnx") or o.version > OPSET for o in proto.opset_import):
        raise PipelineError(f"{spec.name}: exported graph uses opsets {proto.opset_import} beyond ai.onnx {OPSET}")

    data = data or data_mod.build(spec)
    session = make_session(proto.SerializeToString())
    run_ort = lambda X: session.run(["y"], {"x": X.astype(np.float32)})[0]  # noqa: E731

    # Parity on random in-domain points and on the verification grid or sample (or the held-out rows for data).
    cover = data.x_grid if data.x_grid is not None else data.x_domain if data.x_domain is not None else data.x_holdout
    X = np.concatenate([data_mod.sample(spec, 1000, "uniform", seed=12345), cover]).astype(np.float32)
    with torch.no_grad():
        y_torch = module(torch.from_numpy(X)).numpy().astype(np.float64)
    y_ref_runtime = onnx.reference.ReferenceEvaluator(proto).run(None, {"x": X})[0]
    parity_report = parity(spec.name, {"torch": y_torch, "onnxruntime": run_ort(X), "onnx.reference": y_ref_runtime})

    slopes = (lambda X: derivatives.report(spec, surrogate, module, X)) if spec.reference.callable else None
    report = verify(spec, run_ort, data, None if spec.noisy else slopes, metrics.get("noise"))
    if not report.passed:
        raise PipelineError(
            f"{spec.name}: the exported model fails its gates; {out_dir / spec.name}.onnx left "
            f"unchanged\n{report.table()}"
        )
    card = build_card(spec, report, parity_report, metrics)
    kept = reproduces_exported(spec, out_dir, card, run_ort, X)
    if kept is not None:
        return kept
    return (*write_model(spec, proto, card, out_dir, runs, data if with_report else None), True)


REPRODUCE_RTOL = PARITY_RTOL
"""a retrained model whose outputs are within this of the exported one's (relative, plus PARITY_ATOL x max|y|) on
the parity points is the same model: rounding, not training (float32 weights differ in the last bit between CPUs
that dispatch other kernels). The committed bytes then stay, and the checkout stays clean."""


def reproduces_exported(
    spec: Spec, out_dir: Path, card: Card, run_ort, X: np.ndarray
) -> tuple[Path, Card, bool] | None:
    """The exported model and its card when they already hold this spec's model within rounding, else None.

    Same spec (its sha256 in the card), same gates passed, same architecture, and every output within
    REPRODUCE_RTOL of the retrained model's on X. Anything unreadable counts as "not the same": export writes.
    """
    path = out_dir / f"{spec.name}.onnx"
    try:
        old = Model(path)
    except (OSError, ValueError):
        return None
    same_kind = (
        old.card.spec_sha256 == card.spec_sha256
        and old.card.gates_passed
        and old.card.architecture == card.architecture
        and old.card.versions == card.versions
    )
    if not same_kind:
        return None
    y_new = run_ort(X).astype(np.float64)
    y_old = old.session.run(["y"], {"x": X.astype(np.float32)})[0].astype(np.float64)
    tol = REPRODUCE_RTOL * np.abs(y_new) + PARITY_ATOL * np.abs(y_new).max(axis=0)
    if not (np.abs(y_old - y_new) <= tol).all():
        return None
    worst = float(np.max(np.abs(y_old - y_new) / np.maximum(np.abs(y_new), np.finfo(np.float32).tiny)))
    print(
        f"{spec.name}: the retrained model reproduces {path} within rounding (largest relative difference "
        f"{worst:.2g} on {len(X):,} points, tolerance {REPRODUCE_RTOL:g}): the committed files stay as they are"
    )
    return path, dataclasses.replace(old.card, onnx_sha256=hashlib.sha256(path.read_bytes()).hexdigest()), False


def write_model(
    spec: Spec, proto: onnx.ModelProto, card: Card, out_dir: Path, runs: Path | None, data: data_mod.Dataset | None
) -> tuple[Path, Card]:
    """Seal the model with its card and digest, render the report (unless data is None), then write them.

    Everything that can fail on the model's side runs first, and the report is written before the model: a folder
    that cannot be written stops the export with the exported model untouched. Then files.replace_model replaces
    the model and its card file so that no reader meets a mixed pair.
    """
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card.to_dict(), sort_keys=True)
    blob = seal(proto.SerializeToString())
    # The digest entry must stay the last field when the model is re-serialized (see loader's docstring).
    if onnx.load_from_string(blob).SerializeToString() != blob:
        raise PipelineError(f"{spec.name}: the sealed model does not re-serialize to the same bytes")
    card_file = dataclasses.replace(card, onnx_sha256=hashlib.sha256(blob).hexdigest())
    model_path = out_dir / f"{spec.name}.onnx"
    if data is not None:
        model = Model(blob)  # the report describes the sealed bytes, checked like any load
        report_mod.write_files(
            model_path.with_name(f"{spec.name}_report"), report_mod.render(spec, model, model_path.name, runs, data)
        )
    replace_model(model_path, blob, (json.dumps(card_file.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    return model_path, card_file
