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
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SPEC_VERSION = 1
SPECS_DIR = Path(__file__).parent / "specs"
GATE_METRICS = ("rmse", "max_abs", "max_rel", "mean_rel")


class PipelineError(Exception):
    """An error the user can fix: printed as one line, exit status 2, nothing half-written."""


class SpecError(PipelineError):
    pass


@dataclass
class InputSpec:
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


@dataclass
class SamplingSpec:
    count: int = 2000
    """training samples drawn from the reference (ignored for data, which uses its own rows)"""
    method: str = "sobol"
    """"sobol" (scrambled, space-filling) or "uniform" random, in the scaled input space"""
    seed: int = 0
    """seed of the training and held-out samples"""
    holdout: int = 2000
    """held-out samples (for data: rows set aside, see holdout_fraction)"""
    holdout_fraction: float = 0.2
    """for data only: fraction of the rows held out for verification"""
    grid: int = 201
    """points per input axis of the dense verification grid (edges and corners included)"""


@dataclass
class ModelSpec:
    widths: list[int] = field(default_factory=lambda: [16, 16])
    """hidden layer widths"""
    activation: str = "tanh"
    """"tanh", "silu" or "relu" (tanh: smooth and cheap in generated code)"""


@dataclass
class TrainingSpec:
    trainer: str = "lm"
    """"lm" (Levenberg-Marquardt, for small nets: converges to far lower error) or "adam" (minibatch Adam)"""
    max_steps: int = 500
    """budget in optimizer steps; LM steps are full-batch"""
    max_seconds: float = 120.0
    """budget in wall seconds; a safety cap (a run cut by it is not bit-reproducible)"""
    seed: int = 0
    """seed of the weight initialization"""
    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"""
    check_every: int = 5
    """steps between checks of the gates on the held-out samples"""
    stop_margin: float = 0.25
    """stop once every held-out metric is below margin x its threshold, leaving room for float32 and the grid"""
    lr: float = 3e-3
    """adam only: peak learning rate"""
    batch_size: int = 256
    """adam only: minibatch size"""


@dataclass
class Spec:
    name: str
    """surrogate name: the file names of its checkpoint, model and card"""
    description: str
    """one line for `python -m pipeline list` and the card"""
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    reference: ReferenceSpec
    gates: dict[str, float]
    """metric -> threshold, applied to every output on the held-out samples and the grid"""
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
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
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


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
        raise SpecError(f"{path.name}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                        f"TOML files are UTF-8") from None
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
        sampling=_build(SamplingSpec, raw.get("sampling", {}), f"{where}: sampling"),
        model=_build(ModelSpec, raw.get("model", {}), f"{where}: model"),
        training=_build(TrainingSpec, raw.get("training", {}), f"{where}: training"),
        spec_version=version,
    )
    known = {f.name for f in dataclasses.fields(Spec)} - {"path"}
    for key in raw:
        if key not in known:
            raise SpecError(f"{where}: unknown key '{key}' (allowed: {', '.join(sorted(known))})")
    _check(spec, where)
    return spec


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
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise SpecError(f"{where}: unknown key '{key}' (allowed: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(f"{where}: missing required key '{name}'")
            continue
        typ = {"str": str, "float": float, "int": int, "bool": bool, "list[int]": list}[str(f.type)]
        values[name] = _typed(raw, name, typ, where)
    return cls(**values)


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


def _check(spec: Spec, where: str) -> None:
    """Consistency checks across fields."""
    if not spec.name.isidentifier():
        raise SpecError(f"{where}: name must be an identifier (letters, digits, _), got {spec.name!r}")
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
    ref = spec.reference
    if bool(ref.callable) == bool(ref.data):
        raise SpecError(f"{where}: reference needs exactly one of 'callable' or 'data'")
    if ref.callable and ":" not in ref.callable:
        raise SpecError(f"{where}: reference.callable must look like 'package.module:function', got {ref.callable!r}")
    _one_of(ref.bad_rows, ("error", "drop"), f"{where}: reference.bad_rows")
    s = spec.sampling
    if s.count < 1:
        raise SpecError(f"{where}: sampling.count must be >= 1, got {s.count}")
    if s.holdout < 1:
        raise SpecError(f"{where}: sampling.holdout must be >= 1, got {s.holdout}")
    if not 0 < s.holdout_fraction < 1:
        raise SpecError(f"{where}: sampling.holdout_fraction must be in (0, 1), got {s.holdout_fraction}")
    _one_of(s.method, ("sobol", "uniform"), f"{where}: sampling.method")
    if s.grid < 2:
        raise SpecError(f"{where}: sampling.grid must be >= 2 points per axis, got {s.grid}")
    if s.grid ** len(spec.inputs) > 5_000_000:
        raise SpecError(f"{where}: sampling.grid = {s.grid} gives {s.grid ** len(spec.inputs)} grid points "
                        f"over {len(spec.inputs)} inputs; lower it (at most 5,000,000 points)")
    m = spec.model
    if not m.widths or any(not isinstance(w, int) or w < 1 for w in m.widths):
        raise SpecError(f"{where}: model.widths must be a non-empty list of positive integers, got {m.widths}")
    _one_of(m.activation, ("tanh", "silu", "relu"), f"{where}: model.activation")
    t = spec.training
    _one_of(t.trainer, ("lm", "adam"), f"{where}: training.trainer")
    _one_of(t.device, ("auto", "cpu", "cuda"), f"{where}: training.device")
    if t.max_steps < 1:
        raise SpecError(f"{where}: training.max_steps must be >= 1, got {t.max_steps}")
    if not t.max_seconds > 0:
        raise SpecError(f"{where}: training.max_seconds must be > 0, got {t.max_seconds}")
    if t.check_every < 1:
        raise SpecError(f"{where}: training.check_every must be >= 1, got {t.check_every}")
    if not 0 < t.stop_margin <= 1:
        raise SpecError(f"{where}: training.stop_margin must be in (0, 1], got {t.stop_margin}")
    if not t.lr > 0 or t.batch_size < 1:
        raise SpecError(f"{where}: training.lr must be > 0 and training.batch_size >= 1")
