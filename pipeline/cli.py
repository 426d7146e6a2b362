"""`python -m pipeline COMMAND`: list, train, verify, export, report, codegen, fmu, search, gate.

Each command is a thin wrapper over pipeline.build.api (the Python API): it prints what the API returns and turns
its exceptions into exit statuses.

Exit status: 0 success; 1 a surrogate fails its accuracy gates; 2 bad input (spec, name, data, files), reported
as one line naming what is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .runtime.files import EXPORTED_DIR

EXIT_GATES_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def per_surrogate(fn):
    """Run a command once per surrogate, in `--jobs` processes at once when there are several (cores.py: one
    process a surrogate, seeded, so the bytes do not depend on the jobs or the order they finish in).

    Each process runs the command for one name with its output captured, and the output is printed whole when that
    surrogate is done, so that the lines of two surrogates never interleave. The exit status is the worst one.
    """

    def run(args) -> int:
        from .build import cores

        n = cores.jobs(getattr(args, "jobs", 1), len(args.names))
        if n == 1:
            return fn(args)
        return _pool(args, n)

    run.__doc__, run.__wrapped__ = fn.__doc__, fn
    return run


def _pool(args, n: int) -> int:
    import concurrent.futures as cf
    import multiprocessing
    import time

    names = _longest_first(args.names)
    print(f"{args.command}: {', '.join(Path(n).stem for n in names)} in {n} processes (--jobs 1 runs them in turn)")
    start, status = time.monotonic(), 0
    with cf.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_one_job) as pool:
        running = {pool.submit(_captured, _with(args, names=[name], quiet=True, fn=None)): name for name in names}
        try:
            while running:
                done, _ = cf.wait(running, timeout=60, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    code, text = future.result()
                    print(text, end="", flush=True)
                    status = max(status, code)
                    del running[future]
                if not done:  # a line a minute, --quiet or not: a CI log shows the run is alive
                    print(
                        f"{args.command}: {', '.join(Path(n).stem for n in running.values())} not done yet ({time.monotonic() - start:.0f} s)"
                    )
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()  # Ctrl-C: no worker left behind
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return status


def _one_job() -> None:
    """In a pool's worker: it may not start pools of its own (cores.py)."""
    from .build import cores

    os.environ[cores.ENV] = "1"


def _with(args, **changes) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **changes})


def _captured(args) -> tuple[int, str]:
    """The command of `args`, in this process, with its printed output returned instead; a user error is its one
    line and exit status 2. (The command is looked up by name: a function is pickled by its name.)"""
    import contextlib
    import io

    from .errors import CardError, LoaderError, PipelineError

    fn = globals()[f"cmd_{args.command}"].__wrapped__
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = fn(args)
        except (PipelineError, LoaderError, CardError) as e:
            print(f"error: {e}")
            code = EXIT_BAD_INPUT
    return code, out.getvalue()


def _longest_first(names: list[str]) -> list[str]:
    """Start the surrogates that take longest first, so that the last to finish starts early: by the work of one
    LM step (rows x parameters², rows counting fitted slopes) times the step budget. Unreadable specs go first,
    where their error shows at once."""
    from .build import spec as spec_mod

    def work(name: str) -> float:
        try:
            s = spec_mod.load(name)
        except Exception:  # noqa: BLE001 - reported by the command itself
            return float("inf")
        d, m = len(s.inputs), len(s.outputs)
        p = spec_mod._parameters(s.model.widths, d, m)
        rows = s.sampling.count * (m + (m - len(s.derivatives.report_only)) * d * s.derivatives.fit)
        return rows * p**2 * s.training.max_steps

    return sorted(names, key=work, reverse=True)


def _options(args) -> dict:
    """How the reference is called: cached under the runs folder unless --no-cache, progress unless --quiet, on a
    Dask cluster with --scheduler."""
    return {
        "cache": not getattr(args, "no_cache", False),
        "progress": not getattr(args, "quiet", False),
        "scheduler": getattr(args, "scheduler", None) or "",
    }


def cmd_list(args) -> int:
    from .build import api

    names = api.surrogates()
    w = max(map(len, names)) + 1
    for name in names:
        s = api.load_spec(name)
        exported = Path(args.out or EXPORTED_DIR, f"{name}.onnx").is_file()
        ins = ", ".join(
            f"{i.name} [{i.unit}] {i.min:g}..{i.max:g}{' (log)' if i.scale == 'log' else ''}" for i in s.inputs
        )
        ins += "".join(f"; {b.input} {'<=' if b.max else '>='} {b.label}" for b in s.domain)
        outs = ", ".join(f"{o.name} [{o.unit}]" for o in s.outputs)
        print(
            f"{name:<{w}} {s.description}\n{'':<{w}} in: {ins}\n{'':<{w}} out: {outs}"
            f"{'   (exported)' if exported else ''}"
        )
    return 0


@per_surrogate
def cmd_train(args) -> int:
    """Train each spec; exit 1 (after saving the checkpoint) for a run whose budget ended short of its gates."""
    from .build import api

    status = 0
    for name in args.names:
        done = api.train(name, args.runs, device=args.device, **_options(args))
        print(done)  # steps, time, stop reason, samples, checkpoint folder
        if done.short is not None:  # the held-out samples fail the gates: the table and what to try next
            print(
                f"{done.short.table()}\n{done.spec.name}: the training budget ended short of the gates; next step: "
                f"{done.short.advice}"
            )
            status = EXIT_GATES_FAILED
    return status


@per_surrogate
def cmd_verify(args) -> int:
    from .build import api

    status = 0
    for name in args.names:
        report = api.verify(name, args.runs, **_options(args))
        print(report)  # the table, and the next step when a gate fails
        if not report.passed:
            status = EXIT_GATES_FAILED
    return status


@per_surrogate
def cmd_export(args) -> int:
    from .build import api

    for name in args.names:
        done = api.export(name, args.runs, args.out or EXPORTED_DIR, **_options(args))
        if done.written:
            print(
                f"{done.card.name}: wrote {done.path} and {done.path.with_suffix('.json').name} "
                f"(sha256 {done.card.onnx_sha256[:12]}…, parity and gates checked)"
            )
        print(f"{done.card.name}: report in {done.report}")
    return 0


def cmd_report(args) -> int:
    from .build import api

    for name in args.names:
        folder = api.report(name, args.runs, args.out or EXPORTED_DIR)
        print(f"{folder.name.removesuffix('_report')}: report in {folder}")
    return 0


def cmd_codegen(args) -> int:
    from .build import api

    for name in args.names:
        for written in api.generate_code(name, args.lang, args.dest, args.precision, args.out or EXPORTED_DIR):
            print(f"{name}: wrote {written}")
    return 0


def cmd_fmu(args) -> int:
    from .build import api

    for name in args.names:
        written, holds = api.fmu(name, args.dest, args.out or EXPORTED_DIR)
        print(f"{name}: wrote {written} ({holds})")
    return 0


def cmd_search(args) -> int:
    from .build import api, search

    for name in args.names:
        spec = api.load_spec(name)
        summary = api.search(
            name,
            args.trials,
            workers=args.workers,
            storage=args.storage,
            seed=args.seed,
            heartbeat=args.heartbeat,
            trial_seconds=args.trial_seconds,
            apply=args.apply,
            progress=not args.quiet,
        )
        print(
            f"\n{spec.name}: {summary['completed_trials']} completed trials; Pareto front "
            f"(runs/search/{spec.name}/pareto.md, pareto.png):\n{search.table(summary['pareto_front'])}"
        )
        best = summary["cheapest_passing"]
        if not best:
            print(f"{spec.name}: no trial passes every gate; the spec is left as it is")
            continue
        print(
            f"{spec.name}: cheapest passing network {'-'.join(map(str, best['widths']))} {best['activation']} "
            f"({best['flops']} FLOPs/sample; the spec's: {summary['current_flops']})"
        )
        if summary["applied"]:
            print(f"{spec.name}: rewrote {spec.path}; now `make train export bench SURROGATES={spec.name}`")
        elif args.apply:
            print(f"{spec.name}: the spec's network is already the cheapest passing one; left as it is")
    return 0


@per_surrogate
def cmd_gate(args) -> int:
    """Train from scratch with the spec's seeds, then verify: the CI gate."""
    trained = cmd_train(_with(args, jobs=1))
    return max(trained, cmd_verify(_with(args, jobs=1)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--runs", type=Path, default=None, help="folder of training runs (default: runs/)")
    common.add_argument("--out", type=Path, default=None, help="folder of exported models (default: exported/)")
    named = argparse.ArgumentParser(add_help=False, parents=[common])
    named.add_argument("names", nargs="+", metavar="NAME", help="surrogate name(s), or path(s) to spec .toml files")
    parallel = argparse.ArgumentParser(add_help=False)
    parallel.add_argument(
        "--no-cache",
        action="store_true",
        help="evaluate the reference afresh, keeping nothing in runs/NAME/reference_cache.sqlite",
    )
    parallel.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="a Dask scheduler (tcp://host:8786) whose workers evaluate the reference's costly batches "
        "(default: the spec's reference.scheduler, else this machine's cores; needs the [cluster] extra)",
    )
    parallel.add_argument(
        "--jobs",
        type=int,
        default=0,
        help="surrogates handled at once, one process each (default 0: one per core; 1: in turn)",
    )
    training = argparse.ArgumentParser(add_help=False)
    training.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="override the spec's device")
    training.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_parser("list", parents=[common], help="show the shipped surrogates").set_defaults(fn=cmd_list)
    sub.add_parser("train", parents=[named, parallel, training], help="train and save a checkpoint").set_defaults(
        fn=cmd_train
    )
    sub.add_parser(
        "verify", parents=[named, parallel], help="check the accuracy gates (exit 1 on failure)"
    ).set_defaults(fn=cmd_verify)
    sub.add_parser("export", parents=[named, parallel], help="write exported/NAME.onnx and its card").set_defaults(
        fn=cmd_export
    )
    sub.add_parser("report", parents=[named], help="write the plots and summary beside an exported model").set_defaults(
        fn=cmd_report
    )
    gen = sub.add_parser("codegen", parents=[named], help="generate C99 or Fortran 2008 code from exported/NAME.onnx")
    gen.add_argument("--lang", required=True, help="a name in codegen.LANGUAGES (c, fortran, or one you registered)")
    gen.add_argument(
        "--precision",
        choices=["float", "double"],
        default="float",
        help="C: compute in float like onnxruntime (default) or in double (Fortran: always double)",
    )
    gen.add_argument("--dest", type=Path, default=Path("generated"), help="output folder (default: generated/)")
    gen.set_defaults(fn=cmd_codegen)
    fm = sub.add_parser(
        "fmu", parents=[named], help="build an FMI 2.0 FMU (co-simulation and model exchange) from exported/NAME.onnx"
    )
    fm.add_argument("--dest", type=Path, default=Path("runs/fmu"), help="output folder (default: runs/fmu/)")
    fm.set_defaults(fn=cmd_fmu)
    se = sub.add_parser("search", parents=[named], help="Optuna search for the cheapest network that passes the gates")
    se.add_argument("--trials", type=int, default=30, help="completed trials the study should hold (default 30)")
    se.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default 1)")
    se.add_argument("--storage", default=None, help="database URL (default sqlite:///runs/search/NAME.db)")
    se.add_argument("--seed", type=int, default=None, help="sampler seed (default: the spec's training seed)")
    se.add_argument("--apply", action="store_true", help="rewrite the spec with the cheapest passing network")
    se.add_argument("--trial-seconds", type=float, default=60.0, help="training time cap per trial")
    se.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        help="seconds between worker heartbeats; a trial silent for twice that is failed and retried",
    )
    se.add_argument("--quiet", action="store_true", help="no progress bar")
    se.set_defaults(fn=cmd_search)
    sub.add_parser(
        "gate", parents=[named, parallel, training], help="train from scratch, then verify (CI)"
    ).set_defaults(fn=cmd_gate)
    return p


def main(argv: list[str] | None = None) -> int:
    from .errors import CardError, LoaderError, PipelineError

    args = parser().parse_args(argv)
    try:
        status = args.fn(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
        return status
    except (PipelineError, LoaderError, CardError) as e:
        # LoaderError and CardError: a model that fails its integrity check (codegen, report) or a card that
        # cannot be read; they are ValueErrors for the loader's library users, and bad input here.
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`python -m pipeline list | head -1`): stop quietly, as other tools in a pipe do.
        # stdout is pointed at /dev/null so that the interpreter's last flush does not fail again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
