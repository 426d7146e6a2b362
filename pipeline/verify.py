"""Checkpoint -> gate report: is the surrogate accurate enough over the whole input domain?

Every gate of the spec (rmse, max_abs, max_rel, mean_rel) is applied to every output on every verification set:
the held-out samples and the dense grid that spans the domain edge to edge. The report is a table of metric,
threshold, achieved value and where the worst point is; it passes only if every row does. `python -m pipeline
verify NAME` prints it and exits non-zero on a failure, so the same command serves as a CI gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .spec import Spec


def errors(y_pred: np.ndarray, y_ref: np.ndarray, metric: str) -> tuple[float, int]:
    """One output column's metric and the index of its worst sample."""
    e = np.abs(np.asarray(y_pred, dtype=np.float64) - y_ref)
    if metric in ("max_rel", "mean_rel"):
        e = e / np.maximum(np.abs(y_ref), np.finfo(np.float64).tiny)
    worst = int(np.argmax(e))
    if metric == "rmse":
        return float(np.sqrt(np.mean(e ** 2))), worst
    if metric == "mean_rel":
        return float(np.mean(e)), worst
    return float(e[worst]), worst


@dataclass
class GateRow:
    set: str
    output: str
    metric: str
    threshold: float
    achieved: float
    passed: bool
    worst_at: dict[str, float]
    """inputs of the sample with the largest error for this output and metric"""


@dataclass
class GateReport:
    surrogate: str
    rows: list[GateRow]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def achieved(self) -> dict[str, dict[str, dict[str, float]]]:
        """{set: {output: {metric: value}}}, for the model card."""
        out: dict = {}
        for r in self.rows:
            out.setdefault(r.set, {}).setdefault(r.output, {})[r.metric] = r.achieved
        return out

    def to_dict(self) -> dict:
        return {"surrogate": self.surrogate, "passed": self.passed, "rows": [asdict(r) for r in self.rows]}

    def table(self) -> str:
        head = ("set", "output", "metric", "threshold", "achieved", "ok", "worst at")
        lines = [(r.set, r.output, r.metric, f"{r.threshold:.3g}", f"{r.achieved:.3g}", "pass" if r.passed else "FAIL",
                  ", ".join(f"{k}={v:.4g}" for k, v in r.worst_at.items())) for r in self.rows]
        widths = [max(len(h), *(len(l[k]) for l in lines)) for k, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        verdict = "all gates pass" if self.passed else \
            f"{sum(not r.passed for r in self.rows)} of {len(self.rows)} gates FAIL"
        return "\n".join([f"{self.surrogate}: {verdict}", fmt.format(*head), fmt.format(*("-" * w for w in widths)),
                          *(fmt.format(*l) for l in lines)])


def gate_report(spec: Spec, predict, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> GateReport:
    """Apply every gate to every output on every set; `predict` maps physical X (N, d) to Y (N, n_out)."""
    rows = []
    for set_name, (X, Y) in sets.items():
        P = np.asarray(predict(X), dtype=np.float64)
        assert P.shape == Y.shape, f"prediction shape {P.shape} != reference shape {Y.shape}"
        for k, out in enumerate(spec.outputs):
            for metric, threshold in spec.gates.items():
                value, worst = errors(P[:, k], Y[:, k], metric)
                passed = bool(np.isfinite(value) and value <= threshold)
                rows.append(GateRow(set_name, out.name, metric, threshold, value, passed,
                                    dict(zip(spec.input_names, X[worst].tolist()))))
    return GateReport(spec.name, rows)


def meets_gates(spec: Spec, y_pred: np.ndarray, y_ref: np.ndarray, margin: float = 1.0) -> bool:
    """True when every output meets every gate with room to spare (value <= margin x threshold)."""
    return all(errors(y_pred[:, k], y_ref[:, k], metric)[0] <= margin * threshold
               for k in range(y_ref.shape[1]) for metric, threshold in spec.gates.items())
