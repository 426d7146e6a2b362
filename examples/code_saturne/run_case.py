"""The water surrogate inside code_saturne: a heated channel of pressurized water, run twice and compared.

    python examples/code_saturne/run_case.py [--steps 400] [--work runs/code_saturne] [--model exported/water.onnx]

A 2-D channel (0.5 m long, 10 mm high, one cell thick: 100 x 20 = 2,000 cells) takes water in at 290 K and
0.05 m/s; both walls are held at 360 K, so the water's temperature spans 70 K, over which its viscosity falls by a
factor of three and its density by 3 %. The pressure is 10 bar (inside both the shipped water model's range,
5-100 bar, and the re-shipped one's, 1-160 bar). code_saturne 6.0 solves the laminar flow and the temperature
with water's density, viscosity, specific heat and conductivity as fields that cs_user_physical_properties.c
(SRC/) fills each time step:

  run 1, "surrogate": from the C that `python -m pipeline codegen water --lang c` generates, one batch per step;
  run 2, "reference": from CoolProp, tabulated in T at 10 bar finely enough that interpolation adds < 1e-6
                      relative (checked here, against CoolProp at every interval's midpoint).

Both runs start from the same state and take the same time steps; at the end the temperature and density of every
cell are compared. The script ends with one line:

  code_saturne: cells=N iterations=M max_abs_dT_K=X max_rel_drho=Y property_time_share=Z%

Z is the surrogate run's wall time inside cs_user_physical_properties over its time from the first to the last
time step. The valid range is read from the model card (its box, narrowed by any domain bound such as
T <= T_sat(p) - 2 K); cells outside it are evaluated at the nearest valid temperature and counted (the policy is
stated in SRC/cs_user_physical_properties.c). Exit status: 0, or 2 with one line saying what went wrong
(code_saturne missing, a failed build or run: the line names the log to read).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import codegen  # noqa: E402
from pipeline.card import Card  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.runtime import domain  # noqa: E402

HERE = Path(__file__).resolve().parent
LENGTH, HEIGHT, THICKNESS = 0.5, 0.01, 0.001  # m
NX, NY = 100, 20  # cells along and across the channel
P0 = 1.0e6  # Pa
T_IN, T_WALL, U_IN = 290.0, 360.0, 0.05  # K, K, m/s
DT = 0.05  # s: a cell Courant number of 0.5
TABLE_RTOL = 1e-6  # the reference table's interpolation error, relative
NEEDED = {"inputs": ("T", "p"), "outputs": ("rho", "mu", "k", "cp")}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def write_mesh(path: Path) -> int:
    """A structured hexahedral channel mesh in Gmsh 2.2 ASCII format (read natively by code_saturne's
    preprocessor); returns the number of cells. Node (i, j, k) is at (i dx, j dy, k dz)."""
    xs, ys, zs = np.linspace(0, LENGTH, NX + 1), np.linspace(0, HEIGHT, NY + 1), np.array([0.0, THICKNESS])

    def node(i: int, j: int, k: int) -> int:
        return 1 + i + (NX + 1) * (j + (NY + 1) * k)

    lines = ["$MeshFormat", "2.2 0 8", "$EndMeshFormat", "$Nodes", str((NX + 1) * (NY + 1) * 2)]
    lines += [
        f"{node(i, j, k)} {float(xs[i])!r} {float(ys[j])!r} {float(zs[k])!r}"
        for k in range(2)
        for j in range(NY + 1)
        for i in range(NX + 1)
    ]
    lines += ["$EndNodes", "$Elements", str(NX * NY)]
    e = 0
    for j in range(NY):
        for i in range(NX):
            e += 1
            corners = [
                node(i, j, 0),
                node(i + 1, j, 0),
                node(i + 1, j + 1, 0),
                node(i, j + 1, 0),
                node(i, j, 1),
                node(i + 1, j, 1),
                node(i + 1, j + 1, 1),
                node(i, j + 1, 1),
            ]
            lines.append(f"{e} 5 2 1 1 " + " ".join(map(str, corners)))  # type 5: 8-node hexahedron
    lines += ["$EndElements", ""]
    path.write_text("\n".join(lines))
    return NX * NY


def valid_temperatures(card: Card) -> tuple[float, float]:
    """The surrogate's valid temperature range at P0: the card's box for T, narrowed by its domain bounds."""
    names = card.input_names
    T, p = (card.inputs[names.index(n)] for n in ("T", "p"))
    if not p.min <= P0 <= p.max:
        fail(f"the case pressure {P0:g} Pa is outside the model's p range [{p.min:g}, {p.max:g}] Pa")
    lo, hi = float(T.min), float(T.max)
    for b in card.bounds:
        if b["input"] != "T":
            continue
        if b["of"] != "p":
            fail(f"the card bounds T by {b['of']}; this case only knows bounds of T by p")
        limit = float(domain.bound_value(b, np.array([P0]))[0])
        lo, hi = (lo, min(hi, limit)) if b["side"] == "max" else (max(lo, limit), hi)
    if not lo < hi:
        fail(f"the model has no valid temperature at {P0:g} Pa (its range there is [{lo:g}, {hi:g}] K)")
    return lo, hi


def coolprop(T: np.ndarray) -> np.ndarray:
    """(len(T), 4): rho [kg/m3], mu [Pa s], cp [J/kg/K], k [W/m/K] of water at (T, P0), from the surrogate's own
    reference (pipeline/build/references.py: CoolProp), reordered for the case."""
    from pipeline.references import water

    T = np.asarray(T, dtype=np.float64).reshape(-1)
    return water(np.stack([T, np.full_like(T, P0)], axis=1))[:, [0, 1, 3, 2]]


def reference_table(t_min: float, t_max: float) -> tuple[str, float, float]:
    """water_table.h: CoolProp at evenly spaced temperatures, refined until linear interpolation is within
    TABLE_RTOL at every interval's midpoint. Returns the header text, the spacing and the error reached."""
    n = 1000
    while True:
        T = np.linspace(t_min, t_max, n)
        table = coolprop(T)
        mid = coolprop(0.5 * (T[1:] + T[:-1]))
        err = float(np.max(np.abs(0.5 * (table[1:] + table[:-1]) / mid - 1.0)))
        if err < TABLE_RTOL:
            break
        n = 2 * n - 1
    rows = ",\n".join("    {" + ", ".join(repr(float(v)) for v in r) + "}" for r in table)
    text = (
        f"/* Water at p = {P0:g} Pa from CoolProp: rho [kg/m3], mu [Pa s], cp [J/kg/K], k [W/m/K] at {n} "
        f"temperatures\n * evenly spaced from {t_min!r} K to {t_max!r} K. Written by run_case.py; linear "
        f"interpolation is within {err:.1e}\n * relative of CoolProp at every interval's midpoint. */\n"
        f"#define REF_N {n}\n#define REF_T_MIN {t_min!r}\n#define REF_DT {(t_max - t_min) / (n - 1)!r}\n"
        f"static const double ref_table[REF_N][4] = {{\n{rows}\n}};\n"
    )
    return text, (t_max - t_min) / (n - 1), err


def case_header(card: Card, surrogate: bool, steps: int, t_range: tuple[float, float]) -> str:
    """water_case.h: the case's numbers, and where the card puts each input and output."""
    ins, outs = card.input_names, card.output_names
    rho0, mu0, cp0, k0 = (float(v) for v in coolprop(np.array([T_IN]))[0])
    eps = 1e-6
    defs = {
        "CASE_USE_SURROGATE": int(surrogate),
        "CASE_NT_MAX": steps,
        "CASE_DT": DT,
        "CASE_P0": P0,
        "CASE_T_IN": T_IN,
        "CASE_T_WALL": T_WALL,
        "CASE_U_IN": U_IN,
        "CASE_RHO0": rho0,
        "CASE_MU0": mu0,
        "CASE_CP0": cp0,
        "CASE_LAMBDA0": k0,
        "CASE_T_MIN": t_range[0],
        "CASE_T_MAX": t_range[1],
        "CASE_N_INPUTS": len(ins),
        "CASE_N_OUTPUTS": len(outs),
        "CASE_IN_T": ins.index("T"),
        "CASE_IN_P": ins.index("p"),
        "CASE_OUT_RHO": outs.index("rho"),
        "CASE_OUT_MU": outs.index("mu"),
        "CASE_OUT_CP": outs.index("cp"),
        "CASE_OUT_K": outs.index("k"),
        "CASE_EPS_STR": f'"{eps:.9f}"',
        "CASE_L_MINUS_EPS_STR": f'"{LENGTH - eps:.9f}"',
        "CASE_H_MINUS_EPS_STR": f'"{HEIGHT - eps:.9f}"',
        "CASE_W_MINUS_EPS_STR": f'"{THICKNESS - eps:.9f}"',
    }
    body = "\n".join(f"#define {k} {v!r}" if isinstance(v, float) else f"#define {k} {v}" for k, v in defs.items())
    return (
        f"/* Written by examples/code_saturne/run_case.py for model '{card.name}' (sha256 of the .onnx in "
        f"water.h): do not edit.\n * CASE_T_MIN..CASE_T_MAX is the card's valid temperature range at CASE_P0, "
        f"domain bounds included. */\n#ifndef WATER_CASE_H\n#define WATER_CASE_H\n{body}\n#endif\n"
    )


SUPPORTED_VERSION = "6.0"
"""the user sources use code_saturne 6.0's C API (Debian 12's package); later versions changed it"""


def code_saturne() -> str:
    exe = shutil.which("code_saturne")
    if exe is None:
        fail("code_saturne is not installed (Debian: apt-get install code-saturne)")
    return exe


def version() -> str:
    """code_saturne's version, e.g. '6.0.2' ('' if it cannot be read)."""
    env = {**os.environ, "USER": os.environ.get("USER") or "user"}
    done = subprocess.run([code_saturne(), "info", "--version"], env=env, capture_output=True, text=True)
    words = (done.stdout or "").split()
    return words[-1] if done.returncode == 0 and words else ""


def prepare(study: Path, name: str, sources: dict[str, str], mesh: Path) -> Path:
    """A fresh case STUDY/NAME with our user sources in SRC/ and the mesh named in DATA/cs_user_scripts.py."""
    case = study / name
    if case.exists():
        shutil.rmtree(case)
    env = {**os.environ, "USER": os.environ.get("USER") or "user"}
    done = subprocess.run([code_saturne(), "create", "-c", name], cwd=study, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"code_saturne create failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    for src in sorted((HERE / "SRC").iterdir()):
        shutil.copy(src, case / "SRC" / src.name)
    for file, text in sources.items():
        (case / "SRC" / file).write_text(text)
    scripts = (case / "DATA" / "REFERENCE" / "cs_user_scripts.py").read_text()
    for old, new in (
        ("domain.meshes = None", f"domain.meshes = [{mesh.name!r}]"),
        ("domain.mesh_dir = None", f"domain.mesh_dir = {str(mesh.parent)!r}"),
    ):
        if old not in scripts:
            fail(f"cs_user_scripts.py of this code_saturne has no '{old}': cannot name the mesh")
        scripts = scripts.replace(old, new)
    (case / "DATA" / "cs_user_scripts.py").write_text(scripts)
    return case


def run(case: Path) -> dict:
    """Run the case (one process) and return its case_summary.txt as a dict, plus the fields' path."""
    env = {**os.environ, "USER": os.environ.get("USER") or "user", "OMP_NUM_THREADS": "1"}
    log = case / "run.log"
    with open(log, "w") as out:
        done = subprocess.run(
            [code_saturne(), "run", "--id", "run", "-n", "1"],
            cwd=case / "DATA",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    resu = case / "RESU" / "run"
    summary = resu / "case_summary.txt"
    if done.returncode != 0 or not summary.is_file():
        for name in ("compile.log", "run_solver.log", "listing", "error"):
            if (resu / name).is_file() and (name != "run_solver.log" or done.returncode != 0):
                fail(f"code_saturne run in {case} failed (exit {done.returncode}): see {resu / name} and {log}")
        fail(f"code_saturne run in {case} failed (exit {done.returncode}): see {log}")
    info = dict(line.split("=", 1) for line in summary.read_text().split())
    fields = np.genfromtxt(resu / "case_fields.csv", delimiter=",", names=True)
    return {
        "cells": int(info["cells"]),
        "iterations": int(info["iterations"]),
        "property_seconds": float(info["property_seconds"]),
        "solver_seconds": float(info["solver_seconds"]),
        "clipped_cells": int(info["clipped_cells"]),
        "fields": fields,
        "resu": resu,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="time steps per run (default 400: 20 s, two transits)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "code_saturne", help="the study's folder")
    ap.add_argument("--model", type=Path, default=ROOT / "exported" / "water.onnx", help="the exported water model")
    args = ap.parse_args(argv)
    found = version()
    if not found.startswith(SUPPORTED_VERSION + "."):
        fail(
            f"code_saturne {found or '(unknown version)'} is installed; this case is written for "
            f"{SUPPORTED_VERSION} (Debian 12: apt-get install code-saturne)"
        )
    if not args.model.is_file():
        fail(f"no exported model at {args.model}: run `python -m pipeline export water`")
    try:
        graph = codegen.read_graph(args.model)
    except PipelineError as e:
        fail(str(e))
    card = graph.card
    for kind, names in NEEDED.items():
        missing = [n for n in names if n not in [v.name for v in getattr(card, kind)]]
        if missing:
            fail(f"{args.model.name}: the case needs {kind} {', '.join(names)}; the card lacks {', '.join(missing)}")
    t_range = valid_temperatures(card)
    if not t_range[0] <= T_IN < T_WALL <= t_range[1]:
        print(
            f"note: the case's temperatures {T_IN:g}-{T_WALL:g} K reach beyond the model's valid range "
            f"[{t_range[0]:g}, {t_range[1]:g}] K at {P0:g} Pa: cells outside it are evaluated at the nearest valid "
            f"temperature, and counted"
        )

    study = args.work.resolve()
    (study / "MESH").mkdir(parents=True, exist_ok=True)
    mesh = study / "MESH" / "channel.msh"
    cells = write_mesh(mesh)
    header, source = codegen.c_code(graph)
    table, spacing, table_err = reference_table(*t_range)
    print(
        f"mesh: {cells} cells ({NX} x {NY} x 1), {LENGTH} m x {HEIGHT} m; water at {P0:g} Pa, inlet {T_IN:g} K, "
        f"walls {T_WALL:g} K; surrogate valid for T in [{t_range[0]:g}, {t_range[1]:g}] K at this pressure"
    )
    print(
        f"reference table: CoolProp every {spacing:.4f} K, interpolation error {table_err:.1e} relative "
        f"(< {TABLE_RTOL:g})"
    )
    results = {}
    for name, surrogate in (("surrogate", True), ("reference", False)):
        sources = {"water_case.h": case_header(card, surrogate, args.steps, t_range)}
        sources.update(
            {f"{graph.name}.h": header, f"{graph.name}.c": source} if surrogate else {"water_table.h": table}
        )
        case = prepare(study, name.upper(), sources, mesh)
        r = results[name] = run(case)
        print(
            f"{name}: {r['cells']} cells, {r['iterations']} time steps, {r['solver_seconds']:.2f} s, "
            f"{r['property_seconds']:.3f} s in cs_user_physical_properties, {r['clipped_cells']} cell "
            f"evaluation(s) outside the valid range; results in {os.path.relpath(r['resu'])}"
        )
    s, ref = results["surrogate"], results["reference"]
    fs, fr = s["fields"], ref["fields"]
    if s["cells"] != ref["cells"] or not (np.allclose(fs["x"], fr["x"]) and np.allclose(fs["y"], fr["y"])):
        fail("the two runs' cells differ")
    dT = float(np.max(np.abs(fs["T"] - fr["T"])))
    drho = float(np.max(np.abs(fs["rho"] - fr["rho"]) / fr["rho"]))
    print(f"temperature: {fr['T'].min():.2f} to {fr['T'].max():.2f} K in the reference run")
    share = 100.0 * s["property_seconds"] / s["solver_seconds"]
    print(
        f"code_saturne: cells={s['cells']} iterations={s['iterations']} max_abs_dT_K={dT:.3e} "
        f"max_rel_drho={drho:.3e} property_time_share={share:.2f}%"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
