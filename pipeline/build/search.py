"""Architecture search: the cheapest network that passes the gates, with Optuna.

    python -m pipeline search NAME [--trials 30] [--workers 2] [--storage URL] [--apply]

Each trial trains the spec's surrogate with another depth, width, activation and training-set size, then scores
it on two objectives, both minimized: the model's FLOPs per sample (its cost in a solver), and its worst gate ratio
(the largest achieved/threshold over every gate, output and verification set: <= 1 passes). Passing the gates is
also a constraint, so Optuna's Pareto front ranks passing trials first. For passing trials the onnxruntime time
per sample is measured too (recorded, not optimized: timings are noisy, FLOPs are not).

The first trial is always the spec's own architecture, so the study measures "before" beside every candidate.
`--apply` rewrites pipeline/specs/NAME.toml (model and sample count only, comments kept) with the cheapest
passing trial if it is cheaper than the current network, and writes runs/search/NAME/applied.json with the
before/after figures (the search's own output folder: data flows forward, never into benchmarks/); then
`make train export bench` ships it like any other spec.

The study lives in a SQLite file (runs/search/NAME.db) unless --storage names a database URL, e.g.
postgresql+psycopg2://user:password@host/db for many machines (psycopg2-binary is in requirements.txt). Workers,
local or remote, share it; the total number of completed trials stops at --trials (workers that finish a trial at
the same moment can overshoot by one each). Rerunning the same command resumes: completed trials are kept, and a
trial whose worker died (Ctrl-C, a kill) is marked failed once its heartbeat is stale and retried with the same
parameters. Only completed trials count. With one worker the search is seeded and repeatable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import re
import time
import tomllib
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from . import data as data_mod, spec as spec_mod
from .model import ACTIVATIONS as ALL_ACTIVATIONS, flops_per_sample, parameter_count
from .spec import Spec

WIDTHS = [4, 6, 8, 10, 12, 16, 20, 24]
DEPTHS = [1, 2]
ACTIVATIONS = [name for name, a in ALL_ACTIVATIONS.items() if a.smooth]
SAMPLE_COUNTS = [1000, 2000, 4000]
RATIO_CAP = 1e6  # a diverged trial's gate ratio, kept finite for the sampler
SEARCH_DIR = Path("runs/search")


def storage_url(name: str, storage: str | None) -> str:
    if storage:
        return storage
    SEARCH_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{SEARCH_DIR / name}.db"


def open_study(name: str, url: str, seed: int, heartbeat: int):
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats are "experimental"
    # A retried trial inherits the constraint its killed predecessor set; same parameters, so the same value.
    warnings.filterwarnings("ignore", message="The constraint value is ignored")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)
    try:
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
        )
        return optuna.create_study(
            study_name=name, storage=storage, sampler=sampler, load_if_exists=True, directions=["minimize", "minimize"]
        )
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's and the drivers' errors: an unknown scheme, no driver, no server
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        shown = re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)  # no password in a message
        first = first.replace(url, shown)
        raise PipelineError(
            f"--storage {shown!r}: cannot open the study there ({type(e).__name__}: {first[:300]})"
        ) from None


def completed(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def space(spec: Spec) -> dict[str, list]:
    """The choices, with the spec's own network and sample count among them (so trial 0 can be the spec's)."""

    def with_own(choices: list, own) -> list:
        return choices if own in choices else sorted([*choices, own]) if isinstance(own, int) else [*choices, own]

    return {
        "depth": with_own(DEPTHS, len(spec.model.widths)),
        "width": with_own(WIDTHS, spec.model.widths[0]),
        "activation": with_own(ACTIVATIONS, spec.model.activation),
        "count": with_own(SAMPLE_COUNTS, spec.sampling.count),
    }


def candidate(spec: Spec, trial) -> Spec:
    """The spec with the trial's architecture and training-set size."""
    choices = space(spec)
    depth = trial.suggest_categorical("depth", choices["depth"])
    width = trial.suggest_categorical("width", choices["width"])
    return dataclasses.replace(
        spec,
        model=dataclasses.replace(
            spec.model,
            widths=[width] * depth,
            activation=trial.suggest_categorical("activation", choices["activation"]),
        ),
        sampling=dataclasses.replace(spec.sampling, count=trial.suggest_categorical("count", choices["count"])),
    )


def ort_ns_per_sample(module, n_inputs: int, X: np.ndarray) -> dict[str, float]:
    """onnxruntime time per sample of an exported candidate: one call, and a batch of 4096 (loader's session)."""
    from ..runtime.loader import make_session
    from .export import to_onnx

    session = make_session(to_onnx(module, n_inputs).SerializeToString())
    out = {}
    for label, batch in (("batch1", X[:1]), ("batch4096", X)):
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        reps = max(20, 20000 // len(batch))
        session.run(["y"], {"x": batch})
        t0 = time.perf_counter()
        for _ in range(reps):
            session.run(["y"], {"x": batch})
        out[label] = (time.perf_counter() - t0) / reps / len(batch) * 1e9
    return out


def objective_for(spec: Spec, trial_seconds: float):
    """Optuna objective: train the candidate, return (FLOPs per sample, worst gate ratio)."""
    import torch

    from .train import train
    from .verify import gate_report

    datasets: dict[int, data_mod.Dataset] = {}

    def objective(trial):
        cand = candidate(spec, trial)
        for done in completed(trial.study):  # the sampler proposed a network already trained: reuse its result
            if done.params == trial.params:
                for key, value in done.user_attrs.items():
                    trial.set_user_attr(key, value)
                trial.set_user_attr("repeat_of", done.number)
                trial.set_constraint("gates", done.user_attrs["worst_ratio"] - 1.0)
                return tuple(done.values)
        cand.training = dataclasses.replace(cand.training, max_seconds=min(cand.training.max_seconds, trial_seconds))
        if cand.sampling.count not in datasets:  # one reference evaluation per sample count and worker
            datasets[cand.sampling.count] = data_mod.build(cand)
        dataset = datasets[cand.sampling.count]
        result = train(cand, dataset, progress=False)
        module = result.model.export_model()
        with torch.no_grad():
            report = gate_report(
                cand, lambda X: module(torch.as_tensor(X, dtype=torch.float32)).numpy(), dataset.sets()
            )
        ratios = [r.achieved / r.threshold for r in report.rows]
        worst = min(max(ratios), RATIO_CAP) if all(map(math.isfinite, ratios)) else RATIO_CAP
        n_in, n_out = len(spec.inputs), len(spec.outputs)
        flops = flops_per_sample(cand.model.widths, n_in, n_out)
        trial.set_user_attr("worst_ratio", worst)
        trial.set_user_attr("parameters", parameter_count(cand.model.widths, n_in, n_out))
        trial.set_user_attr("widths", cand.model.widths)
        trial.set_user_attr("train_steps", result.steps)
        trial.set_user_attr("train_seconds", round(result.seconds, 3))
        trial.set_user_attr("stop_reason", result.stop_reason)
        trial.set_user_attr("worker", os.getpid())
        trial.set_constraint("gates", worst - 1.0)  # feasible (passes every gate) when <= 0
        if worst <= 1.0:
            trial.set_user_attr("ort_ns", ort_ns_per_sample(module, n_in, dataset.x_holdout[:4096]))
        return float(flops), float(worst)

    return objective


def _work(name: str, url: str, seed: int, trials: int, heartbeat: int, trial_seconds: float) -> None:
    """One worker: run trials until the study holds `trials` completed ones."""
    import optuna
    from optuna.study import MaxTrialsCallback

    spec = spec_mod.load(name)
    study = open_study(spec.name, url, seed, heartbeat)
    while (remaining := trials - len(completed(study))) > 0:
        try:
            study.optimize(
                objective_for(spec, trial_seconds),
                n_trials=remaining,
                gc_after_trial=False,
                callbacks=[MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))],
            )
            return
        except ValueError as e:
            # Two workers on SQLite can pop the same enqueued trial (no row locks): the second to finish it is
            # told "Cannot tell a COMPLETE trial". Its work is a duplicate; the study is intact, so go on.
            if "Cannot tell a COMPLETE trial" not in str(e):
                raise


def run(
    name: str,
    trials: int,
    workers: int = 1,
    storage: str | None = None,
    seed: int | None = None,
    heartbeat: int = 10,
    trial_seconds: float = 60.0,
    progress: bool = True,
):
    """Run (or resume) the study for `name` until it holds `trials` completed trials; returns the study."""
    import optuna
    from tqdm import tqdm

    if trials < 1 or workers < 1 or heartbeat < 1 or not trial_seconds > 0:
        raise PipelineError(
            f"search: --trials ({trials}), --workers ({workers}) and --heartbeat ({heartbeat}) must be >= 1 and "
            f"--trial-seconds ({trial_seconds}) > 0"
        )
    spec = spec_mod.load(name)
    seed = spec.training.seed if seed is None else seed
    url = storage_url(spec.name, storage)
    study = open_study(spec.name, url, seed, heartbeat)
    if not study.trials and len(set(spec.model.widths)) == 1:  # the spec's own network first: "before"
        study.enqueue_trial(
            {
                "depth": len(spec.model.widths),
                "width": spec.model.widths[0],
                "activation": spec.model.activation,
                "count": spec.sampling.count,
            }
        )
    bar = tqdm(
        total=trials,
        initial=min(trials, len(completed(study))),
        desc=f"search {spec.name}",
        unit="trial",
        disable=not progress,
    )

    def show(study) -> None:
        bar.update(min(trials, len(completed(study))) - bar.n)
        cheapest = passing(study)
        if cheapest:
            bar.set_postfix(cheapest=f"{cheapest[0].user_attrs['widths']}, {int(cheapest[0].values[0])} FLOPs")

    try:
        if workers == 1:  # in this process: Ctrl-C marks the running trial failed, and a rerun resumes
            study.optimize(
                objective_for(spec, trial_seconds),
                n_trials=max(0, trials - len(completed(study))),
                callbacks=[
                    optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,)),
                    lambda s, t: show(s),
                ],
            )
        else:
            ctx = multiprocessing.get_context("spawn")
            procs = [
                ctx.Process(target=_work, args=(name, url, seed + k, trials, heartbeat, trial_seconds))
                for k in range(workers)
            ]
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs):
                time.sleep(1.0)
                show(study)
            failed = [p.exitcode for p in procs if p.exitcode]
            if failed:
                raise PipelineError(f"search {spec.name}: {len(failed)} worker(s) exited with status {failed}")
        show(study)
    finally:
        bar.close()
    return study


def distinct(study) -> list:
    """Completed trials, without those that repeated an earlier trial's network."""
    return [t for t in completed(study) if "repeat_of" not in t.user_attrs]


def passing(study) -> list:
    """Completed trials that pass every gate, cheapest first (ties: more accurate first)."""
    ok = [t for t in distinct(study) if t.user_attrs.get("worst_ratio", RATIO_CAP) <= 1.0]
    return sorted(ok, key=lambda t: (t.values[0], t.values[1], t.number))


def pareto(study) -> list:
    """Non-dominated completed trials (FLOPs, worst gate ratio), cheapest first."""
    trials = distinct(study)
    front = [
        t
        for t in trials
        if not any(o.values[0] <= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values for o in trials)
    ]
    return sorted(front, key=lambda t: (t.values[0], t.values[1], t.number))


def describe(t) -> dict:
    return {
        "trial": t.number,
        "widths": t.user_attrs["widths"],
        "activation": t.params.get("activation"),
        "count": t.params.get("count"),
        "parameters": t.user_attrs["parameters"],
        "flops": int(t.values[0]),
        "worst_gate_ratio": t.values[1],
        "passes": t.values[1] <= 1.0,
        "ort_ns": t.user_attrs.get("ort_ns"),
    }


def is_spec_own(t, spec: Spec) -> bool:
    """Whether a trial trained the spec's own network. The search space holds equal widths only, so a spec with
    unequal widths (8-4) has no such trial, and its "before" stays empty rather than naming a random trial."""
    return (
        t.user_attrs.get("widths") == list(spec.model.widths)
        and t.params.get("activation") == spec.model.activation
        and t.params.get("count") == spec.sampling.count
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| trial | network | activation | samples | parameters | FLOPs/sample | worst gate ratio | passes | "
        "onnxruntime ns/sample (1 / 4096) |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        ns = f"{r['ort_ns']['batch1']:.0f} / {r['ort_ns']['batch4096']:.1f}" if r["ort_ns"] else "–"
        lines.append(
            f"| {r['trial']} | {'-'.join(map(str, r['widths']))} | {r['activation']} | {r['count']} | "
            f"{r['parameters']} | {r['flops']} | {r['worst_gate_ratio']:.3g} | "
            f"{'yes' if r['passes'] else 'no'} | {ns} |"
        )
    return "\n".join(lines)


def plot(study, path: Path, title: str) -> None:
    from .report import subplots

    trials = distinct(study)
    front = pareto(study)
    fig, ax = subplots(figsize=(6.5, 4.5))
    ax.scatter([t.values[0] for t in trials], [t.values[1] for t in trials], s=14, color="0.6", label="trials")
    ax.plot([t.values[0] for t in front], [t.values[1] for t in front], "o-", color="C3", label="Pareto front")
    ax.axhline(1.0, color="k", linestyle="--", label="gate (ratio 1)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="FLOPs per sample",
        ylabel="worst gate ratio (achieved / threshold)",
        title=title,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def report(study, spec: Spec, folder: Path | None = None) -> dict:
    """Write runs/search/NAME/{pareto.md, pareto.png, trials.json} (or to `folder`); returns the summary."""
    folder = folder or SEARCH_DIR / spec.name
    front = [describe(t) for t in pareto(study)]
    ok = passing(study)
    summary = {
        "surrogate": spec.name,
        "completed_trials": len(completed(study)),
        "pareto_front": front,
        "cheapest_passing": describe(ok[0]) if ok else None,
        "before": next((describe(t) for t in completed(study) if is_spec_own(t, spec)), None),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trials.json").write_text(json.dumps([describe(t) for t in completed(study)], indent=1) + "\n")
    (folder / "pareto.md").write_text(f"# {spec.name}: Pareto front\n\n{table(front)}\n")
    plot(study, folder / "pareto.png", f"{spec.name}: {len(completed(study))} trials")
    return summary


def set_key(text: str, section: str, key: str, value: str, comment: str | None = None) -> str:
    """Set `key = value` in [section] of a TOML text, line by line, keeping the line's comment (or replacing it)."""
    lines, current, done = text.splitlines(), None, False
    for i, line in enumerate(lines):
        header = re.match(r"^\s*\[+([^\]]+)\]+", line)
        if header:
            current = header.group(1).strip()
            continue
        match = re.match(rf"^(\s*{key}\s*=\s*)([^#]*?)(\s*#.*)?$", line)
        if current == section and match:
            lines[i] = match.group(1) + value + (f"   # {comment}" if comment else match.group(3) or "")
            done = True
            break
    if not done:
        at = next((i for i, line in enumerate(lines) if line.strip() == f"[{section}]"), None)
        if at is None:
            lines += ["", f"[{section}]", f"{key} = {value}"]
        else:
            lines.insert(at + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def apply(spec: Spec, best: dict) -> str:
    """The spec file's text with `best`'s network and sample count, everything else (comments too) kept."""
    text = spec.path.read_text()
    text = set_key(
        text,
        "model",
        "widths",
        "[" + ", ".join(map(str, best["widths"])) + "]",
        f"{best['parameters']} parameters: the cheapest passing network of `python -m pipeline search`",
    )
    text = set_key(text, "model", "activation", f'"{best["activation"]}"')
    text = set_key(text, "sampling", "count", str(best["count"]))
    check = spec_mod.parse(tomllib.loads(text), where=spec.path.name)
    if (check.model.widths, check.model.activation, check.sampling.count) != (
        best["widths"],
        best["activation"],
        best["count"],
    ):
        raise PipelineError(f"{spec.path}: could not rewrite the spec's model and sampling.count")
    return text
