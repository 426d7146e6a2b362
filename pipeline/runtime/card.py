"""The model card: the contract between export and every stage after it (loader, codegen, report, summary,
benchmarks, FMU), as typed dataclasses. numpy-free and torch-free: the pip-installed runtime reads it.

Export builds a `Card` and writes `card.to_dict()` (into the .onnx as metadata "surrogate_card", and to NAME.json
with "onnx_sha256" added); every reader parses with `Card.from_dict`, which checks `card_version` first: a card
written by a newer pipeline, or one without a version, is refused in one line (CardError, a LoaderError) rather
than misread. `Card.from_dict(d).to_dict() == d` for every card export writes, so the bytes stay what they were.

What each part holds:
  inputs, outputs       name, unit, valid range and scale (inputs); name, unit, transform (outputs), in the
                        order of the columns of x and y
  onnx                  the graph's interface: opset, dtype, input/output names and shapes
  architecture          widths, activation, parameters, FLOPs per sample (dense layers only)
  domain.bounds         the bounds that cut the box, in the format pipeline/runtime/domain.py documents (one definition,
                        shared with sampling and training; checked here for shape)
  gates, achieved,      thresholds per metric; achieved[set][output][metric] in onnxruntime; the verification
  verification,         plan (points per stage, searches) and the worst point per output and metric; the slopes
  derivatives           (errors per output and input, gate or None); None where the reference has no slopes
  training, parity,     how the model was trained (trainer, steps, seeds, refinement), runtime parity figures,
  versions, ...         package versions, sha256 of the spec (and of the .onnx, in the file copy only)
  noise                 for a fit to scattered data only: per output the estimated scatter, the held-out error,
                        the estimated error against the underlying trend, and the floors of the held-out gates
The result parts (achieved, verification, derivatives, training, parity) are nested records of numbers; they stay
plain dicts, read by the report and summary by key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import CardError

CARD_VERSION = 1
"""bumped when a field changes meaning or a reader would misread an older card; readers refuse newer versions"""


@dataclass(frozen=True)
class Input:
    name: str
    unit: str
    min: float
    max: float
    scale: str = "linear"
    """"linear" or "log" (sampled log-uniformly, fed to the network as a log)"""


@dataclass(frozen=True)
class Output:
    name: str
    unit: str
    transform: str = "linear"
    """"linear" or "log" (the network learns the log)"""


@dataclass(frozen=True)
class OnnxInterface:
    opset: int
    dtype: str
    input: str
    output: str
    input_shape: list
    output_shape: list


@dataclass(frozen=True)
class Architecture:
    widths: list[int]
    activation: str
    parameters: int
    flops_per_sample: int


@dataclass(frozen=True)
class Domain:
    bounds: list[dict] = field(default_factory=list)
    """each as pipeline/runtime/domain.py documents: input, side, of, label, table {scale, lo, hi, values},
    interpolation_error (and the function it tabulates)"""


@dataclass(frozen=True)
class Card:
    name: str
    inputs: list[Input]
    outputs: list[Output]
    card_version: int = CARD_VERSION
    description: str = ""
    onnx: OnnxInterface | None = None
    architecture: Architecture | None = None
    reference: str | None = None
    domain: Domain = field(default_factory=Domain)
    gates: dict[str, float] = field(default_factory=dict)
    achieved: dict[str, Any] = field(default_factory=dict)
    gates_passed: bool | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    derivatives: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    spec_sha256: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    onnx_sha256: str | None = None
    """in the card file only: the .onnx cannot hold its own hash"""
    noise: dict[str, Any] | None = None
    """a fit to scattered data (reference.noisy): {"estimates": {output: {scatter, holdout_rms, trend_error_rms,
    trend_sigma_max, cv_rms, train_rms, effective_parameters, rows, widths, units}}, "floors": {output: {metric:
    the value the scatter alone gives on the held-out rows}}}; "units" is "relative" where the output is
    log-transformed (the values are shares of the output), else the output's unit. Absent for exact references"""

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    @property
    def bounds(self) -> list[dict]:
        return self.domain.bounds

    def to_dict(self) -> dict:
        """The JSON form export writes (onnx_sha256 only where set: the copy inside the model has none)."""
        d = dataclasses.asdict(self)
        for key in ("onnx_sha256", "noise"):  # noise: cards of exact references keep their bytes
            if d[key] is None:
                del d[key]
        return d

    def without_sha256(self) -> Card:
        return dataclasses.replace(self, onnx_sha256=None)

    @classmethod
    def from_dict(cls, d: Any, where: str = "card") -> Card:
        """Parse a card as export wrote it; CardError in one line naming what is wrong."""
        if not isinstance(d, dict):
            raise CardError(f"{where}: not a model card (a JSON object)")
        version = d.get("card_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise CardError(f"{where}: the card has no card_version; export the model again")
        if version > CARD_VERSION:
            raise CardError(
                f"{where}: card_version {version} is newer than this pipeline reads ({CARD_VERSION}); "
                f"upgrade the pipeline"
            )
        if version < 1:
            raise CardError(f"{where}: card_version {version} is not a version this pipeline wrote")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CardError(f"{where}: unknown card field(s) {unknown} for card_version {version}")
        try:
            parts = dict(d)
            parts["inputs"] = [
                _typed(Input, i, f"{where}: inputs[{k}]") for k, i in enumerate(_list(d, "inputs", where))
            ]
            parts["outputs"] = [
                _typed(Output, o, f"{where}: outputs[{k}]") for k, o in enumerate(_list(d, "outputs", where))
            ]
            if d.get("onnx") is not None:
                parts["onnx"] = _typed(OnnxInterface, d["onnx"], f"{where}: onnx")
            if d.get("architecture") is not None:
                parts["architecture"] = _typed(Architecture, d["architecture"], f"{where}: architecture")
            parts["domain"] = _domain(d.get("domain"), where)
            card = cls(**parts)
        except TypeError as e:
            raise CardError(f"{where}: {e}") from None
        names = card.input_names + card.output_names
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # named() and the generated code's documentation would mix the columns up
            raise CardError(f"{where}: input/output name(s) {twice} used more than once")
        for k, i in enumerate(card.inputs):
            # NaN or inf in a range would switch its check off (every comparison with NaN is false)
            if not (math.isfinite(i.min) and math.isfinite(i.max) and i.min <= i.max):
                raise CardError(
                    f"{where}: inputs[{k}] ({i.name}) has the range [{i.min}, {i.max}]: each end must be a finite "
                    f"number, min <= max"
                )
            if i.scale not in ("linear", "log") or (i.scale == "log" and i.min <= 0):
                raise CardError(f"{where}: inputs[{k}] ({i.name}) has scale {i.scale!r} over [{i.min}, {i.max}]")
        names = card.input_names
        for b in card.bounds:
            if b["input"] not in names or b["of"] not in names or b["side"] not in ("min", "max"):
                raise CardError(
                    f"{where}: the domain bound {b['input']!r} of {b['of']!r} names unknown inputs or "
                    f"side {b['side']!r}"
                )
        return card


def _list(d: dict, key: str, where: str) -> list:
    if not isinstance(d.get(key), list):
        raise CardError(f"{where}: the card has no list of {key}")
    return d[key]


def _typed(cls, d: Any, where: str):
    """A dataclass from a dict with exactly its fields (those with defaults may be absent)."""
    if not isinstance(d, dict):
        raise CardError(f"{where}: expected an object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    missing = [n for n, f in fields.items() if n not in d and f.default is dataclasses.MISSING]
    if unknown or missing:
        raise CardError(
            f"{where}: "
            + "; ".join(
                filter(None, (unknown and f"unknown field(s) {unknown}", missing and f"missing field(s) {missing}"))
            )
        )
    for n in ("min", "max"):
        if n in fields and (not isinstance(d[n], (int, float)) or isinstance(d[n], bool)):
            raise CardError(f"{where}: {n} must be a number, got {d[n]!r}")
    return cls(**d)


BOUND_FIELDS = ("input", "side", "of", "label", "table")
TABLE_FIELDS = ("scale", "lo", "hi", "values")


def _domain(d: Any, where: str) -> Domain:
    if d is None:
        return Domain()
    if not isinstance(d, dict) or not isinstance(d.get("bounds", []), list):
        raise CardError(f"{where}: domain must be an object with a list of bounds")
    for k, b in enumerate(d.get("bounds", [])):
        table = b.get("table") if isinstance(b, dict) else None
        if (
            not isinstance(table, dict)
            or any(f not in b for f in BOUND_FIELDS)
            or any(f not in table for f in TABLE_FIELDS)
            or not isinstance(table["values"], list)
        ):
            raise CardError(
                f"{where}: domain.bounds[{k}] needs {', '.join(BOUND_FIELDS)} and a table with "
                f"{', '.join(TABLE_FIELDS)} (see pipeline/runtime/domain.py)"
            )
        values, lo, hi, scale = table["values"], table["lo"], table["hi"], table["scale"]
        numbers = [lo, hi, *values]
        if (
            len(values) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers)
            or not lo < hi
            or scale not in ("linear", "log")
            or (scale == "log" and lo <= 0)
        ):
            raise CardError(
                f"{where}: domain.bounds[{k}] has a table that is not usable: it needs at least 2 finite values, "
                f"finite lo < hi (lo > 0 for scale 'log') and scale 'linear' or 'log'"
            )
    return Domain(bounds=list(d.get("bounds", [])))
