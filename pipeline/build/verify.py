"""Checkpoint -> gate report: is the surrogate accurate enough over the whole input domain?

Every gate of the spec (rmse, max_abs, max_rel, mean_rel) is applied to every output on every verification set:
the held-out samples, and the domain edge to edge. How the domain is covered depends on its dimension:

- 1-2 inputs: a dense grid (sampling.grid points per axis, 201 by default), edges and corners included;
- past 2 inputs a grid has 11-21 points per axis and goes blind between them, so the plan is a large Sobol sample
  (verification.points, 131,072 by default) plus every corner and points on every face and edge (data.py), then an
  adversarial search: from the worst sampled points, a bounded Nelder-Mead in the unit cube maximizes each output's
  pointwise error (absolute for rmse/max_abs, relative for max_rel/mean_rel) against the reference. The points it
  finds join the set for the max metrics; the mean metrics (rmse, mean_rel) stay averages over the sample.

The report is a table of metric, threshold, achieved value, where the worst point is and which stage found it
(grid, sample, corner, face, edge, search); it passes only if every row does. `python -m pipeline verify NAME`
prints it, with one specific next step when a gate fails, and exits non-zero, so the same command is a CI gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .spec import Spec

if TYPE_CHECKING:  # data imports torch: imported where used, so that a GateReport (api, a notebook) needs none
    from . import data as data_mod

KIND = {"rmse": "abs", "max_abs": "abs", "max_rel": "rel", "mean_rel": "rel"}
"""the pointwise error each metric is made of"""


def pointwise(y_pred: np.ndarray, y_ref: np.ndarray, kind: str) -> np.ndarray:
    e = np.abs(np.asarray(y_pred, dtype=np.float64) - y_ref)
    return e / np.maximum(np.abs(y_ref), np.finfo(np.float64).tiny) if kind == "rel" else e


def errors(y_pred: np.ndarray, y_ref: np.ndarray, metric: str) -> tuple[float, int]:
    """One output column's metric and the index of its worst sample."""
    e = pointwise(y_pred, y_ref, KIND[metric])
    worst = int(np.argmax(e))
    if metric == "rmse":
        return float(np.sqrt(np.mean(e**2))), worst
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
    stage: str = ""
    """which stage found the worst point: holdout, grid, sample, corner, face, edge or search"""


@dataclass
class GateReport:
    surrogate: str
    rows: list[GateRow]
    plan: dict = field(default_factory=dict)
    """how the domain was covered: points per stage, searches, reference evaluations, points excluded"""
    advice: str = ""
    """when a gate fails: the one next step to try (next_step), shown under the table"""

    @property
    def passed(self) -> bool:
        """Every gate passes on every set."""
        return all(r.passed for r in self.rows)

    def __repr__(self) -> str:
        """The table, as `python -m pipeline verify` prints it (a report at the end of a notebook cell shows it)."""
        return self.table() + (f"\n{self.surrogate}: next step: {self.advice}" if self.advice else "")

    def _repr_html_(self) -> str:
        """The table in Jupyter: one row per gate, failing rows in red, the plan and the next step under it."""
        from html import escape

        head = "".join(f"<th>{h}</th>" for h in ("set", "output", "metric", "threshold", "achieved", "", "found by"))
        body = "".join(
            f"<tr style='color:{'inherit' if r.passed else '#c00'}'><td>{escape(r.set)}</td><td>{escape(r.output)}"
            f"</td><td>{r.metric}</td><td>{r.threshold:.3g}</td><td>{r.achieved:.3g}</td>"
            f"<td>{'pass' if r.passed else '<b>FAIL</b>'}</td><td>{escape(r.stage)}</td></tr>"
            for r in self.rows
        )
        notes = [describe_plan(self.plan)] if self.plan.get("plan") else []
        notes += [f"next step: {self.advice}"] if self.advice else []
        return (
            f"<p><b>{escape(self.surrogate)}: {escape(self.verdict())}</b></p><table><tr>{head}</tr>{body}</table>"
            + "".join(f"<p>{escape(n)}</p>" for n in notes)
        )

    def verdict(self) -> str:
        """ "all gates pass", or how many fail."""
        if self.passed:
            return "all gates pass"
        return f"{sum(not r.passed for r in self.rows)} of {len(self.rows)} gates FAIL"

    def achieved(self) -> dict[str, dict[str, dict[str, float]]]:
        """{set: {output: {metric: value}}}, for the model card."""
        out: dict = {}
        for r in self.rows:
            out.setdefault(r.set, {}).setdefault(r.output, {})[r.metric] = r.achieved
        return out

    def worst(self) -> dict[str, dict[str, dict]]:
        """{output: {metric: {value, at, stage}}} over the domain (grid or sample + search), for the card."""
        out: dict = {}
        for r in self.rows:
            if r.set in ("grid", "domain"):
                out.setdefault(r.output, {})[r.metric] = {"value": r.achieved, "at": r.worst_at, "stage": r.stage}
        return out

    def ratio(self) -> float:
        """The largest achieved / threshold (<= 1 passes)."""
        return max((r.achieved / r.threshold if np.isfinite(r.achieved) else np.inf) for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "surrogate": self.surrogate,
            "passed": self.passed,
            "plan": self.plan,
            "rows": [asdict(r) for r in self.rows],
        }

    def table(self) -> str:
        head = ("set", "output", "metric", "threshold", "achieved", "ok", "found by", "worst at")
        lines = [
            (
                r.set,
                r.output,
                r.metric,
                f"{r.threshold:.3g}",
                f"{r.achieved:.3g}",
                "pass" if r.passed else "FAIL",
                r.stage,
                ", ".join(f"{k}={v:.4g}" for k, v in r.worst_at.items()),
            )
            for r in self.rows
        ]
        widths = [max(len(h), *(len(l[k]) for l in lines)) for k, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [
            f"{self.surrogate}: {self.verdict()}",
            fmt.format(*head),
            fmt.format(*("-" * w for w in widths)),
            *(fmt.format(*l) for l in lines),
        ]
        if self.plan.get("plan"):
            lines.append(describe_plan(self.plan))
        if self.plan.get("noise"):
            lines += describe_noise(self.plan["noise"])
        return "\n".join(lines)


def describe_plan(plan: dict) -> str:
    counts = ", ".join(f"{n:,} {stage}" for stage, n in plan["points"].items() if n)
    text = f"verified on {plan['plan']}: {counts}"
    if plan.get("searches"):
        text += f"; {plan['searches']} searches, {plan['search_evaluations']:,} reference evaluations"
    if plan.get("budget"):
        from .calls import describe

        text += f"; {describe(plan['budget'])}"
    for name, (failed, asked) in plan.get("excluded", {}).items():
        if failed:
            text += f"; reference failed on {failed} of {asked} {name} points ({failed / asked:.2%}, excluded)"
    return text


def _rows(
    spec: Spec,
    set_name: str,
    P: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    stage: np.ndarray,
    mean_mask: np.ndarray | None = None,
) -> list[GateRow]:
    rows = []
    for k, out in enumerate(spec.outputs):
        for metric, threshold in spec.gates.items():
            if metric not in KIND:
                continue  # rms_scatter: noise_rows
            e = pointwise(P[:, k], Y[:, k], KIND[metric])
            if metric in ("rmse", "mean_rel"):
                m = e if mean_mask is None else e[mean_mask]
                value = float(np.sqrt(np.mean(m**2)) if metric == "rmse" else np.mean(m))
            else:
                value = float(np.max(e))
            worst = int(np.argmax(e))
            rows.append(
                GateRow(
                    set_name,
                    out.name,
                    metric,
                    threshold,
                    value,
                    bool(np.isfinite(value) and value <= threshold),
                    dict(zip(spec.input_names, X[worst].tolist())),
                    str(stage[worst]),
                )
            )
    return rows


def gate_report(spec: Spec, predict, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> GateReport:
    """Every gate on every output of plain sets {name: (X, Y)}; `predict` maps physical X (N, d) to Y (N, n_out)."""
    rows = []
    for set_name, (X, Y) in sets.items():
        P = np.asarray(predict(X), dtype=np.float64)
        assert P.shape == Y.shape, f"prediction shape {P.shape} != reference shape {Y.shape}"
        rows += _rows(spec, set_name, P, X, Y, np.full(len(X), set_name))
    return GateReport(spec.name, rows)


def verify(spec: Spec, predict, data: data_mod.Dataset, slopes=None, noise: dict | None = None) -> GateReport:
    """The full verification plan of the spec (see the module docstring) for a predictor of physical outputs.

    `slopes`, if given, maps points X to derivatives.report(...) for the same model: its accuracy per output x
    input goes into the plan, and into the gates when the spec sets [derivatives] gate. `noise`, a noisy fit's
    estimates per output (noisy.py), adds the gates judged against the scatter (noise_rows).
    """
    from . import data as data_mod

    sets = {"holdout": (data.x_holdout, data.y_holdout)}
    if data.x_grid is not None:
        sets["grid"] = (data.x_grid, data.y_grid)
    report = gate_report(spec, predict, sets)
    sized = data_mod.budget(spec)  # a costly reference's plan (calls.budget); None: the spec's own
    plan: dict = {"excluded": data.failed}
    if noise is not None:
        plan["noise"] = noise_rows(spec, report, np.asarray(predict(data.x_holdout), dtype=np.float64), data, noise)
    if data.x_grid is not None:
        per_axis = sized["grid"] if sized else spec.sampling.grid  # the spec's, or fewer (calls.budget)
        plan |= {"plan": f"a {per_axis}-point-per-axis grid", "points": {"grid": len(data.x_grid)}}
    if data.x_domain is not None:
        P = np.asarray(predict(data.x_domain), dtype=np.float64)
        found = search_worst(spec, predict, data.u_domain, data.y_domain, P)
        X = np.concatenate([data.x_domain, found["X"]])
        Y = np.concatenate([data.y_domain, found["Y"]])
        P = np.concatenate([P, np.asarray(predict(found["X"]), dtype=np.float64).reshape(-1, P.shape[1])])
        stage = np.concatenate([data.stage_domain, np.full(len(found["X"]), "search")])
        report.rows += _rows(spec, "domain", P, X, Y, stage, mean_mask=stage != "search")
        names, counts = np.unique(stage, return_counts=True)
        plan |= {
            "plan": "Sobol sample + corners, faces, edges + worst-point search",
            "points": {str(n): int(c) for n, c in zip(names, counts)},
            "searches": found["searches"],
            "search_evaluations": found["evaluations"],
        }
    if sized and (data.x_domain is not None or data.x_grid is not None):
        plan["budget"] = sized
    if slopes is not None:
        from .derivatives import verification_points

        plan["derivatives"] = found = slopes(verification_points(spec, data))
        if spec.derivatives.gate:
            for out, per_input in found["errors"].items():
                if out in spec.derivatives.report_only:
                    continue  # reported in the card, not gated (the spec says why)
                for name, value in per_input.items():
                    report.rows.append(
                        GateRow(
                            "slopes",
                            f"d{out}/d{name}",
                            "max/rms",
                            spec.derivatives.gate,
                            value,
                            bool(value <= spec.derivatives.gate),
                            found["worst_at"][out][name],
                            "grid" if data.x_grid is not None else "sample",
                        )
                    )
    report.plan = plan
    return report


def _transformed(spec: Spec, Y: np.ndarray) -> np.ndarray:
    """Outputs in the units the network learns before standardizing: log where the spec transforms them."""
    logs = np.array([o.transform == "log" for o in spec.outputs])
    return np.where(logs, np.log(np.where(logs, np.abs(Y), 1.0) + np.finfo(float).tiny), Y)


FLOOR_QUANTILE = 0.1
"""a held-out gate is tighter than the data support when even the trend itself, with the estimated scatter added,
would fail it at least 1 - FLOOR_QUANTILE of the time"""


def noise_floor(spec: Spec, P: np.ndarray, k: int, metric: str, scatter: float, draws: int = 400) -> float:
    """The value of a held-out metric that the scatter alone gives (its FLOOR_QUANTILE over draws): rows drawn
    about the model's own predictions P with the estimated scatter, in the units the network learns."""
    xi = np.random.default_rng(0).standard_normal((draws, len(P)))
    t = _transformed(spec, P[:, k : k + 1])[:, 0]
    y = np.exp(t + scatter * xi) if spec.outputs[k].transform == "log" else t + scatter * xi
    values = [errors(P[:, k], row, metric)[0] for row in y]
    return float(np.quantile(values, FLOOR_QUANTILE))


def noise_rows(spec: Spec, report: GateReport, P: np.ndarray, data: data_mod.Dataset, noise: dict) -> dict:
    """For a noisy reference: the rms_scatter gate rows, and every held-out gate checked against what the scatter
    allows. A gate below its floor (noise_floor) fails whatever the model does, saying so in the plan."""
    Z = _transformed(spec, data.y_holdout) - _transformed(spec, P)
    floors: dict = {}
    for k, out in enumerate(spec.outputs):
        est = noise[out.name]
        est["holdout_rms"] = float(np.sqrt(np.mean(Z[:, k] ** 2)))
        for row in report.rows:
            if row.set == "holdout" and row.output == out.name and row.metric in KIND:
                floor = noise_floor(spec, P, k, row.metric, est["scatter"])
                floors.setdefault(out.name, {})[row.metric] = floor
                row.passed = row.passed and row.threshold >= floor
        if "rms_scatter" in spec.gates:
            value = est["holdout_rms"] / est["scatter"]
            worst = int(np.argmax(np.abs(Z[:, k])))
            threshold = spec.gates["rms_scatter"]
            report.rows.append(
                GateRow(
                    "holdout",
                    out.name,
                    "rms_scatter",
                    threshold,
                    value,
                    bool(value <= threshold),
                    dict(zip(spec.input_names, data.x_holdout[worst].tolist())),
                    "holdout",
                )
            )
    return {"estimates": noise, "floors": floors}


def too_tight(spec: Spec, plan_noise: dict) -> list[tuple[str, str, float, float]]:
    """(output, metric, threshold, floor) of every held-out gate tighter than the data support."""
    return [
        (out, metric, spec.gates[metric], floor)
        for out, per in plan_noise["floors"].items()
        for metric, floor in per.items()
        if spec.gates[metric] < floor
    ]


def describe_noise(plan_noise: dict) -> list[str]:
    """One line per output: the scatter, the held-out error and the estimated error against the trend."""
    lines = []
    for out, e in plan_noise["estimates"].items():
        pct = e["units"] == "relative"
        f = (lambda v: f"{100 * v:.3g} %") if pct else (lambda v: f"{v:.3g} {e['units']}")
        cv = f"; cross-validated rms {f(e['cv_rms'])}" if "cv_rms" in e else ""
        lines.append(
            f"{out}: estimated scatter {f(e['scatter'])} rms ({e['rows']} training rows, "
            f"{e['effective_parameters']:.1f} effective parameters{cv}); held-out rms {f(e['holdout_rms'])}; "
            f"estimated error against the underlying trend {f(e['trend_error_rms'])} rms (±σ band over the domain; "
            f"largest σ {f(e['trend_sigma_max'])}, where rows are sparse)"
        )
    return lines


def search_worst(spec: Spec, predict, U: np.ndarray, Y: np.ndarray, P: np.ndarray) -> dict:
    """Bounded local searches for the largest pointwise error, from the worst points of a sample: the one worst-point
    search of the project, run by verification on its domain sample and by training's Refiner on its probe set.

    U: the sample in the unit cube (N, d); Y: the reference there; P: the model there. One search per start,
    verification.searches starts per output and error kind (absolute, relative), each a Nelder-Mead in the unit cube
    (where every point maps into the domain) from a small simplex, with at most verification.search_evaluations
    reference evaluations. Points where the reference fails (on_error = "drop") count as no error. Returns the best
    point of each search: {"U", "X", "Y", "searches", "evaluations"}.

    A costly reference (calls.budget sized the plan) runs the searches side by side (_in_lockstep), so that their
    points reach the reference's workers together; each search takes the same points either way.
    """
    from . import data as data_mod

    v = spec.verification
    sized = data_mod.budget(spec)  # a costly reference: as many searches as verification.budget buys
    starts, evaluations_each = (
        (sized["searches"], sized["search_evaluations"]) if sized else (v.searches, v.search_evaluations)
    )
    runs = [
        lambda reference, k=k, kind=kind, u0=u0: _search(spec, predict, k, kind, u0, evaluations_each, reference)
        for k in range(len(spec.outputs))
        for kind in sorted({KIND[m] for m in spec.gates})
        for u0 in _distinct_worst(U, pointwise(P[:, k], Y[:, k], kind), starts)
    ]
    if sized and len(runs) > 1:
        found = _in_lockstep(spec, runs)
    else:
        found = [run(lambda X: data_mod.call_reference(spec, X)[:2]) for run in runs]
    best = [f for f in found if f["err"] >= 0]
    d, n_out = len(spec.inputs), len(spec.outputs)
    return {
        "U": np.array([f["U"] for f in best]).reshape(-1, d),
        "X": np.array([f["X"] for f in best]).reshape(-1, d),
        "Y": np.array([f["Y"] for f in best]).reshape(-1, n_out),
        "searches": len(runs),
        "evaluations": sum(f["evaluations"] for f in found),
    }


def _search(spec: Spec, predict, k: int, kind: str, u0: np.ndarray, evaluations_each: int, reference) -> dict:
    """One Nelder-Mead from u0 for output k's largest error of `kind`; reference(X) -> (Y, ok) for one row. Returns
    the best point it met {"err" (-1: none), "U", "X", "Y", "evaluations"}."""
    from scipy.optimize import minimize

    from . import data as data_mod

    best = {"err": -1.0, "evaluations": 0}

    def objective(u: np.ndarray) -> float:
        u = np.clip(u, 0.0, 1.0)[None, :]
        X = data_mod.from_unit(spec, u)
        Y_u, ok = reference(X)
        best["evaluations"] += 1
        if not ok[0]:
            if spec.reference.on_error == "error":
                data_mod.evaluate(spec, X, "search points")  # raises the one-line report
            return 0.0
        err = float(pointwise(np.asarray(predict(X), dtype=np.float64)[0, k], Y_u[0, k], kind))
        if err > best["err"]:
            best.update(err=err, U=u[0], X=X[0], Y=Y_u[0])
        return -err

    options = {"maxfev": evaluations_each, "initial_simplex": _simplex(u0), "xatol": 1e-6, "fatol": 0.0}
    minimize(objective, u0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * len(u0), options=options)
    return best


def _in_lockstep(spec: Spec, runs: list) -> list[dict]:
    """Each run(reference) in a thread of its own; this thread evaluates their points a batch at a time, once every
    search still going has asked for one (a search's next point needs its last value), through data.call_reference:
    the cache, and the workers for a batch that costs (calls.run). The search threads compute little (a simplex, the
    model at one point) and wait the rest of the time, so the GIL is no matter; the reference, its timeouts, the
    on_error report and Ctrl-C stay in this thread. A search takes the points it would take alone, as long as the
    reference's value at a row does not depend on the other rows of its call (as for every cached reference).

    The first error (the reference's, a search's, Ctrl-C) answers every search's next ask, so all of them stop within
    a round, and is raised here once they have."""
    import queue
    import threading

    from . import data as data_mod

    asks: queue.Queue = queue.Queue()
    found: list = [None] * len(runs)

    def run(i: int) -> None:
        def reference(X: np.ndarray):
            reply: queue.Queue = queue.Queue(maxsize=1)
            asks.put((i, X, reply))
            answer = reply.get()
            if isinstance(answer, BaseException):
                raise answer
            return answer

        try:
            found[i] = runs[i](reference)
        except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
            found[i] = e
        finally:
            asks.put((i, None, None))  # this search is done

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(runs))]
    for t in threads:
        t.start()
    going, batch, failure = len(threads), [], None
    while going:
        try:
            i, X, reply = asks.get()
        except BaseException as e:  # noqa: BLE001 - Ctrl-C: answered to every search, so that none waits for ever
            failure = failure or e
            continue
        if X is None:
            going -= 1
            failure = failure or (found[i] if isinstance(found[i], BaseException) else None)
        else:
            batch.append((i, X, reply))
        if batch and (failure is not None or len(batch) == going):
            answers = [failure] * len(batch) if failure is not None else _answers(spec, data_mod, batch)
            failure = failure or next((a for a in answers if isinstance(a, BaseException)), None)
            for (_, _, reply), answer in zip(batch, answers):
                reply.put(answer)
            batch = []
    for t in threads:
        t.join()
    if failure is not None:
        raise failure
    return found


def _answers(spec: Spec, data_mod, batch: list) -> list:
    """The reference at the batch's points, one (Y, ok) per ask, each distinct row evaluated once; or the exception
    that evaluating them raised (for every ask), the one-line report of a failed point under on_error = "error"."""
    try:
        rows, back = np.unique(np.concatenate([X for _, X, _ in batch]), axis=0, return_inverse=True)
        Y, ok, _ = data_mod.call_reference(spec, rows)  # rows sorted: the same call whatever order the asks came in
        if spec.reference.on_error == "error" and not ok.all():
            data_mod.evaluate(spec, rows[~ok][:1], "search points")  # raises the one-line report
        return [(Y[j : j + 1], ok[j : j + 1]) for j in back.reshape(-1)]
    except BaseException as e:  # noqa: BLE001 - every search stops, then it is raised in _in_lockstep
        return [e] * len(batch)


def _distinct_worst(U: np.ndarray, e: np.ndarray, n: int, min_distance: float = 0.05) -> list[np.ndarray]:
    """Up to n points with the largest errors, no two closer than min_distance in the unit cube (max norm)."""
    picked: list[np.ndarray] = []
    for i in np.argsort(-e, kind="stable"):
        if len(picked) == n or not np.isfinite(e[i]):
            break
        if all(np.max(np.abs(U[i] - p)) >= min_distance for p in picked):
            picked.append(U[i])
    return picked


def _simplex(u0: np.ndarray, step: float = 0.02) -> np.ndarray:
    """A small simplex at u0 that stays in the unit cube (steps point inwards from a face)."""
    d = len(u0)
    S = np.tile(u0, (d + 1, 1))
    for i in range(d):
        S[i + 1, i] += step if u0[i] + step <= 1.0 else -step
    return S


def meets_gates(spec: Spec, y_pred: np.ndarray, y_ref: np.ndarray, margin: float = 1.0) -> bool:
    """True when every output meets every gate with room to spare (value <= margin x threshold)."""
    return worst_ratio(spec, y_pred, y_ref) <= margin


def worst_ratio(spec: Spec, y_pred: np.ndarray, y_ref: np.ndarray) -> float:
    """The largest metric / threshold over outputs and gates (<= 1 passes)."""
    ratios = [
        errors(y_pred[:, k], y_ref[:, k], metric)[0] / threshold
        for k in range(y_ref.shape[1])
        for metric, threshold in spec.gates.items()
        if metric in KIND  # rms_scatter needs the estimated scatter: noise_rows
    ]
    return max(r if np.isfinite(r) else np.inf for r in ratios)


def next_step(spec: Spec, report: GateReport, metrics: dict) -> str:
    """One specific thing to try when a gate fails, read from how training ended."""
    if report.plan.get("noise"):
        return noisy_next_step(spec, report.plan["noise"])
    width = max(spec.model.widths)
    wider = [min(2 * width, 256)] * len(spec.model.widths)
    target = str(spec.path) if spec.path else spec.name
    search = f"`python -m pipeline search {target}` finds the cheapest network that passes"
    reason, train_ratio = metrics.get("stop_reason", ""), metrics.get("train_ratio")
    ratio = report.ratio()
    if reason == "time budget" and metrics.get("improving"):
        return (
            f"training ran out of time while the error was still falling: raise [training] max_seconds "
            f"(now {spec.training.max_seconds:g}) to {2 * spec.training.max_seconds:g}"
        )
    if reason == "step budget" and metrics.get("improving"):
        return (
            f"training ran out of steps while the error was still falling: raise [training] max_steps "
            f"(now {spec.training.max_steps}) to {2 * spec.training.max_steps}"
        )
    if train_ratio is not None and train_ratio > 0.5 * ratio:
        return (
            f"the network cannot fit even its training samples (worst gate ratio {train_ratio:.3g} there): "
            f"try a wider network, [model] widths = {wider}, or {search}"
        )
    samples = metrics.get("train_samples") or spec.sampling.count
    if spec.reference.data:  # rows cannot be added, and a network that fits them but not the held-out ones
        return (  # is following their scatter
            f"the network fits its training rows (worst gate ratio {train_ratio:.3g} there) but not the held-out "
            f"ones ({ratio:.3g}): over-fitting, or scatter in the data. If the rows scatter, leave out "
            f"[reference] noisy = false (a noisy fit chooses its complexity from the data); else gather more rows "
            f"or try a smaller network"
        )
    return (
        f"the network fits its training samples but not the points between them: try more samples, "
        f"[sampling] count = {2 * samples}, or a wider network, [model] widths = {wider}; {search}"
    )


def noisy_next_step(spec: Spec, plan_noise: dict) -> str:
    """What to try when a noisy fit fails a gate, read from its numbers: a gate the data cannot support, a fit that
    follows its training rows more closely than the held-out ones (over-fitting or noise), or one that misses both
    (too little capacity)."""
    tight = too_tight(spec, plan_noise)
    if tight:
        out, metric, threshold, floor = tight[0]
        e = plan_noise["estimates"][out]
        pct = "%" if e["units"] == "relative" else e["units"]
        scale = 100 if e["units"] == "relative" else 1
        return (
            f"{metric} = {threshold:g} on {out} is tighter than the data support: their estimated scatter is "
            f"{scale * e['scatter']:.3g} {pct} rms, so even the noise-free trend would exceed {threshold:g} on "
            f"the held-out rows {1 - FLOOR_QUANTILE:.0%} of the time (it would show about {floor:.3g} or more); "
            f"gate {metric} at {1.5 * floor:.2g} or more, or gate rms_scatter = 1.3 (held-out rms within 1.3x the "
            f"scatter)"
        )
    out, e = max(plan_noise["estimates"].items(), key=lambda t: t[1]["holdout_rms"] / t[1]["train_rms"])
    ratio = e["holdout_rms"] / e["train_rms"]
    widths = spec.noise.widths
    if ratio > 1.5:
        fewer = widths[: max(1, len(widths) // 2)]
        return (
            f"{out} follows its training rows (rms {e['train_rms']:.3g}) far more closely than the held-out rows "
            f"(rms {e['holdout_rms']:.3g}): over-fitting, or scatter the training rows do not show. Regularise: "
            f"fewer units, [noise] widths = {fewer}; or gather more rows. A wider network would make it worse"
        )
    return (
        f"{out} misses its training rows (rms {e['train_rms']:.3g}) about as much as the held-out rows (rms "
        f"{e['holdout_rms']:.3g}), against an estimated scatter of {e['scatter']:.3g}: too little capacity for "
        f"the gates; allow wider members, [noise] widths = {[*widths, 2 * max(widths)]}, or loosen the gates to "
        f"what the data support"
    )
