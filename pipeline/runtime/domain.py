"""Domains that are not boxes: one input bounded by a tabulated function of another.

Liquid water exists only below the saturation temperature, T <= T_sat(p) - 2 K; a correlation holds inside an
envelope. A spec states such a bound as a callable (`[[domain]]`, see spec.py); export tabulates it once, and from
then on the *table* is the domain, everywhere: sampling, training, verification, the loader, the generated C and
Fortran. One definition means that a point the C accepts is a point the gates were checked on. The table's largest
deviation from the callable is measured and recorded in the card.

A bound as the card stores it (numpy only: the loader imports this module):

    {"input": "T", "side": "max", "of": "p", "label": "T_sat(p) - 2 K",
     "table": {"scale": "log", "lo": 1e5, "hi": 1.6e7, "values": [...]},
     "interpolation_error": 1.2e-4}

`values` holds the bound at n knots spaced evenly in s = log10(of) ("log") or in s = of ("linear"), from s(lo) to
s(hi); between knots the bound is linear in s, and outside [lo, hi] it is the end value. side "max" means
input <= bound(of), "min" means input >= bound(of).

This module is the one description of that table (BoundTable: the card's numbers and the constants derived from
them) and of its interpolation (interpolation(): the steps as assignments, which bound_value() takes in numpy and
every emitter writes in its language through a Syntax: the generated C and Fortran, the FMU):

    xc = clamp(of, lo, hi);  s = log10(xc) or xc;  t = (s - s_lo) / (s_hi - s_lo) * (n - 1);
    k = clamp(integer part of t, 0, n - 2);  w = t - k;  v = values[k] + w * (values[k + 1] - values[k])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHECK_REFINEMENT = 16
"""the interpolation error is measured at this many points per table interval"""


def _s(x, scale: str):
    return np.log10(x) if scale == "log" else np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class BoundTable:
    """One bound as every evaluator reads it: the card's entry, with the interpolation's constants computed once."""

    input: str
    of: str
    side: str
    """"max": input <= bound(of); "min": input >= bound(of)"""
    label: str
    log: bool
    """the knots are spaced evenly in log10(of), else in of"""
    lo: float
    hi: float
    s_lo: float
    """lo in the interpolation's variable s (log10(lo) or lo)"""
    s_hi: float
    values: tuple[float, ...]

    @classmethod
    def of_bound(cls, bound: dict) -> BoundTable:
        """From a bound as the card stores it (the dict in the module docstring)."""
        tab = bound["table"]
        lo, hi, log = float(tab["lo"]), float(tab["hi"]), tab["scale"] == "log"
        return cls(
            input=bound.get("input", ""), of=bound.get("of", ""), side=bound.get("side", "max"),
            label=bound.get("label", ""), log=log, lo=lo, hi=hi,
            s_lo=float(np.log10(lo)) if log else lo, s_hi=float(np.log10(hi)) if log else hi,
            values=tuple(float(v) for v in tab["values"]),
        )  # fmt: skip

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Syntax:
    """How a language writes the interpolation's few operations (format strings over the names shown)."""

    number: Callable[[float], str]
    """a real literal"""
    clamp: str
    """{a} limited to [{lo}, {hi}]"""
    integer: str
    """the integer part of {a} (towards zero)"""
    item: str
    """element {k} (counted from 0) of {array}"""
    log10: str = "log10({a})"


def interpolation(table: BoundTable, syntax: Syntax, of: str, values: str) -> list[tuple[str, str]]:
    """The bound at the expression `of`, as (variable, expression) assignments in `syntax`: reals xc, s, t, w and v
    (the bound, last), the integer k; `values` names the array of table.values. bound_value() takes the same steps."""
    num, n = syntax.number, table.n
    item = lambda k: syntax.item.format(array=values, k=k)  # noqa: E731
    s_lo, s_hi = num(table.s_lo), num(table.s_hi)
    return [
        ("xc", syntax.clamp.format(a=of, lo=num(table.lo), hi=num(table.hi))),
        ("s", syntax.log10.format(a="xc") if table.log else "xc"),
        ("t", f"(s - ({s_lo})) / ({s_hi} - ({s_lo})) * {n - 1}"),
        ("k", syntax.integer.format(a="t")),
        ("k", syntax.clamp.format(a="k", lo="0", hi=str(n - 2))),
        ("w", "t - k"),
        ("v", f"{item('k')} + w * ({item('k + 1')} - {item('k')})"),
    ]


def _s_inverse(table: dict) -> np.ndarray:
    """The `of` values at a table's knots."""
    s = np.linspace(_s(table["lo"], table["scale"]), _s(table["hi"], table["scale"]), len(table["values"]))
    return 10.0**s if table["scale"] == "log" else s


def bound_value(bound: dict, x_of) -> np.ndarray:
    """The bound at values of its `of` input (clamped to the table's range), as an array of x_of's shape: the steps
    of interpolation(), in numpy."""
    table = BoundTable.of_bound(bound)
    values, n = np.asarray(table.values), table.n
    xc = np.clip(np.asarray(x_of, dtype=np.float64), table.lo, table.hi)
    s = np.log10(xc) if table.log else xc
    t = (s - table.s_lo) / (table.s_hi - table.s_lo) * (n - 1)
    k = np.clip(np.trunc(t).astype(np.int64), 0, n - 2)
    w = t - k
    return values[k] + w * (values[k + 1] - values[k])


def tabulate(fn, lo: float, hi: float, scale: str, knots: int) -> tuple[dict, float]:
    """Tabulate fn over [lo, hi] at `knots` knots; returns the table and its largest deviation from fn."""
    s = np.linspace(_s(lo, scale), _s(hi, scale), knots)
    x = 10.0**s if scale == "log" else s
    x[0], x[-1] = lo, hi
    table = {"scale": scale, "lo": float(lo), "hi": float(hi), "values": [float(v) for v in _call(fn, x)]}
    s_fine = np.linspace(s[0], s[-1], (knots - 1) * CHECK_REFINEMENT + 1)
    x_fine = np.clip(10.0**s_fine if scale == "log" else s_fine, lo, hi)
    exact = _call(fn, x_fine)
    return table, float(np.max(np.abs(bound_value({"table": table}, x_fine) - exact)))


def _call(fn, x: np.ndarray) -> np.ndarray:
    y = np.asarray(fn(x.copy()), dtype=np.float64).reshape(-1)
    if y.shape != x.shape:
        raise ValueError(f"returned {y.shape[0]} values for {x.shape[0]} inputs")
    if not np.isfinite(y).all():
        raise ValueError(f"returned a non-finite value at {x[~np.isfinite(y)][0]:.6g}")
    return y


def violations(bounds: list[dict], names: list[str], X: np.ndarray) -> np.ndarray:
    """Boolean (N, n_inputs): True where an input breaks one of the bounds (the box is checked elsewhere)."""
    bad = np.zeros(X.shape, dtype=bool)
    for b in bounds:
        i, j = names.index(b["input"]), names.index(b["of"])
        limit = bound_value(b, X[:, j])
        bad[:, i] |= (X[:, i] > limit) if b["side"] == "max" else (X[:, i] < limit)
    return bad


def clip(bounds: list[dict], names: list[str], X: np.ndarray) -> np.ndarray:
    """X with every bounded input moved onto its bound where it lies beyond it (clip to the box first)."""
    X = np.array(X, dtype=np.float64)
    for b in bounds:
        i, j = names.index(b["input"]), names.index(b["of"])
        limit = bound_value(b, X[:, j])
        X[:, i] = np.minimum(X[:, i], limit) if b["side"] == "max" else np.maximum(X[:, i], limit)
    return X


def describe(bounds: list[dict], inputs: list, x_row) -> str:
    """The first broken bound of one point, in words:
    'T = 455.1 K is above T_sat(p) - 2 K = 451.0 K at p = 1.0e+06 Pa'. inputs: the card's (card.Input: name, unit)."""
    names = [i.name for i in inputs]
    units = {i.name: i.unit for i in inputs}
    for b in bounds:
        i, j = names.index(b["input"]), names.index(b["of"])
        limit = float(bound_value(b, np.array([x_row[j]]))[0])
        value = float(x_row[i])
        if (value > limit) if b["side"] == "max" else (value < limit):
            where = "above" if b["side"] == "max" else "below"
            return (
                f"{b['input']} = {_num(value)} {units[b['input']]} is {where} {b['label']} = {_num(limit)} "
                f"{units[b['input']]} at {b['of']} = {_num(float(x_row[j]))} {units[b['of']]}"
            )
    return ""


def _num(v: float) -> str:
    """Enough digits to see why two close numbers differ, short for ordinary ones."""
    if v != 0 and not 1e-3 <= abs(v) < 1e5:
        return f"{v:.4e}"
    return f"{v:.6g}" if math.isfinite(v) else str(v)
