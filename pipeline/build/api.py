"""The pipeline from Python: what `python -m pipeline` does, verb by verb, as functions (the command line is a thin
wrapper over them: it prints what they return and turns their exceptions into exit statuses).

    import pipeline

    spec = pipeline.spec(
        "bowl",
        inputs=[pipeline.Input("x", "1", 0.0, 1.0), pipeline.Input("y", "1", 0.0, 1.0)],
        outputs=[pipeline.Output("z", "1")],
        reference=lambda X: X[:, 0] ** 2 + X[:, 1] ** 2,  # or "module:function", a numpy array, a DataFrame, a CSV
        gates={"max_abs": 1e-3},
    )
    pipeline.train(spec)                  # runs/bowl/: checkpoint, history, metrics; the same progress bar
    report = pipeline.verify(spec)        # a GateReport: .passed, a table (repr), an HTML table in Jupyter
    model = pipeline.export(spec).load()  # runs/exported/bowl.onnx and its card, through the torch-free loader

Errors are exceptions with the one-line messages the command line prints (SpecError, PipelineError, LoaderError,
CardError: pipeline.errors); the exit statuses stay in the command line. Everything a run writes goes under `runs`
(default ./runs: the working directory's, a notebook's own folder), exported models under `out` (default
runs/exported: a notebook never replaces the checkout's committed exported/), never inside the package. Building a
spec imports no torch; the functions that train, verify or export import it when they run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CardError, LoaderError, PipelineError, SpecError  # noqa: F401 (the API's exceptions)
from ..runtime.files import atomic_write
from . import spec as spec_mod
from .spec import InputSpec as Input, OutputSpec as Output, Spec
from .verify import GateReport

RUNS_DIR = Path("runs")
"""where runs go unless `runs` says otherwise: relative to the working directory"""
PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""the installed package: nothing a run writes goes here"""


# --- specs ---------------------------------------------------------------------------------------------------------


def spec(
    name: str,
    inputs: list,
    outputs: list,
    reference: Any,
    gates: dict[str, float],
    *,
    description: str = "",
    domain: list[dict] | None = None,
    sampling: dict | None = None,
    model: dict | None = None,
    training: dict | None = None,
    verification: dict | None = None,
    derivatives: dict | None = None,
) -> Spec:
    """A spec built in code, checked exactly as a spec file is (the same one-line SpecError).

    inputs: Input(name, unit, min, max, scale="linear"), or the same as a dict or a tuple; outputs: Output(name,
    unit, transform="linear"), a dict or a tuple. reference: a function of X (N, n_inputs) -> (N, n_outputs) (a
    lambda or closure works; worker processes need one that pickles), "module:function", a numpy array of rows
    (inputs then outputs), an (X, Y) pair of arrays, a pandas DataFrame with the inputs' and outputs' columns, the
    path of a CSV file, or a dict: the [reference] table of a spec file whose callable or data may be any of these.
    The other keywords are the spec file's tables as dicts (docs/spec.md), e.g. training={"max_steps": 200}.
    """
    where = f"spec {name!r}"
    ref, function, table = _reference(reference, inputs, outputs, where)
    raw = {
        "name": name,
        "description": description,
        "inputs": [_fields(i, Input) for i in inputs] if isinstance(inputs, (list, tuple)) else inputs,
        "outputs": [_fields(o, Output) for o in outputs] if isinstance(outputs, (list, tuple)) else outputs,
        "reference": ref,
        "gates": gates,
    }
    sections = dict(
        domain=domain, sampling=sampling, model=model, training=training, verification=verification,
        derivatives=derivatives,
    )  # fmt: skip
    raw |= {key: value for key, value in sections.items() if value is not None}
    s = spec_mod.parse(_plain(raw), where=where)
    s.reference.function, s.reference.table = function, table
    return s


def load_spec(name_or_path: str | Path) -> Spec:
    """A shipped surrogate's spec by name (`surrogates()` lists them), or a spec file's."""
    return spec_mod.load(str(name_or_path))


def to_toml(spec: Spec) -> str:
    """The spec as the text of a spec file that load_spec reads back to the same spec; SpecError saying why when
    its reference has no name a file can hold (a lambda, a function of a notebook, rows held in memory)."""
    return spec_mod.to_toml(spec)


def save_spec(spec: Spec, path: str | Path) -> Path:
    """Write the spec file (to_toml) at `path`; returns the path. A CSV file the spec names is named relative to the
    new file's folder, as a spec file's data always is."""
    import os

    path = Path(path)
    if spec.reference.data and spec.reference.table is None:
        here = (spec.path.parent if spec.path else Path(".")) / spec.reference.data
        spec = dataclasses.replace(
            spec, reference=dataclasses.replace(spec.reference, data=os.path.relpath(here, path.parent))
        )
    atomic_write(_writable(path), to_toml(spec).encode())
    return path


def surrogates() -> list[str]:
    """The names of the shipped surrogates (`python -m pipeline list`)."""
    return spec_mod.available()


def _fields(value, cls) -> dict:
    """An input or output given as the dataclass, a dict or a tuple, as its TOML table."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, tuple):
        return dict(zip([f.name for f in dataclasses.fields(cls)], value))
    return value


def _plain(value):
    """numpy scalars as Python numbers and tuples as lists: what a TOML file would have given."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _reference(reference, inputs, outputs, where: str) -> tuple[dict, Any, np.ndarray | None]:
    """([reference] table, the function, the rows) for whatever `reference` is (see spec())."""
    table = dict(reference) if isinstance(reference, dict) else {"reference": reference}
    given = table.pop("reference", None)
    if given is None:
        given = table.pop("callable", None) if "callable" in table else table.pop("data", None)
    if isinstance(given, Path) or (isinstance(given, str) and (given.endswith(".csv") or ":" not in given)):
        return table | {"data": str(given)}, None, None
    if isinstance(given, str):
        return table | {"callable": given}, None, None
    if callable(given) and not hasattr(given, "columns"):
        name = spec_mod.import_path(given)
        name = name or f"{getattr(given, '__module__', '?')}:{getattr(given, '__qualname__', type(given).__name__)}"
        return table | {"callable": name}, given, None
    rows, label = _rows(given, [_fields(i, Input) for i in inputs], [_fields(o, Output) for o in outputs], where)
    return table | {"data": label}, None, rows


def _rows(given, inputs: list, outputs: list, where: str) -> tuple[np.ndarray, str]:
    """Rows of inputs then outputs (float64) from an array, an (X, Y) pair or a DataFrame, and a label for messages
    and the card that changes with the values (a checkpoint of other rows is refused)."""
    names = [d.get("name") for d in inputs + outputs if isinstance(d, dict)]
    if hasattr(given, "columns") and hasattr(given, "to_numpy"):  # a pandas DataFrame, without importing pandas
        missing = [n for n in names if n not in given.columns]
        if missing:
            raise SpecError(
                f"{where}: reference.data: the DataFrame lacks column(s) {', '.join(map(str, missing))} "
                f"(has: {', '.join(map(str, given.columns))})"
            )
        kind = "DataFrame"
        try:
            values = given[names].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise SpecError(f"{where}: reference.data: the DataFrame's columns are not all numbers: {e}") from None
    else:
        kind = "array"
        try:
            parts = given if isinstance(given, tuple) and len(given) == 2 else (given,)
            parts = [np.asarray(p, dtype=np.float64) for p in parts]
            values = np.column_stack([p.reshape(len(p), -1) for p in parts]) if len(parts) == 2 else parts[0]
        except (TypeError, ValueError) as e:
            raise SpecError(
                f"{where}: reference must be a function, 'module:function', a CSV path, an array of numbers, an "
                f"(X, Y) pair or a DataFrame; got {type(given).__name__} ({str(e).splitlines()[0]})"
            ) from None
        if values.ndim != 2 or values.shape[1] != len(names):
            raise SpecError(
                f"{where}: reference.data: an array of shape (N, {len(names)}) is needed, columns "
                f"{', '.join(map(str, names))} (inputs then outputs); got shape {values.shape}"
            )
    digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:12]
    return values, f"<{kind} of {len(values)} rows, sha256 {digest}>"


def _as_spec(s: Spec | str | Path) -> Spec:
    return s if isinstance(s, Spec) else load_spec(s)


def _named(s: Spec | str | Path) -> str:
    """How a command names the spec: as it was given, or a spec object's file, or its name."""
    return str(s) if not isinstance(s, Spec) else str(s.path or s.name)


# --- folders -------------------------------------------------------------------------------------------------------


def _writable(folder: str | Path) -> Path:
    """`folder`, refused when it lies inside the installed package (a run never writes there)."""
    folder = Path(folder)
    if folder.resolve().is_relative_to(PACKAGE_DIR):
        raise PipelineError(
            f"{folder} is inside the pipeline package ({PACKAGE_DIR}); runs and exported models go to a folder of "
            f"yours: pass runs=..., out=... or dest=..."
        )
    return folder


def _runs(runs: str | Path | None) -> Path:
    return _writable(runs or RUNS_DIR)


def _out(runs: str | Path | None, out: str | Path | None) -> Path:
    """Exported models: `out`, else runs/exported (the command line passes exported/ explicitly)."""
    return _writable(out or _runs(runs) / "exported")


def _calls(runs: Path, cache: bool, progress: bool, workers: int, scheduler: str = "") -> None:
    """How the reference is called in this run: cached under runs/NAME/ unless cache=False, progress bars unless
    progress=False, in `workers` processes where it costs (0: one per core; calls.py), or on the Dask cluster whose
    scheduler address is `scheduler` (default: the spec's reference.scheduler, else this machine)."""
    from . import calls

    calls.configure(runs=runs, cache=cache, progress=progress, workers=workers, scheduler=scheduler)


# --- train, verify, export -----------------------------------------------------------------------------------------


@dataclass(repr=False)
class Training:
    """What `train` did: the training result, its checkpoint folder and, when the budget ended short of the gates,
    the held-out gate report."""

    spec: Spec
    result: Any
    """train.TrainResult: the Surrogate (result.model), steps, seconds, stop_reason, history, ..."""
    metrics: dict
    """what runs/NAME/metrics.json holds"""
    folder: Path
    """the run's folder: checkpoint.pt, history.json, metrics.json (and gates.json after verify)"""
    initial_samples: int = 0
    """training samples before refinement added any"""
    short: GateReport | None = None
    """the budget ended before the gates were met and the held-out samples fail them: their report, with the next
    step in its advice (verify decides otherwise)"""

    def __repr__(self) -> str:
        """The line `python -m pipeline train` prints."""
        r = self.result
        if r.noise:
            return "\n".join(
                [
                    f"{self.spec.name}: {r.steps} LM steps in {r.seconds:.2f} s ({r.stop_reason}); "
                    f"{r.train_samples} training rows; checkpoint in {self.folder}",
                    *_noise_lines(self.spec.name, r.noise),
                ]
            )
        added = r.train_samples - self.initial_samples
        return (
            f"{self.spec.name}: {r.steps} steps in {r.seconds:.2f} s on {r.device} ({r.stop_reason}); "
            f"{r.train_samples} samples{f' ({added} added where the error was largest)' if added else ''}; "
            f"checkpoint in {self.folder}"
        )


def _noise_lines(name: str, noise: dict) -> list[str]:
    """Per output of a noisy fit: the estimated scatter, the effective parameters and the members' widths."""
    lines = []
    for out, e in noise["estimates"].items():
        unit, scale = ("%", 100) if e["units"] == "relative" else (e["units"], 1)
        lines.append(
            f"{name}: {out}: estimated scatter {scale * e['scatter']:.3g} {unit} rms, "
            f"{e['effective_parameters']:.1f} effective parameters, members of {e['widths']} tanh units"
        )
    return lines


def train(
    spec: Spec | str | Path,
    runs: str | Path | None = None,
    *,
    device: str | None = None,
    progress: bool = True,
    cache: bool = True,
    workers: int = 0,
    scheduler: str = "",
) -> Training:
    """Sample the reference, train until the gates are met or the budget ends (the tqdm progress bar unless
    progress=False), and save the checkpoint in runs/NAME/. device: "cpu", "cuda" or "auto" (default: the spec's).
    Notes on dropped data rows and reference failures are printed, as the command line does."""
    spec, runs = _as_spec(spec), _runs(runs)  # a bad spec or folder is refused before torch is imported
    from . import checkpoint, data, train as train_mod

    _calls(runs, cache, progress, workers, scheduler)
    dataset = data.build(spec, verification=False)
    if dataset.dropped_rows:
        print(f'{spec.name}: dropped {dataset.dropped_rows} bad data row(s) (reference.bad_rows = "drop")')
    for what, (failed, asked) in dataset.failed.items():
        if failed:
            print(
                f"{spec.name}: the reference failed on {failed} of {asked} {what} points; excluded "
                f'(reference.on_error = "drop")'
            )
    result = train_mod.train(spec, dataset, device=device, progress=progress)
    if result.note:
        print(f"{spec.name}: {result.note}")
    metrics = train_mod.summary(spec, dataset, result)
    folder = checkpoint.run_dir(spec.name, runs)
    checkpoint.save(folder, spec, result.model, result.history, metrics)
    done = Training(spec, result, metrics, folder, len(dataset.x_train))
    if result.noise:  # judged by verify against the scatter it estimated, never on the held-out rows here
        from . import noisy

        noisy.save_members(folder, result.noise["members"])
        return done
    if result.stop_reason != "gates met":
        done.short = _short_of_gates(spec, folder, metrics)
    return done


def _short_of_gates(spec: Spec, folder: Path, metrics: dict) -> GateReport | None:
    """For a run that ended before its gates were met with margin: the held-out report of the float32 module that
    export ships, with the next step, when it fails; None when it passes (verify then decides)."""
    import torch

    from . import checkpoint, data
    from .verify import gate_report, next_step

    module = checkpoint.load(folder, spec).export_model()
    held_out = data.build(spec, verification=False)
    with torch.no_grad():
        report = gate_report(
            spec,
            lambda X: module(torch.as_tensor(X, dtype=torch.float32)).numpy(),
            {"holdout": (held_out.x_holdout, held_out.y_holdout)},
        )
    if report.passed:
        return None
    report.advice = next_step(spec, report, metrics)
    return report


def verify(
    spec: Spec | str | Path,
    runs: str | Path | None = None,
    *,
    progress: bool = True,
    cache: bool = True,
    workers: int = 0,
    scheduler: str = "",
) -> GateReport:
    """Check every gate of the trained surrogate in runs/NAME/ over its whole domain (held-out samples, and the grid
    or the sample-and-search), on the float32 module export ships; writes runs/NAME/gates.json. The report's
    .passed says whether all pass; a failing one carries the next step to try in .advice."""
    import torch

    from . import checkpoint, data, derivatives
    from .verify import next_step, verify as verify_plan

    spec, runs = _as_spec(spec), _runs(runs)
    _calls(runs, cache, progress, workers, scheduler)
    folder = checkpoint.run_dir(spec.name, runs)
    # Verify the float32 module that export will ship, not the float64 training model.
    surrogate = checkpoint.load(folder, spec)
    module = surrogate.export_model()
    predict = lambda X: module(torch.as_tensor(X, dtype=torch.float32)).detach().numpy()  # noqa: E731
    exact = spec.reference.callable and not spec.noisy  # a noisy reference's slopes scatter: not compared
    slopes = (lambda X: derivatives.report(spec, surrogate, module, X)) if exact else None
    metrics = checkpoint.read_json(folder / "metrics.json") or {}
    if spec.noisy and "noise" not in metrics:
        raise PipelineError(f"{folder} holds no noisy fit of {spec.name}: train it again")
    with torch.no_grad():
        report = verify_plan(spec, predict, data.build(spec), slopes, metrics.get("noise"))
    checkpoint.write_json(folder / "gates.json", report.to_dict())
    if not report.passed:
        report.advice = next_step(spec, report, metrics)
    return report


def gate(spec: Spec | str | Path, runs: str | Path | None = None, **options) -> GateReport:
    """Train from scratch with the spec's seeds, then verify (the CI gate): train()'s options, verify's report."""
    train(spec, runs, **options)
    return verify(spec, runs, **{k: v for k, v in options.items() if k != "device"})


@dataclass
class Exported:
    """What `export` wrote (or kept: a retrained model that reproduces the exported one within rounding)."""

    path: Path
    """the .onnx file; the card NAME.json and the report folder NAME_report/ are beside it"""
    card: Any
    """the model card (pipeline.card.Card) with the file's sha256"""
    written: bool
    """False when the exported model already was this one within rounding and stayed as it was"""

    @property
    def report(self) -> Path:
        return self.path.with_name(self.path.stem + "_report")

    def load(self, **options):
        """The exported model through the torch-free loader (pipeline.load's options)."""
        return load(self.path, **options)


def export(
    spec: Spec | str | Path,
    runs: str | Path | None = None,
    out: str | Path | None = None,
    *,
    report: bool = True,
    progress: bool = True,
    cache: bool = True,
    workers: int = 0,
    scheduler: str = "",
) -> Exported:
    """Export the trained surrogate in runs/NAME/ to out/NAME.onnx and NAME.json (default out: runs/exported),
    after onnx.checker, parity between PyTorch, onnxruntime and onnx.reference, and the gates on the exported file;
    with report=True, the plots and summary in NAME_report/ beside it. A model failing any check replaces nothing
    (PipelineError with the gate table)."""
    from . import data, export as export_mod

    spec, runs = _as_spec(spec), _runs(runs)
    _calls(runs, cache, progress, workers, scheduler)
    dataset = data.build(spec)  # once: export and the report both need it
    path, card, written = export_mod.export(spec, runs, _out(runs, out), dataset, with_report=report)
    return Exported(path, card, written)


def load(path: str | Path | bytes, backend: str = "onnxruntime", **options):
    """An exported model, its integrity checked (pipeline.loader.load: numpy and onnxruntime, no torch)."""
    from ..runtime import loader

    return loader.load(path, backend, **options)


# --- after export --------------------------------------------------------------------------------------------------


def _exported(given: Spec | str | Path, runs, out) -> tuple[Spec, Path]:
    """The spec and its exported model's path, which must exist."""
    spec = _as_spec(given)
    path = _out(runs, out) / f"{spec.name}.onnx"
    if not path.is_file():
        raise PipelineError(f"no exported model at {path}: run `python -m pipeline export {_named(given)}`")
    return spec, path


def report(spec: Spec | str | Path, runs: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Write the report (plots and summary) beside out/NAME.onnx again; returns its folder."""
    from . import report as report_mod

    spec, path = _exported(spec, runs, out)
    return report_mod.write(spec, path, _runs(runs))


def generate_code(
    spec: Spec | str | Path,
    lang: str,
    dest: str | Path = "generated",
    precision: str = "float",
    out: str | Path | None = None,
    runs: str | Path | None = None,
) -> list[Path]:
    """C99 ("c") or Fortran 2008 ("fortran") source of out/NAME.onnx, in dest/; returns the files written."""
    from ..codegen import generate

    spec, path = _exported(spec, runs, out)
    return list(generate(path, lang, _writable(dest), precision, expected_name=spec.name))


def fmu(
    spec: Spec | str | Path, dest: str | Path = "runs/fmu", out: str | Path | None = None, runs=None
) -> tuple[Path, str]:
    """An FMI 2.0 FMU (co-simulation and model exchange) of out/NAME.onnx in dest/: (its path, what it holds)."""
    from ..codegen import fmu as fmu_mod, read_graph

    _, path = _exported(spec, runs, out)
    written = fmu_mod.build(path, _writable(dest))
    card = read_graph(path).card
    return written, f"FMI 2.0 co-simulation and model exchange, {fmu_mod.platform_dir()[0]}; {fmu_mod.summary(card)}"


def search(
    spec: Spec | str | Path,
    trials: int = 30,
    *,
    workers: int = 1,
    storage: str | None = None,
    seed: int | None = None,
    heartbeat: int = 10,
    trial_seconds: float = 60.0,
    apply: bool = False,
    progress: bool = True,
) -> dict:
    """Optuna search for the cheapest network that passes the gates (runs/search/NAME/); with apply=True, the spec
    file is rewritten when a cheaper network passes. Returns search.report's summary with "current_flops" (the
    spec's network) and "applied". Needs a spec file: the search's workers and apply read and write it."""
    import json

    from . import search as search_mod

    given, spec = spec, _as_spec(spec)
    if spec.path is None:
        raise PipelineError(f"search {spec.name}: needs a spec file (its workers read it): save_spec(spec, path) first")
    study = search_mod.run(_named(given), trials, workers, storage, seed, heartbeat, trial_seconds, progress)
    summary = search_mod.report(study, spec)
    summary["current_flops"] = search_mod.flops_per_sample(spec.model.widths, len(spec.inputs), len(spec.outputs))
    best, summary["applied"] = summary["cheapest_passing"], False
    if apply and best and best["flops"] < summary["current_flops"]:
        atomic_write(spec.path, search_mod.apply(spec, best).encode())
        record = {
            "surrogate": spec.name,
            "gates": spec.gates,
            "before": summary["before"],
            "after": best,
            "completed_trials": summary["completed_trials"],
        }
        atomic_write(search_mod.SEARCH_DIR / spec.name / "applied.json", (json.dumps(record, indent=1) + "\n").encode())
        summary["applied"] = True
    return summary
