"""Data -> trained model: fit a Surrogate to the training samples until the gates are met or the budget ends.

Two trainers, both plain loops:

- "lm", Levenberg-Marquardt (the default): the classic trainer for small regression networks. Each step solves
  (JᵀJ + μI) δ = Jᵀr for all parameters at once, using the Jacobian J of every residual; μ shrinks after a step
  that lowers the loss, as far as the step did what its linear model predicted (Nielsen's rule), and grows after
  one that does not. On the paraboloid it reaches errors ~100x lower than
  Adam's plateau in a second or two. Its cost grows with samples x parameters², so it suits nets of up to a few
  thousand parameters.
- "adam": minibatch Adam with a cosine learning-rate decay, for larger nets and data sets.

The faults of the seed script are impossible here: the optimizer owns the gradients (LM has none to accumulate;
Adam zeroes them every step), the loss is a mean over samples, and `mse` refuses tensors of different shapes
instead of broadcasting an (N, 1) prediction against an (N,) target into an N x N matrix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from ..errors import PipelineError
from .data import Dataset
from .model import Surrogate, activation_of
from .spec import Spec, TrainingSpec
from .verify import KIND, pointwise, search_worst, worst_ratio


@dataclass
class TrainResult:
    model: Surrogate
    history: list[dict] = field(default_factory=list)
    """one entry per check (step, seconds, training loss as normalized MSE, held-out gates met), and one per
    refinement round (event "refine": samples before, added, worst error ratio found, held-out ratio)"""
    steps: int = 0
    seconds: float = 0.0
    stop_reason: str = ""
    device: str = "cpu"
    trainer: str = "lm"
    train_samples: int = 0
    """training samples at the end, refinement included"""
    rows: int = 0
    """residual rows of the last LM step: a value row per sample and output, a slope row per fitted output and input
    at each slope point (the work of a step is about rows x parameters²)"""
    train_ratio: float = float("nan")
    """worst gate ratio (metric / threshold) on the training samples: above ~1 the network cannot fit them"""
    improving: bool = False
    """the loss still fell over the last fifth of the run (a longer budget would help)"""
    note: str = ""
    noise: dict | None = None
    """a noisy reference's fit (noisy.py): {"estimates": per output, "members": the averaged fits}; None otherwise"""


def pick_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise PipelineError('training.device = "cuda" but no CUDA device is available (use "auto" or "cpu")')
    return torch.device("cpu")


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of two tensors of the same shape; never broadcasts."""
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}: "
            "refusing to broadcast (an (N, 1) vs (N,) mix-up would give an N x N loss)"
        )
    return torch.mean((pred - target) ** 2)


def choose_trainer(spec: Spec, n_params: int) -> tuple[str, str]:
    """The spec's trainer, except LM past training.lm_memory_gb (its P x P normal equations would not fit): then Adam,
    with the lr and batch_size of LM's options, and say so."""
    t = spec.training
    if t.trainer == "lm" and 3 * 8 * n_params**2 > t.options.lm_memory_gb * 1e9:
        return "adam", (
            f"LM's normal equations for {n_params:,} parameters need {3 * 8 * n_params**2 / 1e9:.3g} GB "
            f"(training.lm_memory_gb = {t.options.lm_memory_gb:g}): training with Adam instead"
        )
    return t.trainer, ""


def _deterministic(mode: bool) -> None:
    """torch.use_deterministic_algorithms(mode) without its import of torch._inductor (to set a flag that only
    torch.compile reads, and nothing here compiles): about 3 s of every training process, a large part of a gate
    rerun from the reference cache."""
    flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if flag is None:  # pragma: no cover - another torch: the public call, import and all
        torch.use_deterministic_algorithms(mode)
    else:
        flag(mode)


def train(spec: Spec, data: Dataset, device: str | None = None, progress: bool = True) -> TrainResult:
    """Fit a Surrogate for `spec` on `data`; stops when the gates are met (with margin) or on budget.

    Training goes in rounds. Each round runs the optimizer until the held-out gates are met with margin
    (training.stop_margin), or the held-out error stops falling, or for refine_every steps; then, for a callable
    reference, a check (Refiner) looks for the worst points of the domain. If the error there exceeds refine_margin
    x the gates, reference samples are added around those points and on the faces near them, and training goes on,
    up to refine_rounds rounds (then to the end of the budget).
    """
    from threadpoolctl import threadpool_limits

    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(1)  # every operation on one thread; LM's blocks use the cores (lm_steps, training.threads)
    try:
        with threadpool_limits(limits=1, user_api="blas"):  # numpy's and scipy's BLAS too (gram())
            if spec.noisy:  # scattered values: complexity from the data, not a budget (noisy.py)
                from . import noisy

                return noisy.train(spec, data, TrainResult)
            return _train(spec, data, device, progress)
    finally:  # for this run only, not for the rest of the process
        _deterministic(previous[0])
        torch.set_num_threads(previous[1])


def _train(spec: Spec, data: Dataset, device: str | None, progress: bool) -> TrainResult:
    """Rounds of optimizer steps (_optimize), each ended by a stop reason (STOP_REASONS); after each a refinement
    check (_refine) ends the run or adds samples, unless a budget ran out or there is nothing to refine with."""
    run = _Run.begin(spec, data, device, progress)
    while True:
        reason = _optimize(run)
        if reason in BUDGET_REASONS or run.refiner is None:
            break
        reason = _refine(run, reason)  # "" when samples were added and training goes on
        if reason:
            break
    run.bar.close()
    return _finish(run, reason)


@dataclass
class Check:
    """What the stop decision sees at a check of the held-out gates."""

    met: bool
    """every held-out gate ratio is below training.stop_margin"""
    stuck: bool
    """the trainer reports it can make no further progress"""
    step: int
    seconds: float
    round_start: int
    """the step at which this round began"""
    rounds: int
    """refinement rounds done so far"""
    refining: bool
    """a Refiner checks the model between rounds"""
    history: list[dict]


STOP_REASONS: tuple[tuple[str, Callable[[Check, TrainingSpec], bool]], ...] = (
    ("gates met", lambda c, t: c.met),
    ("converged (no further progress)", lambda c, t: c.stuck),
    ("step budget", lambda c, t: c.step >= t.max_steps),
    ("time budget", lambda c, t: c.seconds > t.max_seconds),
    ("plateau", lambda c, t: _plateau(c.history, c.round_start)),
    ("round", lambda c, t: c.refining and c.rounds < t.refine_rounds and c.step - c.round_start >= t.refine_every),
)
"""Why a round of optimizer steps ends, in order of precedence: the first that applies is the reason."""
BUDGET_REASONS = ("step budget", "time budget")
"""reasons that end the run without a refinement check"""


def stop_reason(check: Check, t: TrainingSpec) -> str:
    """The first reason of STOP_REASONS that applies to `check`; "" to go on stepping."""
    return next((reason for reason, applies in STOP_REASONS if applies(check, t)), "")


@dataclass
class _Run:
    """One training run's state, shared by its rounds of optimizer steps and its refinement checks."""

    spec: Spec
    model: Surrogate
    dev: torch.device
    trainer: str
    initial: int
    """training samples before refinement"""
    x_hold: torch.Tensor
    y_hold: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    slopes: SlopeTargets | None
    refiner: Refiner | None
    result: TrainResult
    bar: tqdm
    start: float = 0.0
    step: int = 0
    rounds: int = 0
    losses: list[float] = field(default_factory=list)

    @classmethod
    def begin(cls, spec: Spec, data: Dataset, device: str | None, progress: bool) -> _Run:
        """Seed, build the model, pick the trainer, the slope targets and the Refiner; start the clock."""
        t = spec.training
        dev = pick_device(device or t.device)
        torch.manual_seed(t.seed)
        if dev.type == "cpu":
            _deterministic(True)
        model = Surrogate(spec, data.y_train).to(dev)
        trainer, note = choose_trainer(spec, sum(p.numel() for p in model.net.parameters()))
        x_hold = torch.as_tensor(data.x_holdout, device=dev)
        slopes = slope_targets(spec, model, data.x_train, data.y_train)[0] if spec.derivatives.fit else None
        if slopes is not None and trainer != "lm":
            raise PipelineError(f"{spec.name}: derivatives.fit needs the LM trainer")
        gated = slopes if slopes is not None and spec.derivatives.gate else None
        refiner = Refiner(spec, model, gated) if spec.reference.callable and t.refine_rounds > 0 else None
        result = TrainResult(model, device=str(dev), trainer=trainer, note=note)
        start = time.perf_counter()
        bar = tqdm(
            total=t.max_steps,
            desc=f"train {spec.name} ({trainer}, {dev.type})",
            disable=not progress,
            unit="step",
            mininterval=0.5,
            leave=True,
        )
        return cls(
            spec, model, dev, trainer, initial=len(data.x_train), x_hold=x_hold, y_hold=data.y_holdout,
            x_train=data.x_train, y_train=data.y_train, slopes=slopes, refiner=refiner, result=result, bar=bar,
            start=start,
        )  # fmt: skip

    @property
    def gated_slopes(self) -> SlopeTargets | None:
        return self.slopes if self.slopes is not None and self.spec.derivatives.gate else None

    def holdout_ratio(self) -> float:
        """Worst gate ratio on the held-out samples; with a derivative gate being fitted, also the slopes' ratio
        on the fitted points (verify checks the slopes on the grid or domain sample later)."""
        with torch.no_grad():
            ratio = worst_ratio(self.spec, self.model(self.x_hold).cpu().numpy(), self.y_hold)
            if self.gated_slopes is not None:
                ratio = max(ratio, float(slope_ratios(self.model.net, self.gated_slopes).max()))
        return ratio


def _optimize(run: _Run) -> str:
    """One round: optimizer steps on the current samples, checking the held-out gates every check_every steps (and
    at the last step), until stop_reason gives a reason; returns it."""
    t = run.spec.training
    u = run.model.features(torch.as_tensor(run.x_train, device=run.dev))
    z = run.model.targets(torch.as_tensor(run.y_train, device=run.dev))
    steps = TRAINERS[run.trainer](run.model, u, z, t, run.slopes)
    reason, round_start = "", run.step
    while not reason:
        loss, stuck = next(steps)
        run.step += 1
        run.losses.append(loss)
        run.bar.update(1)
        run.bar.set_postfix(loss=f"{loss:.3e}", refresh=False)
        seconds = time.perf_counter() - run.start
        last = run.step >= t.max_steps or stuck or seconds > t.max_seconds
        if run.step % t.check_every == 0 or last:
            ratio = run.holdout_ratio()
            met = ratio <= t.stop_margin
            run.result.history.append(
                {"step": run.step, "seconds": round(seconds, 4), "loss": loss, "gates_met": met, "holdout_ratio": ratio}
            )
            refining = run.refiner is not None
            check = Check(met, stuck, run.step, seconds, round_start, run.rounds, refining, run.result.history)
            reason = stop_reason(check, t)
    return reason


def _refine(run: _Run, reason: str) -> str:
    """After a round that ended for `reason`: look for the model's worst points. Returns the run's final reason when
    training ends here (gates met there too, or refinement rounds used up); else adds reference samples around the
    worst points and returns ""."""
    t = run.spec.training
    check = run.refiner.check(run.model)
    entry = {
        "event": "refine",
        "round": run.rounds + 1,
        "step": run.step,
        "samples": len(run.x_train),
        "worst_ratio": round(check["ratio"], 6),
        "holdout_ratio": round(run.holdout_ratio(), 6),
        "worst_at": check["worst_at"],
        "added": 0,
    }
    run.result.history.append(entry)
    if reason == "gates met" and check["ratio"] <= t.refine_margin:
        return "gates met"  # on the held-out samples and at the worst points the check found
    if run.rounds == t.refine_rounds:
        return f"{reason}; refinement rounds used up"
    if run.step >= t.max_steps:  # gates met on the held-out samples at the last step, not at the worst points found
        return "step budget"
    X_new, Y_new = run.refiner.new_samples(check, _round_size(run.spec, run.initial))
    run.x_train, run.y_train = np.concatenate([run.x_train, X_new]), np.concatenate([run.y_train, Y_new])
    if run.slopes is not None:  # the new samples are fitted for their slopes too: they sit where the error was worst
        run.slopes = run.slopes.extended(slope_targets(run.spec, run.model, X_new, Y_new, like=run.slopes)[0])
    entry["added"] = len(X_new)
    run.rounds += 1
    return ""


def _finish(run: _Run, reason: str) -> TrainResult:
    """The result: why and when training stopped, on how many samples and rows, how well the training set is fitted."""
    result, spec = run.result, run.spec
    result.stop_reason = reason
    result.steps, result.seconds = run.step, time.perf_counter() - run.start
    result.train_samples = len(run.x_train)
    result.rows = len(run.x_train) * len(spec.outputs) + (0 if run.slopes is None else run.slopes.rows())
    with torch.no_grad():
        prediction = run.model(torch.as_tensor(run.x_train, device=run.dev)).cpu().numpy()
        result.train_ratio = worst_ratio(spec, prediction, run.y_train)
    losses = run.losses
    result.improving = len(losses) >= 2 and losses[-1] < 0.9 * losses[-1 - max(1, len(losses) // 5)]
    run.model.cpu()
    return result


def _plateau(history: list[dict], round_start: int, window: int = 100) -> bool:
    """The held-out error improved by less than 1 % over the last `window` steps of this round: more steps on
    these samples will not help (the training loss may still creep down while the network overfits them)."""
    steps = [h for h in history if "loss" in h and h["step"] > round_start]
    if not steps or steps[-1]["step"] - steps[0]["step"] < window:
        return False
    cut = steps[-1]["step"] - window
    before = min(h["holdout_ratio"] for h in steps if h["step"] <= cut)
    return min(h["holdout_ratio"] for h in steps if h["step"] > cut) > 0.99 * before


def _round_size(spec: Spec, initial: int) -> int:
    """Samples added per refinement round: a tenth of the initial design, at least 20 per input."""
    return max(20 * len(spec.inputs), initial // 10)


def probe_points(spec: Spec) -> int:
    """The refiner's Sobol probes: as many points as verification checks, the grid's where there is one (1-2
    inputs), otherwise verification.points."""
    g = spec.sampling.grid
    return g ** len(spec.inputs) if g else spec.verification.points


class Refiner:
    """Finds where the model is worst and adds reference samples there (adaptive sampling).

    A check is verification's own, on a probe set of its own. The probe set is built as verification's sample is
    (data.domain_points: a Sobol sample as large as verification's, probe_points, the corners, the faces and the
    edges, the edge points halfway between verification's) from a seed that neither training nor verification uses;
    the search from its worst points is verification's (verify.search_worst: the same starts per output and error
    kind, simplexes and tolerances). Weaker checks let training stop on models that verification then failed:
    friedel passed a search of training's own at 0.33 of its gate where verification's found 1.57, and a probe set
    without edges at 0.44 where verification found 1.13, at an edge of its 8-input box. New samples are the worst
    probe points, the optima of the searches that failed the check, and jittered neighbours of both (clipped into
    the unit cube, so the neighbours of a face point stay near that face).

    With a derivative gate being fitted (`slopes`), a probe point's ratio is the larger of its value and its slope
    ratio, so that samples (which are fitted for their slopes too) go where either is worst.
    """

    def __init__(self, spec: Spec, model: Surrogate, slopes: SlopeTargets | None = None):
        from . import data as data_mod

        self.spec, self.data = spec, data_mod
        sized = data_mod.budget(spec)  # a costly reference: as many probe points as verification.budget buys
        n_probes = sized["probe_points"] if sized else probe_points(spec)
        U, _ = data_mod.domain_points(spec, spec.sampling.seed + 3, n_probes, between=True)
        X = data_mod.from_unit(spec, U)
        Y = data_mod.evaluate(spec, X, "refinement probe points")
        ok = np.isfinite(Y).all(axis=1)
        self.U, self.X, self.Y = U[ok], X[ok], Y[ok]
        self.rng = np.random.default_rng(spec.sampling.seed + 5)
        self.slopes = self.slope_rows = None
        if slopes is not None:
            self.slopes, kept = slope_targets(spec, model, self.X, self.Y, like=slopes)
            self.slope_rows = np.flatnonzero(kept)

    def ratios(self, P: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Per point: the largest pointwise error / threshold over outputs and gates."""
        r = np.zeros(len(Y))
        for metric, threshold in self.spec.gates.items():
            for k in range(Y.shape[1]):
                r = np.maximum(r, pointwise(P[:, k], Y[:, k], KIND[metric]) / threshold)
        return r

    def check(self, model: Surrogate) -> dict:
        """The worst gate ratio on the probe set and at the optima of verification's own worst-point search
        (verify.search_worst) started from it, where that ratio was found, and what new_samples needs."""
        dev = next(model.parameters()).device

        def predict(X: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.as_tensor(X, device=dev)).cpu().numpy()

        P = predict(self.X)
        r = self.ratios(P, self.Y)
        if self.slopes is not None:
            r[self.slope_rows] = np.maximum(r[self.slope_rows], slope_ratios(model.net, self.slopes).cpu().numpy())
        r = np.nan_to_num(r, nan=np.inf)
        found = search_worst(self.spec, predict, self.U, self.Y, P)
        found["ratio"] = self.ratios(predict(found["X"]).reshape(found["Y"].shape), found["Y"])
        searched = float(found["ratio"].max(initial=0.0))
        worst = max(float(r.max()), searched)
        at = found["X"][int(np.argmax(found["ratio"]))] if searched >= r.max() else self.X[int(np.argmax(r))]
        return {
            "ratio": worst,
            "probe_ratios": r,
            "found": found,
            "worst_at": dict(zip(self.spec.input_names, np.round(at, 6).tolist())),
        }

    def new_samples(self, check: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
        """About n new samples around the worst points: (X, Y) with the reference's values."""
        worst = np.argsort(-check["probe_ratios"], kind="stable")[: max(1, n // 4)]
        found, spec = check["found"], self.spec
        # the searches' optima where the check failed, worst first: one search runs per output and error kind, and
        # samples at the optimum of an output already well inside its gate would only dilute the ones that matter
        failed = [
            i for i in np.argsort(-found["ratio"], kind="stable") if found["ratio"][i] > spec.training.refine_margin
        ]
        failed = failed[: 2 * spec.verification.searches]
        centres = np.concatenate([self.U[worst], found["U"][failed]])
        X_known = np.concatenate([self.X[worst], found["X"][failed]])
        Y_known = np.concatenate([self.Y[worst], found["Y"][failed]])
        jitter = np.clip(
            np.repeat(centres, 3, axis=0) + self.rng.normal(0, 0.03, (3 * len(centres), centres.shape[1])), 0.0, 1.0
        )
        X_jit = self.data.from_unit(self.spec, jitter)
        Y_jit = self.data.evaluate(self.spec, X_jit, "refinement samples")
        ok = np.isfinite(Y_jit).all(axis=1)
        return np.concatenate([X_known, X_jit[ok]]), np.concatenate([Y_known, Y_jit[ok]])


@torch.no_grad()
def parameter_jacobian(net: torch.nn.Sequential, u: torch.Tensor, outputs: torch.Tensor | None = None) -> torch.Tensor:
    """d net(u)_k / d theta for every sample and output k (of `outputs` only, if given), shape (N * n_out, P), by
    explicit backpropagation.

    Rows in the order of (net(u) - z).flatten(), columns in the order of net.parameters() (W row-major, then b).
    Written out for the Linear/activation stack because vmap(jacrev(...)) builds the same matrix 10-20x slower.
    """
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    acts = [m for m in net if not isinstance(m, torch.nn.Linear)]
    inputs, pre = [u], []
    for linear, act in zip(linears[:-1], acts):
        pre.append(linear(inputs[-1]))
        inputs.append(act(pre[-1]))
    n, m_all = len(u), linears[-1].out_features
    rows = torch.eye(m_all, dtype=u.dtype, device=u.device)
    rows = rows if outputs is None else rows[outputs]
    m = len(rows)
    J = torch.empty(n * m, sum(p.numel() for p in net.parameters()), dtype=u.dtype, device=u.device)
    G = rows.expand(n, m, m_all)  # d out_k / d (pre-activation of layer l)
    end = J.shape[1]
    for l in range(len(linears) - 1, -1, -1):
        W = linears[l].weight
        start = end - W.numel() - W.shape[0]
        torch.mul(
            G[..., :, None],
            inputs[l][:, None, None, :],  # d out / d W: G x (layer input)
            out=J[:, start : start + W.numel()].view(n, m, W.shape[0], W.shape[1]),
        )
        J[:, start + W.numel() : end].view(n, m, W.shape[0]).copy_(G)  # d out / d b
        end = start
        if l > 0:
            G = (G @ W) * _activation_slope(acts[l - 1], pre[l - 1])[:, None, :]
    return J


def _activation_slope(act: torch.nn.Module, a: torch.Tensor) -> torch.Tensor:
    return activation_of(act).slope(a)


def lm_steps(
    model: Surrogate,
    u: torch.Tensor,
    z: torch.Tensor,
    memory_gb: float = 1.0,
    slopes: SlopeTargets | None = None,
    threads: int = 1,
):
    """Levenberg-Marquardt on the flat parameter vector; yields (loss, stuck) after each step.

    JᵀJ and Jᵀr are sums over blocks of rows (block_samples), built `threads` blocks at a time and added in block
    order. A block is one thread's work from start to end, and its size depends only on the problem, so the bytes are
    the same whatever `threads` is and however busy the machine. Blocks of a few thousand rows stay in cache between
    the Jacobian and its product; memory_gb bounds them, and the blocks in flight with their P x P products (fewer
    threads where they would not fit: the bytes do not change); the P x P system itself must fit (choose_trainer).

    `slopes` (u_d, t, w, h, ...) adds derivative rows: for every point n of u_d, output k and input i, the residual
    w[n, k, i] * ((net(u_d + h e_i) - net(u_d - h e_i))_k / 2h - t[n, k, i]), whose parameter Jacobian is the same
    difference of parameter Jacobians (outputs whose weights are all zero, the report_only ones, get no rows). A
    central difference of the network itself is exact to O(h²), far inside any derivative gate, and costs two more
    Jacobian blocks per input instead of second derivatives.
    """
    net = model.net
    sizes = [p.numel() for p in net.parameters()]
    theta = torch.cat([p.detach().flatten() for p in net.parameters()])
    n_params, n_out = len(theta), z.shape[1]
    cpu = u.device.type == "cpu"
    chunk = block_samples(n_out, n_params, memory_gb, cpu)
    if slopes is not None:
        u_d, h = slopes.u, slopes.h
        fitted = torch.nonzero(torch.any(slopes.w != 0, dim=2).any(dim=0))[:, 0]  # report_only outputs: no rows
        t_d, w_d = slopes.t[:, fitted], slopes.w[:, fitted]
        steps = [
            torch.zeros_like(u_d[:1]).index_fill_(1, torch.tensor([i], device=u_d.device), h)
            for i in range(u_d.shape[1])
        ]
        offset, per_point = len(u) * n_out, len(fitted) * u_d.shape[1]
    blocks = [("values", i, min(i + chunk, len(u))) for i in range(0, len(u), chunk)]
    if slopes is not None and per_point:  # none where every output is report_only
        c = block_samples(per_point, n_params, memory_gb, cpu)
        blocks += [("slopes", i, min(i + c, len(u_d))) for i in range(0, len(u_d), c)]
    in_flight = 8 * (3 * max(chunk * n_out, BLOCK_ROWS) + n_params) * n_params  # a block, its temporaries, its JᵀJ
    threads, pool = max(1, min(threads, int(memory_gb * 1e9 // in_flight))), None
    if cpu and threads > 1:
        # OpenMP's thread count is per thread, and a new thread starts with one per core: each block thread sets one
        pool = ThreadPoolExecutor(min(threads, len(blocks)), initializer=torch.set_num_threads, initargs=(1,))

    def load(params: torch.Tensor) -> None:
        with torch.no_grad():
            for p, new in zip(net.parameters(), params.split(sizes)):
                p.copy_(new.view(p.shape))

    def slope_rows(ud: torch.Tensor, td: torch.Tensor, wd: torch.Tensor) -> torch.Tensor:
        """Derivative residuals of a chunk of slope points, rows in the order (n, m, d)."""
        r = torch.stack([(net(ud + e) - net(ud - e))[:, fitted] / (2 * h) for e in steps], dim=2)
        return ((r - td) * wd).flatten()

    def slope_jacobian(ud: torch.Tensor, wd: torch.Tensor) -> torch.Tensor:
        """The parameter Jacobian of slope_rows (the residuals themselves are not needed for it)."""
        J = torch.empty(len(ud), len(fitted), len(steps), n_params, dtype=ud.dtype, device=ud.device)
        for i, e in enumerate(steps):  # written in place: the block is the largest thing an LM step allocates
            torch.sub(
                parameter_jacobian(net, ud + e, fitted).view(len(ud), len(fitted), -1),
                parameter_jacobian(net, ud - e, fitted).view(len(ud), len(fitted), -1),
                out=J[:, :, i],
            )
        J.mul_((wd / (2 * h))[..., None])
        return J.reshape(-1, n_params)

    def residuals(params: torch.Tensor) -> torch.Tensor:
        load(params)
        with torch.no_grad():
            pred = net(u)
            assert pred.shape == z.shape, f"prediction {tuple(pred.shape)} vs target {tuple(z.shape)}"
            r = (pred - z).flatten()
            if slopes is not None:
                r = torch.cat([r, slope_rows(u_d, t_d, w_d)])
        return r

    def block(kind: str, i: int, j: int, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(JᵀJ, Jᵀr) of one block of rows: samples i:j of u, or slope points i:j of u_d."""
        with torch.no_grad():  # grad mode is per thread
            if kind == "values":
                J, rows = parameter_jacobian(net, u[i:j]), r[i * n_out : j * n_out]
            else:
                J, rows = slope_jacobian(u_d[i:j], w_d[i:j]), r[offset + i * per_point : offset + j * per_point]
            return gram(J), J.T @ rows

    def normal_equations(params: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        load(params)
        JtJ = torch.zeros(n_params, n_params, dtype=params.dtype, device=params.device)
        Jtr = torch.zeros(n_params, dtype=params.dtype, device=params.device)
        run = pool.map if pool is not None else map
        for k in range(0, len(blocks), threads):  # `threads` blocks in flight: memory stays bounded
            for G, g in run(lambda b: block(*b, r), blocks[k : k + threads]):
                JtJ += G  # in block order, whichever thread finished first
                Jtr += g
        return JtJ, Jtr

    mu, nu = 1e-3, 2.0
    r = residuals(theta)
    loss = float(torch.mean(r**2))
    try:
        while True:
            JtJ, Jtr = normal_equations(theta, r)
            stuck = True
            while mu < 1e10:
                delta = damped_solve(JtJ, Jtr, mu)
                r_new = residuals(theta - delta)
                loss_new = float(torch.mean(r_new**2))
                if math.isfinite(loss_new) and loss_new < loss:
                    mu, nu = next_damping(mu, gain_ratio(loss, loss_new, len(r), delta, JtJ, Jtr, mu)), 2.0
                    theta, r, loss, stuck = theta - delta, r_new, loss_new, False
                    break
                mu, nu = mu * nu, nu * 2
            load(theta)
            yield loss, stuck
    finally:
        if pool is not None:
            pool.shutdown()


BLOCK_ROWS = 4096
"""rows of an LM block: on water's 664 parameters 4,096-row blocks built JᵀJ ~8 % faster than one 16,000-row block
(and 1,024-row blocks 30 % slower), as the block stays in cache between its Jacobian and its product"""


def block_samples(rows_per_sample: int, n_params: int, memory_gb: float, cpu: bool = True) -> int:
    """Samples per LM block: BLOCK_ROWS rows on the CPU, fewer if their Jacobian and two temporaries of its size
    would not fit in memory_gb (a GPU takes as many as fit: its products gain from size, not cache)."""
    fits = int(memory_gb * 1e9 / 3 / (8 * n_params * rows_per_sample))
    return max(1, min(BLOCK_ROWS // rows_per_sample, fits) if cpu else fits)


def gain_ratio(
    loss: float, loss_new: float, rows: int, delta: torch.Tensor, JtJ: torch.Tensor, Jtr: torch.Tensor, mu: float
) -> float:
    """The loss decrease a step achieved over the one its linear model predicted (losses are means over `rows`).

    The linear model r(θ - δ) ≈ r - Jδ predicts the sum of squares falls by 2δᵀJᵀr - δᵀJᵀJδ; with (JᵀJ + μI) δ = Jᵀr
    that is δᵀ(Jᵀr + μδ), a sum of two non-negative terms.
    """
    predicted = float(delta @ (mu * delta + Jtr)) / rows
    return (loss - loss_new) / max(predicted, 1e-300)


def next_damping(mu: float, rho: float) -> float:
    """Nielsen's update after an accepted step (H. B. Nielsen, "Damping parameter in Marquardt's method", IMM
    DTU, 1999): scale μ by max(1/3, 1 - (2ρ - 1)³), so a step that did what the model predicted (ρ near 1) cuts μ
    threefold, a poor one (ρ near 0) nearly keeps it. A rejected step multiplies μ by ν, and ν doubles each time.
    On friedel this took 1.04 solves a step instead of 1.8 with the fixed /3 and x4, and the held-out error fell
    as far in 50 s as it had in 80 s."""
    return max(mu * max(1 / 3, 1 - (2 * rho - 1) ** 3), 1e-12)


def gram(J: torch.Tensor) -> torch.Tensor:
    """JᵀJ, the bulk of an LM step once there are a thousand parameters. On the CPU through numpy, whose matmul
    recognises a matrix times its own transpose and calls BLAS's symmetric rank-k update (dsyrk: half the
    multiply-adds, the lower triangle copied from the upper) and, unlike scipy's wrapper of dsyrk, releases the GIL,
    so that lm_steps' threads build their blocks at once."""
    if J.device.type != "cpu":
        return J.T @ J
    a = J.numpy()
    return torch.from_numpy(a.T @ a)


def damped_solve(JtJ: torch.Tensor, Jtr: torch.Tensor, mu: float) -> torch.Tensor:
    """(JᵀJ + μI)⁻¹ Jᵀr by Cholesky (the matrix is symmetric positive definite for μ > 0), by LU should rounding
    have made it indefinite."""
    A = JtJ.clone()
    A.diagonal().add_(mu)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(Jtr[:, None], L)[:, 0]
    return torch.linalg.solve(A, Jtr)


@dataclass
class SlopeTargets:
    """What derivative fitting (derivatives.fit) needs at its points, in the network's own units."""

    u: torch.Tensor
    """(N, d) network inputs"""
    t: torch.Tensor
    """(N, m, d) the reference's slopes dz/du"""
    w: torch.Tensor
    """(N, m, d) residual weights: a slope error at the derivative gate counts as a value error at the value gates"""
    share: torch.Tensor
    """(N, m, d) turns a dz/du error into its share of the derivative gate"""
    h: float
    """central-difference step of the network in u"""
    rms: np.ndarray
    """(m, d) the rms of dy/dx over the initial design, which the gate is relative to"""
    tol: torch.Tensor
    """(m,) the value gates in the network's output units"""

    def rows(self) -> int:
        """LM residual rows: one per point, fitted output (weights not all zero) and input."""
        fitted = int(torch.any(self.w != 0, dim=2).any(dim=0).sum())
        return len(self.u) * fitted * self.u.shape[1]

    def extended(self, other: "SlopeTargets") -> "SlopeTargets":
        """These points and other's, with this design's rms and tolerances."""
        cat = {f: torch.cat([getattr(self, f), getattr(other, f)]) for f in ("u", "t", "w", "share")}
        return replace(self, **cat)

    def model_slopes(self, net: torch.nn.Module) -> torch.Tensor:
        """The network's dz/du at these points by central differences of step h: (N, m, d)."""
        eye = torch.eye(self.u.shape[1], dtype=self.u.dtype, device=self.u.device) * self.h
        return torch.stack([(net(self.u + e) - net(self.u - e)) / (2 * self.h) for e in eye], dim=2)


def slope_targets(
    spec: Spec, model: Surrogate, X: np.ndarray, y_train: np.ndarray, like: SlopeTargets | None = None
) -> tuple[SlopeTargets, np.ndarray]:
    """The reference's slopes at X for lm_steps, and the mask of the points of X kept. `like`: targets of the
    initial design, whose rms and value tolerances new points (refinement samples, probe points) share."""
    from . import derivatives

    u, t, share, rms, ok = derivatives.training_targets(spec, model, X, None if like is None else like.rms)
    tol = value_tolerance(spec, model, y_train).to(share.device) if like is None else like.tol
    w = spec.derivatives.weight * tol[None, :, None] * share
    return SlopeTargets(u, t, w, share, spec.derivatives.step, rms, tol), ok


def slope_ratios(net: torch.nn.Module, slopes: SlopeTargets) -> torch.Tensor:
    """Per point: the largest slope error (over outputs x inputs) as a share of the derivative gate."""
    with torch.no_grad():
        return torch.amax(torch.abs(slopes.model_slopes(net) - slopes.t) * slopes.share, dim=(1, 2))


def value_tolerance(spec: Spec, model: Surrogate, y: np.ndarray) -> torch.Tensor:
    """Per output: the tightest value gate in the network's output units (standardized, log where transformed)."""
    typical = np.median(np.abs(y), axis=0)
    tol = np.full(len(spec.outputs), np.inf)
    for k, o in enumerate(spec.outputs):
        for metric, g in spec.gates.items():
            relative = metric in ("max_rel", "mean_rel")
            if o.transform == "log":
                g_t = g if relative else g / typical[k]
            else:
                g_t = g * typical[k] if relative else g
            tol[k] = min(tol[k], g_t / float(model.out_std[k]))
    return torch.as_tensor(tol)


def adam_steps(model: Surrogate, u: torch.Tensor, z: torch.Tensor, t):
    """Minibatch Adam with cosine decay of the learning rate; yields (loss, stuck) after each step."""
    lr, batch_size = t.options.lr, t.options.batch_size  # AdamOptions, or LMOptions (LM gives way to Adam)
    opt = torch.optim.Adam(model.net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.max_steps, eta_min=lr * 1e-3)
    gen = torch.Generator(device="cpu").manual_seed(t.seed)
    n = len(u)
    order, pos = torch.randperm(n, generator=gen), 0
    while True:
        if pos + batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos : pos + batch_size].to(u.device)
        pos += batch_size
        opt.zero_grad(set_to_none=True)
        loss = mse(model.net(u[idx]), z[idx])
        loss.backward()
        opt.step()
        sched.step()
        yield float(loss.detach()), False


def threads_for(t: TrainingSpec) -> int:
    from .cores import training_threads

    return training_threads(t.threads)


TRAINERS = {
    "lm": lambda model, u, z, t, slopes: lm_steps(model, u, z, t.options.lm_memory_gb, slopes, threads_for(t)),
    "adam": lambda model, u, z, t, slopes: adam_steps(model, u, z, t),
}
"""training.trainer -> fn(model, features u, targets z, spec.training, slope targets or None): a generator that
takes one step per next() and yields (loss, stuck); the loop above owns rounds, stopping and refinement. The
trainer's own settings are spec.training.options, the dataclass registered under its name in
trainer_options.OPTIONS (torch-free, so that spec.py can check them)."""


def summary(spec: Spec, data: Dataset, result: TrainResult) -> dict:
    """What the run's metrics.json records."""
    losses = [h["loss"] for h in result.history if "loss" in h]
    return {
        "surrogate": spec.name,
        "trainer": result.trainer,
        "device": result.device,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
        "stop_reason": result.stop_reason,
        "final_loss": losses[-1] if losses else None,
        "parameters": sum(p.numel() for p in result.model.net.parameters()),
        "initial_samples": len(data.x_train),
        "train_samples": result.train_samples,
        "rows": result.rows,
        "refinement_rounds": sum(1 for h in result.history if h.get("event") == "refine" and h["added"]),
        "train_ratio": result.train_ratio,
        "improving": result.improving,
        "note": result.note,
        "dropped_rows": data.dropped_rows,
        "reference_failures": data.failed,
    } | ({"noise": result.noise["estimates"]} if result.noise else {})
