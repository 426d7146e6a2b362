"""The surrogate spec: one TOML file says everything a run needs.

A spec names the inputs (with units, ranges and scales), the outputs, where the truth comes from (a Python
callable or a CSV file), how to sample it, the network, the training budget and the accuracy gates. This module
reads a spec into plain dataclasses and rejects anything malformed or inconsistent with a one-line error that
names the field. Nothing else in the pipeline reads TOML.

Shipped specs live in `pipeline/specs/NAME.toml`; a path to any `.toml` file works too.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PipelineError, SpecError  # noqa: F401 (PipelineError: spec.PipelineError stays importable)
from ..runtime.files import shadowed_header
from .trainer_options import OPTIONS, LMOptions

SPEC_VERSION = 1
SPECS_DIR = Path(__file__).parent.parent / "specs"
GATE_METRICS = ("rmse", "max_abs", "max_rel", "mean_rel", "rms_scatter")
"""rms_scatter (noisy references only): the held-out rms error over the estimated scatter, in the units the
network learns (relative where the output is log-transformed); about 1 for a fit as good as the data allow"""
ACTIVATIONS = ("tanh", "silu", "relu")
"""model.activation: the names model.ACTIVATIONS implements (tests/test_spec.py checks that the two agree). Named
here, without torch, so that reading a spec (list, codegen, fmu) never loads torch."""


@dataclass
class InputSpec:
    """One input of the surrogate: its name, unit, valid range and scale ([[inputs]] in a spec file)."""

    name: str
    """column name; also the order of the columns of the exported model's input `x`"""
    unit: str
    """physical unit, e.g. "K", "Pa", "1" for dimensionless"""
    min: float
    """lowest value of the valid range (inclusive)"""
    max: float
    """highest value of the valid range (inclusive)"""
    scale: str = "linear"
    """"linear" or "log": how the input is sampled and fed to the network"""


@dataclass
class OutputSpec:
    """One output of the surrogate: its name, unit and what the network learns of it ([[outputs]])."""

    name: str
    """column name; also the order of the columns of the exported model's output `y`"""
    unit: str
    """physical unit"""
    transform: str = "linear"
    """"linear" or "log": what the network learns (log turns relative error into absolute error)"""


@dataclass
class ReferenceSpec:
    callable: str = ""
    """"package.module:function" returning the outputs for an (N, n_inputs) array (or per sample, see vectorized)"""
    vectorized: bool = True
    """true: f(X) with X of shape (N, n_inputs) returns (N, n_outputs) or (N,); false: f(*row) per sample"""
    data: str = ""
    """CSV file (relative to the spec file) whose columns include every input and output, instead of a callable"""
    bad_rows: str = "error"
    """for data: "error" stops on a non-finite or out-of-range row; "drop" drops them and reports the count"""
    on_error: str = "error"
    """for a callable: "error" stops (exit 2) when it raises or returns NaN/inf for some inputs, naming them;
    "drop" excludes those points from training and verification and counts them in the card"""
    timeout: float = 0.0
    """for a callable: seconds one evaluation may take (a vectorized call of k rows: k times that); a call past it
    is that point's failure, handled by on_error, and is not cached. 0: no limit"""
    function: Any = field(default=None, repr=False, compare=False, metadata={"code_only": True})
    """not a TOML key: the Python function itself, for a spec built in code with one (api.spec); `callable` then
    holds its name, "module:qualname", for messages"""
    table: Any = field(default=None, repr=False, compare=False, metadata={"code_only": True})
    """not a TOML key: the rows themselves (inputs then outputs, float64), for a spec built in code with an array or
    a DataFrame; `data` then describes them"""
    scheduler: str = ""
    """for a callable: address of a Dask scheduler ("tcp://host:8786") whose workers evaluate the costly batches;
    --scheduler overrides it. "": this machine's cores. Not part of the spec's digest: where the calls run changes
    no value"""
    noisy: bool | None = None
    """the values scatter about an underlying trend (measurements, a stochastic simulation): the fit's complexity
    is then chosen from the data (Bayesian regularisation, [noise]), and only held-out rows are gated. Unset: true
    for data, false for a callable"""


@dataclass
class DomainBound:
    """One input bounded by a function of another: the domain is the box cut by every such bound."""

    input: str
    """the bounded input"""
    of: str
    """the input the bound depends on (itself bounded only by its box)"""
    label: str
    """the bound in words, for messages, e.g. "T_sat(p) - 2 K" """
    max: str = ""
    """"package.module:function" giving the upper bound of `input` for an array of `of` values"""
    min: str = ""
    """the same for a lower bound (give exactly one of max and min)"""
    tolerance: float = 0.0
    """largest allowed deviation of the tabulated bound from the function, in the input's unit; 0: 1e-5 x its range"""


@dataclass
class SamplingSpec:
    count: int = 0
    """training samples drawn from the reference before adaptive refinement; 0: sized from the network (see
    resolve_defaults). Ignored for data, which uses its own rows"""
    method: str = "sobol"
    """"sobol" (scrambled, space-filling) or "uniform" random, in the scaled input space"""
    seed: int = 0
    """seed of the training and held-out samples"""
    boundary: float = -1.0
    """share of the training samples crowded towards the faces and corners (arcsine density along every axis), where
    a max-error gate is decided and where a uniform design leaves almost nothing in many dimensions; -1: 0.5 past
    2 inputs, 0 for 1-2 (whose faces a uniform design already covers)"""
    holdout: int = 0
    """held-out samples (for data: rows set aside, see holdout_fraction); 0: 1000 per input, at least 2000"""
    holdout_fraction: float = 0.2
    """for data only: fraction of the rows held out for verification"""
    grid: int = 0
    """points per input axis of the dense verification grid (edges and corners included); 0: 201 for 1-2 inputs,
    none past 2 inputs, where the sample-and-search plan of [verification] takes over"""


@dataclass
class VerificationSpec:
    """Past 2 inputs a grid goes blind between its points; verification then samples and searches instead."""

    points: int = 131072
    """low-discrepancy (Sobol) points over the whole domain"""
    face_points: int = 256
    """points on each of the 2 x n_inputs faces of the box"""
    edge_points: int = 8
    """points on each edge of the box (the 2^n_inputs corners are always included)"""
    searches: int = 8
    """bounded local searches for the worst point, per output and error kind, started from the worst sampled points"""
    search_evaluations: int = 0
    """reference evaluations per search; 0: 40 x (n_inputs + 1)"""
    budget: str = ""
    """for a costly callable past 2 inputs: what verification and the refiner's probe set may spend, "20000"
    (evaluations) or "300 s" / "5 min" (reference time, at the measured cost per evaluation); the Sobol counts
    (points, face_points, derivatives.points) shrink to powers of 2 until the plan fits. "": 5 minutes. A plan
    that fits already is the spec's, exactly (calls.budget)"""


@dataclass
class DerivativeSpec:
    """The surrogate's slopes against the reference's (see derivatives.py): reported in the card always."""

    gate: float = 0.0
    """largest |dS/dx - dR/dx| as a share of the rms of dR/dx, for every output x input; 0: reported, not gated"""
    fit: bool = False
    """train on the reference's slopes too: derivative residuals become extra LM rows"""
    weight: float = 1.0
    """fit only: weight of a slope error at its gate against a value error at its gate"""
    step: float = 1e-3
    """central-difference step of the reference, in the network's input space (each input mapped to [-1, 1])"""
    points: int = 16384
    """verification points for derivatives (the grid or domain sample, thinned)"""
    report_only: list[str] = field(default_factory=list)
    """outputs whose slopes are reported but neither gated nor fitted, e.g. where the reference itself has a kink
    (say why and show the measurement in a comment)"""


@dataclass
class ModelSpec:
    widths: list[int] = field(default_factory=list)
    """hidden layer widths; empty: two layers sized from the inputs and outputs (see resolve_defaults)"""
    activation: str = "tanh"
    """"tanh", "silu" or "relu" (tanh: smooth and cheap in generated code)"""


@dataclass
class TrainingSpec:
    """The [training] keys every trainer shares; the chosen trainer's own keys (lr, lm_memory_gb, ...) sit in the
    same table and are read into `options` (trainer_options.py)."""

    trainer: str = "lm"
    """"lm" (Levenberg-Marquardt, for small nets: converges to far lower error) or "adam" (minibatch Adam); any name
    in trainer_options.OPTIONS"""
    max_steps: int = 0
    """budget in optimizer steps; 0: the trainer's default_steps (2000 for LM, whose steps are full-batch; 20000 for
    Adam)"""
    max_seconds: float = 0.0
    """budget in wall seconds, a safety cap (a run cut by it is not bit-reproducible); 0: 120 + 120 per input"""
    seed: int = 0
    """seed of the weight initialization"""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"""
    check_every: int = 5
    """steps between checks of the gates on the held-out samples"""
    stop_margin: float = 0.25
    """stop once every held-out metric is below margin x its threshold, leaving room for float32 and the grid"""
    refine_rounds: int = 8
    """adaptive sampling: rounds of adding reference samples where the error is largest, while a gate fails"""
    refine_every: int = 200
    """steps between refinement checks while the held-out gates still fail (a round also ends when they pass)"""
    refine_margin: float = 0.5
    """refinement goes on until the worst error found by the training-time search is below margin x threshold"""
    threads: int = 0
    """CPU threads of an LM run (0: one per core, cores.training_threads): they build its normal equations block
    by block, and the blocks are fixed, so the bytes are the same whatever this is (Adam runs on one thread)"""
    options: Any = field(default_factory=LMOptions)
    """the chosen trainer's options (not a TOML key: its fields are keys of [training] itself)"""


@dataclass
class NoiseSpec:
    """How a noisy reference is fitted (noisy.py): networks fitted by Bayesian-regularised LM, ranked by their
    evidence, the best averaged into the one exported network."""

    widths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6])
    """tanh units of the candidate networks (one hidden layer, beside a linear path); the evidence picks among them"""
    restarts: int = 6
    """random starts per candidate width"""
    members: int = 5
    """best fits (by evidence, per output) averaged into the exported network (over 16 data sets of the probe in
    docs/noisy-data.md, 5 of 30 fits came 4 % closer to the trend than 3 of 20, none of them 1 % rms or more off)"""
    max_steps: int = 300
    """LM steps per fit (a fit also ends when no step lowers its objective)"""
    folds: int = 5
    """cross-validation folds of the training rows behind the estimated error against the trend; 0: none"""


@dataclass
class Spec:
    """Everything a run needs, read from a spec file (load) or built in code (api.spec), checked the same way."""

    name: str
    """surrogate name: the file names of its checkpoint, model and card"""
    description: str
    """one line for `python -m pipeline list` and the card"""
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    reference: ReferenceSpec
    gates: dict[str, float]
    """metric -> threshold, applied to every output on the held-out samples and the grid"""
    domain: list[DomainBound] = field(default_factory=list)
    """bounds that cut the box of the inputs' ranges ([[domain]] tables); empty: the box"""
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    verification: VerificationSpec = field(default_factory=VerificationSpec)
    derivatives: DerivativeSpec = field(default_factory=DerivativeSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    """[noise]: how a noisy reference is fitted (reference.noisy)"""
    spec_version: int = SPEC_VERSION
    """format version of this file"""
    path: Path | None = None
    """where the spec was read from (not a TOML key)"""

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def to_dict(self) -> dict:
        """The spec as plain data, [training] flat as in the TOML (what the card's spec_sha256 and a checkpoint's
        spec record)."""
        # The reference's function and rows are not data of the spec (to_toml says why they cannot be written).
        plain = dataclasses.replace(self, reference=dataclasses.replace(self.reference, function=None, table=None))
        d = dataclasses.asdict(plain)
        d.pop("path")
        for key in CODE_ONLY:
            d["reference"].pop(key)
        d["training"].update(d["training"].pop("options"))
        for section, key, default in ADDED_LATER:  # at their defaults: the digest of older specs stays the same
            if d[section].get(key) == default:
                d[section].pop(key)
        d["reference"].pop("scheduler")  # where the calls run: the same values, the same model
        d["training"].pop("threads")  # how many cores build the same blocks: the same bytes
        if d["noise"] == dataclasses.asdict(NoiseSpec()):  # a section added later: the same, as a whole
            d.pop("noise")
        return d

    @property
    def noisy(self) -> bool:
        """The reference scatters: reference.noisy, or by default a data file (measurements)."""
        return bool(self.reference.data) if self.reference.noisy is None else self.reference.noisy


CODE_ONLY = ("function", "table")
"""ReferenceSpec fields a spec built in code holds besides its TOML keys (metadata code_only)"""
ADDED_LATER = [("reference", "timeout", 0.0), ("reference", "noisy", None), ("verification", "budget", "")]
"""keys added after spec_version 1's first digests: left out of to_dict (and spec_sha256) while at their default"""


def sha256(spec: Spec) -> str:
    """The spec's digest as the card records it (spec_sha256): what a report or a reproduction checks against."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()


# --- writing a spec -----------------------------------------------------------------------------------------------

SECTIONS = {
    "reference": ReferenceSpec,
    "gates": None,
    "sampling": SamplingSpec,
    "model": ModelSpec,
    "training": TrainingSpec,
    "verification": VerificationSpec,
    "derivatives": DerivativeSpec,
}
"""the tables of a spec file, in the order to_toml writes them (after the [[inputs]], [[outputs]] and [[domain]])"""


def import_path(fn) -> str | None:
    """ "module:qualname" that imports `fn` itself, or None (a lambda, a closure, a nested function, __main__'s)."""
    import importlib

    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    try:
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - any failure to import it means it has no import path
        return None
    return f"{module}:{qualname}" if found is fn else None


def unwritable(spec: Spec) -> str:
    """Why the spec cannot be written as TOML, or "": a reference held in memory has no name a file can hold."""
    ref = spec.reference
    if ref.table is not None:
        return (
            f"its reference is rows held in memory ({ref.data}); a spec file names a CSV file: save them "
            f"(DataFrame.to_csv(path, index=False), or numpy.savetxt with a header line) and pass the file's path"
        )
    if ref.function is not None and import_path(ref.function) is None:
        return (
            f"its reference {ref.callable} has no import path (a lambda, a closure, or a function defined in a "
            f"notebook or script); define it at the top level of a module and pass it, or its 'module:function'"
        )
    return ""


def to_toml(spec: Spec) -> str:
    """The spec as a TOML file that `load` reads back to the same spec (the same to_dict, hence sha256): every key
    that differs from its default, the defaults that follow from the problem's size included. SpecError (one line)
    when the reference is held in memory (unwritable)."""
    problem = unwritable(spec)
    if problem:
        raise SpecError(f"spec {spec.name!r} cannot be written as TOML: {problem}")
    d = spec.to_dict()
    lines = [f"spec_version = {d['spec_version']}", f"name = {_toml(d['name'])}"]
    lines += [f"description = {_toml(d['description'])}"] if d["description"] else []
    for key in ("inputs", "outputs", "domain"):
        cls = {"inputs": InputSpec, "outputs": OutputSpec, "domain": DomainBound}[key]
        for table in d[key]:
            lines += ["", f"[[{key}]]", *_table_lines(table, cls)]
    for key, cls in SECTIONS.items():
        if key == "training":
            cls = (cls, OPTIONS[d["training"]["trainer"]])
        body = [f"{k} = {_toml(v)}" for k, v in d[key].items()] if cls is None else _table_lines(d[key], cls)
        lines += ["", f"[{key}]", *body] if body else []
    return "\n".join(lines) + "\n"


def _table_lines(table: dict, classes) -> list[str]:
    """`key = value` for each key of a table whose value is not its field's default."""
    defaults = {}
    for cls in classes if isinstance(classes, tuple) else (classes,):
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    return [f"{k} = {_toml(v)}" for k, v in table.items() if k not in defaults or defaults[k] != v]


def _toml(value) -> str:
    """A TOML value: the types a spec holds (str, bool, int, float, lists of them)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else "inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def available() -> list[str]:
    """Names of the shipped surrogates."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def spec_path(name_or_path: str) -> Path:
    """A shipped surrogate's spec file, or the given .toml path."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise SpecError(f"spec file not found: {name_or_path}")
        return path
    path = SPECS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise SpecError(f"unknown surrogate '{name_or_path}' (known: {', '.join(available())})")
    return path


def load(name_or_path: str) -> Spec:
    """Read and check a spec; raises SpecError naming the faulty field."""
    path = spec_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SpecError(
            f"{path.name}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); TOML files are UTF-8"
        ) from None
    except OSError as e:
        raise SpecError(f"{path.name}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path.name}: not valid TOML: {e}") from None
    spec = parse(raw, where=path.name)
    spec.path = path
    return spec


def parse(raw: dict, where: str = "spec") -> Spec:
    """Build a Spec from a TOML dict (the checks live here so tests can feed dicts)."""
    raw = dict(raw)
    version = raw.get("spec_version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise SpecError(f"{where}: spec_version {version} is not supported (this pipeline reads {SPEC_VERSION})")
    for key in ("name", "inputs", "outputs", "reference", "gates"):
        if key not in raw:
            raise SpecError(f"{where}: missing required key '{key}'")
    if not isinstance(raw["inputs"], list) or not raw["inputs"]:
        raise SpecError(f"{where}: inputs must be a non-empty list of [[inputs]] tables")
    if not isinstance(raw["outputs"], list) or not raw["outputs"]:
        raise SpecError(f"{where}: outputs must be a non-empty list of [[outputs]] tables")
    spec = Spec(
        name=_typed(raw, "name", str, where),
        description=_typed(raw, "description", str, where) if "description" in raw else "",
        inputs=[_build(InputSpec, d, f"{where}: inputs[{k}]") for k, d in enumerate(raw["inputs"])],
        outputs=[_build(OutputSpec, d, f"{where}: outputs[{k}]") for k, d in enumerate(raw["outputs"])],
        reference=_build(ReferenceSpec, raw["reference"], f"{where}: reference"),
        gates=_gates(raw["gates"], f"{where}: gates"),
        domain=[_build(DomainBound, d, f"{where}: domain[{k}]") for k, d in enumerate(_list(raw, "domain", where))],
        sampling=_build(SamplingSpec, raw.get("sampling", {}), f"{where}: sampling"),
        model=_build(ModelSpec, raw.get("model", {}), f"{where}: model"),
        training=_training(raw.get("training", {}), f"{where}: training"),
        verification=_build(VerificationSpec, raw.get("verification", {}), f"{where}: verification"),
        derivatives=_build(DerivativeSpec, raw.get("derivatives", {}), f"{where}: derivatives"),
        noise=_build(NoiseSpec, raw.get("noise", {}), f"{where}: noise"),
        spec_version=version,
    )
    known = {f.name for f in dataclasses.fields(Spec)} - {"path"}
    for key in raw:
        if key not in known:
            raise SpecError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(known))})")
    _check(spec, where)
    resolve_defaults(spec)
    _check_size(spec, where)
    return spec


def _list(raw: dict, key: str, where: str) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise SpecError(f"{where}: {key} must be a list of [[{key}]] tables")
    return value


# --- defaults that follow from the size of the problem ----------------------------------------------------------


def default_width(n_in: int, n_out: int) -> int:
    """Hidden width of the default two-layer network: grows with the inputs and outputs, capped where LM's
    P x P solve still takes well under a second (about 1,400 parameters at 8 inputs)."""
    return min(32, 8 + 4 * max(n_in, 2) + 2 * (n_out - 1))


def resolve_defaults(spec: Spec) -> Spec:
    """Replace every 0 / empty "auto" setting by the value that follows from the number of inputs and outputs.

    The resolved values are what the checkpoint and the card record, so a run is described by numbers, not by
    "auto". The reasoning, in short: LM needs several residuals per parameter (samples ~ 6 x parameters / outputs);
    a grid covers 1-2 inputs densely, past that the sample-and-search plan does; the time budget grows with the
    inputs because each LM step does.
    """
    d, m = len(spec.inputs), len(spec.outputs)
    if not spec.model.widths:
        spec.model.widths = [noisy_width(spec)] if spec.noisy else [default_width(d, m)] * 2
    s = spec.sampling
    if s.count == 0:
        s.count = int(min(16000, max(1000, 6 * _parameters(spec.model.widths, d, m) // m)))
    if s.holdout == 0:
        s.holdout = max(2000, 1000 * d)
    if s.boundary == -1:
        s.boundary = 0.5 if d > 2 else 0.0
    if s.grid == 0 and d <= 2 and not spec.noisy:  # scattered values are gated on held-out points only
        s.grid = 201
    t = spec.training
    if t.max_steps == 0:
        t.max_steps = t.options.default_steps
    if t.max_seconds == 0:
        t.max_seconds = 120.0 + 120.0 * d
    v = spec.verification
    if v.search_evaluations == 0:
        v.search_evaluations = 40 * (d + 1)
    return spec


def noisy_width(spec: Spec) -> int:
    """The one hidden layer that holds a noisy fit (noisy.py): the averaged members' tanh units for every output, at
    the widest candidate, and one near-linear unit per input for their linear paths; units left over are zero."""
    n = spec.noise
    return len(spec.outputs) * n.members * max(n.widths) + len(spec.inputs)


def noisy_plan(spec: Spec) -> tuple[int, list[int]]:
    """(members averaged per output, candidate widths) of a noisy fit: [noise]'s, or where the spec sets a smaller
    model.widths (a spec written for an exact fit), as many members and as wide as fit in its one layer."""
    n, d, m = spec.noise, len(spec.inputs), len(spec.outputs)
    room = (spec.model.widths[0] - d) // m if spec.model.widths else n.members * max(n.widths)
    members = max(1, min(n.members, room))
    return members, [w for w in n.widths if w <= room // members] or [room // members]


def _parameters(widths: list[int], n_in: int, n_out: int) -> int:
    sizes = [n_in, *widths, n_out]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


MAX_PARAMETERS = 5_000_000
"""a surrogate is a small network: past this, training on 2 cores would take days"""
MAX_DATA_GB = 4.0
"""memory for the sample arrays (training, held-out, verification) before anything is allocated"""


def _check_size(spec: Spec, where: str) -> None:
    """Refuse a spec whose arrays or network cannot fit, before anything is allocated."""
    d, m = len(spec.inputs), len(spec.outputs)
    p = _parameters(spec.model.widths, d, m)
    if p > MAX_PARAMETERS:
        raise SpecError(
            f"{where}: model.widths = {spec.model.widths} gives {p:,} parameters; "
            f"at most {MAX_PARAMETERS:,} (a surrogate is a small network)"
        )
    s, v = spec.sampling, spec.verification
    points = s.count + s.holdout + (s.grid**d if s.grid else v.points + 2 * d * v.face_points)
    gb = points * (d + m) * 8 / 1e9
    if gb > MAX_DATA_GB:
        raise SpecError(
            f"{where}: {points:,} samples over {d} inputs and {m} outputs need {gb:.3g} GB of arrays; "
            f"at most {MAX_DATA_GB:g} GB (lower sampling.count, sampling.grid or verification.points)"
        )


def _typed(raw: dict, key: str, typ: type, where: str):
    value = raw[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise SpecError(f"{where}.{key} must be {typ.__name__}, got {value!r}")
    return value


def _build(cls, raw, where: str):
    """Fill dataclass `cls` from a TOML table, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("code_only")}
    for key in raw:
        if key not in fields:
            raise SpecError(f"{where}: unknown key '{key}' (allowed: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(f"{where}: missing required key '{name}'")
            continue
        values[name] = _typed(raw, name, _toml_type(f), where)
    return cls(**values)


def _training(raw, where: str) -> TrainingSpec:
    """[training]: the keys every trainer shares (TrainingSpec), and the chosen trainer's own, built into its options
    dataclass (trainer_options.OPTIONS) and checked by it."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table")
    trainer = raw.get("trainer", TrainingSpec.trainer)
    _one_of(trainer, tuple(OPTIONS), f"{where}.trainer")
    shared = [f.name for f in dataclasses.fields(TrainingSpec) if f.name != "options"]
    own = [f.name for f in dataclasses.fields(OPTIONS[trainer])]
    for key in raw:
        if key in shared or key in own:
            continue
        others = [name for name, cls in OPTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}]
        if others:
            raise SpecError(
                f"{where}: {key} is an option of the {' and '.join(others)} trainer{'s' * (len(others) > 1)}, "
                f"not of {trainer!r} "
                f"(its options: {', '.join(own) or 'none'})"
            )
        raise SpecError(f"{where}: unknown key '{key}' (allowed: {', '.join(shared + own)})")
    training = _build(TrainingSpec, {k: v for k, v in raw.items() if k in shared}, where)
    training.options = _build(OPTIONS[trainer], {k: v for k, v in raw.items() if k in own}, where)
    problem = training.options.check()
    if problem:
        raise SpecError(f"{where}.{problem}")
    return training


def _toml_type(f: dataclasses.Field) -> type:
    """The type a TOML value of field `f` must have, whether its annotation is a string (a module with `from
    __future__ import annotations`, like this one) or the type itself (a trainer's options declared elsewhere)."""
    name = f.type if isinstance(f.type, str) else str(f.type) if hasattr(f.type, "__args__") else f.type.__name__
    return {
        "str": str,
        "float": float,
        "int": int,
        "bool": bool,
        "bool | None": bool,
        "list[int]": list,
        "list[str]": list,
    }[name]


def _gates(raw, where: str) -> dict[str, float]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where} must be a non-empty table of metric = threshold")
    gates = {}
    for metric, value in raw.items():
        if metric not in GATE_METRICS:
            raise SpecError(f"{where}: unknown metric '{metric}' (allowed: {', '.join(GATE_METRICS)})")
        value = _typed(raw, metric, float, where)
        if not value > 0 or not math.isfinite(value):
            raise SpecError(f"{where}.{metric} must be a positive finite threshold, got {value}")
        gates[metric] = value
    return gates


def _one_of(value, allowed, where: str):
    if value not in allowed:
        raise SpecError(f"{where} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


DEFAULT_BUDGET_SECONDS = 300.0
"""verification.budget when the spec leaves it empty: about 5 minutes of reference time"""


def parse_budget(text: str) -> tuple[float, str]:
    """verification.budget -> (amount, "evaluations" or "seconds"); "" -> the default seconds."""
    text = str(text).strip()
    if not text:
        return DEFAULT_BUDGET_SECONDS, "seconds"
    m = re.fullmatch(r"([0-9.eE+]+)\s*(s|sec|seconds|min|minutes|h|evaluations|evals)?", text)
    if not m:
        raise ValueError(text)
    value, unit = float(m.group(1)), m.group(2) or "evaluations"
    if unit in ("min", "minutes"):
        return value * 60, "seconds"
    if unit == "h":
        return value * 3600, "seconds"
    return value, "seconds" if unit.startswith("s") else "evaluations"


def _check(spec: Spec, where: str) -> None:
    """Consistency checks across fields, one group of keys after another."""
    for check in (
        _check_names_and_ranges,
        _check_reference_and_domain,
        _check_sampling,
        _check_verification_and_derivatives,
        _check_model_and_training,
    ):
        check(spec, where)


def _check_names_and_ranges(spec: Spec, where: str) -> None:
    """The name, the input and output names, the ranges and scales."""
    if not spec.name.isidentifier():
        raise SpecError(f"{where}: name must be an identifier (letters, digits, _), got {spec.name!r}")
    shadowed = shadowed_header(spec.name)
    if shadowed:
        raise SpecError(
            f"{where}: name {spec.name!r} would generate {shadowed}, which shadows the system header of that name "
            f"in every build that adds the generated folder with -I; choose another name"
        )
    names = spec.input_names + spec.output_names
    for n in names:
        if not n or names.count(n) > 1:
            raise SpecError(f"{where}: input/output name {n!r} is empty or used twice")
    for k, i in enumerate(spec.inputs):
        w = f"{where}: inputs[{k}] ({i.name})"
        if not (math.isfinite(i.min) and math.isfinite(i.max)):
            raise SpecError(f"{w}: min and max must be finite")
        if not i.min < i.max:
            raise SpecError(f"{w}: min ({i.min}) must be < max ({i.max})")
        _one_of(i.scale, ("linear", "log"), f"{w}.scale")
        if i.scale == "log" and i.min <= 0:
            raise SpecError(f"{w}: log scale needs a positive range, got min = {i.min}")
    for k, o in enumerate(spec.outputs):
        _one_of(o.transform, ("linear", "log"), f"{where}: outputs[{k}] ({o.name}).transform")


def _check_reference_and_domain(spec: Spec, where: str) -> None:
    """The reference and the [[domain]] bounds."""
    ref = spec.reference
    if bool(ref.callable) == bool(ref.data):
        raise SpecError(f"{where}: reference needs exactly one of 'callable' or 'data'")
    if ref.callable and ":" not in ref.callable:
        raise SpecError(f"{where}: reference.callable must look like 'package.module:function', got {ref.callable!r}")
    _one_of(ref.bad_rows, ("error", "drop"), f"{where}: reference.bad_rows")
    _one_of(ref.on_error, ("error", "drop"), f"{where}: reference.on_error")
    if not (ref.timeout >= 0 and math.isfinite(ref.timeout)):
        raise SpecError(f"{where}: reference.timeout must be >= 0 seconds (0: no limit), got {ref.timeout}")
    inputs = spec.input_names
    bounded = [b.input for b in spec.domain]
    for k, b in enumerate(spec.domain):
        w = f"{where}: domain[{k}]"
        for key in ("input", "of"):
            if getattr(b, key) not in inputs:
                raise SpecError(f"{w}.{key} = {getattr(b, key)!r} is not an input (inputs: {', '.join(inputs)})")
        if b.input == b.of or b.of in bounded:
            raise SpecError(f"{w}: the bound of {b.input!r} must depend on another input that has no bound itself")
        if bool(b.max) == bool(b.min) or ":" not in (b.max or b.min):
            raise SpecError(f"{w}: give exactly one of max or min, as 'package.module:function'")
        if not b.tolerance >= 0:
            raise SpecError(f"{w}.tolerance must be >= 0, got {b.tolerance}")


def _check_sampling(spec: Spec, where: str) -> None:
    """Seeds and [sampling]."""
    s = spec.sampling
    for what, seed in (("sampling.seed", s.seed), ("training.seed", spec.training.seed)):
        if not 0 <= seed < 2**31:  # seeds are offset per stage; numpy and torch need them >= 0
            raise SpecError(f"{where}: {what} must be in [0, 2**31), got {seed}")
    if s.count < 0:
        raise SpecError(f"{where}: sampling.count must be >= 1 (or 0 for the default), got {s.count}")
    if s.holdout < 0:
        raise SpecError(f"{where}: sampling.holdout must be >= 1 (or 0 for the default), got {s.holdout}")
    if not (0 <= s.boundary <= 1 or s.boundary == -1):
        raise SpecError(f"{where}: sampling.boundary must be in [0, 1] (or -1 for the default), got {s.boundary}")
    if not 0 < s.holdout_fraction < 1:
        raise SpecError(f"{where}: sampling.holdout_fraction must be in (0, 1), got {s.holdout_fraction}")
    _one_of(s.method, ("sobol", "uniform"), f"{where}: sampling.method")
    if s.grid == 1 or s.grid < 0:
        raise SpecError(f"{where}: sampling.grid must be >= 2 points per axis (or 0 for the default), got {s.grid}")
    if s.grid ** len(spec.inputs) > 5_000_000:
        raise SpecError(
            f"{where}: sampling.grid = {s.grid} gives {s.grid ** len(spec.inputs)} grid points "
            f"over {len(spec.inputs)} inputs; lower it (at most 5,000,000 points)"
        )


def _check_verification_and_derivatives(spec: Spec, where: str) -> None:
    """[verification] and [derivatives]."""
    v = spec.verification
    if v.points < 1 or v.face_points < 0 or v.edge_points < 0 or v.searches < 0 or v.search_evaluations < 0:
        raise SpecError(f"{where}: verification.points must be >= 1 and the other counts >= 0")
    try:
        amount, _ = parse_budget(v.budget)
    except ValueError:
        amount = -1.0
    if not amount > 0:
        raise SpecError(
            f'{where}: verification.budget must be evaluations ("20000") or reference time ("300 s", "5 min"), '
            f"got {v.budget!r}"
        )
    dv = spec.derivatives
    if not (dv.gate >= 0 and dv.weight > 0 and 0 < dv.step <= 0.1 and dv.points >= 1):
        raise SpecError(f"{where}: derivatives.gate must be >= 0, weight > 0, step in (0, 0.1] and points >= 1")
    for o in dv.report_only:
        if o not in spec.output_names:
            raise SpecError(
                f"{where}: derivatives.report_only names {o!r}, which is not an output "
                f"(outputs: {', '.join(spec.output_names)})"
            )
    if (dv.gate or dv.fit) and spec.reference.data:
        raise SpecError(f"{where}: derivatives need a callable reference (a data file has no slopes to compare)")


def _check_model_and_training(spec: Spec, where: str) -> None:
    """[model] and [training] (a trainer's own options check themselves: trainer_options.py)."""
    m = spec.model
    if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in m.widths):
        raise SpecError(f"{where}: model.widths must be a non-empty list of positive integers, got {m.widths}")
    _one_of(m.activation, ACTIVATIONS, f"{where}: model.activation")
    t = spec.training
    _one_of(t.device, ("auto", "cpu", "cuda"), f"{where}: training.device")
    if t.max_steps < 0:
        raise SpecError(f"{where}: training.max_steps must be >= 1 (or 0 for the default), got {t.max_steps}")
    if not t.max_seconds >= 0:
        raise SpecError(f"{where}: training.max_seconds must be > 0 (or 0 for the default), got {t.max_seconds}")
    if t.threads < 0:
        raise SpecError(f"{where}: training.threads must be >= 0 (0: one per core), got {t.threads}")
    if t.refine_every < 1 or t.refine_rounds < 0 or not 0 < t.refine_margin <= 1:
        raise SpecError(f"{where}: training.refine_every must be >= 1, refine_rounds >= 0, refine_margin in (0, 1]")
    if t.check_every < 1:
        raise SpecError(f"{where}: training.check_every must be >= 1, got {t.check_every}")
    if not 0 < t.stop_margin <= 1:
        raise SpecError(f"{where}: training.stop_margin must be in (0, 1], got {t.stop_margin}")
    _check_noise(spec, where)


def _check_noise(spec: Spec, where: str) -> None:
    """[noise], and what a noisy fit cannot do."""
    n = spec.noise
    if not n.widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in n.widths):
        raise SpecError(f"{where}: noise.widths must be a non-empty list of positive integers, got {n.widths}")
    if n.restarts < 1 or n.members < 1 or n.max_steps < 1 or n.folds == 1 or n.folds < 0:
        raise SpecError(f"{where}: noise.restarts, members and max_steps must be >= 1, folds 0 or >= 2")
    if n.members > n.restarts * len(n.widths):
        raise SpecError(f"{where}: noise.members ({n.members}) exceeds the fits made (restarts x widths)")
    if "rms_scatter" in spec.gates and not spec.noisy:
        raise SpecError(f"{where}: gates.rms_scatter needs a noisy reference (data, or [reference] noisy = true)")
    if not spec.noisy:
        return
    if spec.model.activation != "tanh":
        raise SpecError(f"{where}: a noisy reference is fitted with tanh units; model.activation must be 'tanh'")
    if spec.derivatives.fit or spec.derivatives.gate:
        raise SpecError(f"{where}: derivatives are not fitted or gated for a noisy reference (its slopes scatter)")
    d, m = len(spec.inputs), len(spec.outputs)
    if spec.model.widths and (len(spec.model.widths) != 1 or spec.model.widths[0] < d + m):
        raise SpecError(
            f"{where}: a noisy fit exports one hidden layer of at least {d + m} units (one per input for the linear "
            f"paths, and a tanh unit per output); model.widths = {spec.model.widths} cannot hold it (leave it out: "
            f"{noisy_width(spec)} units by default)"
        )
