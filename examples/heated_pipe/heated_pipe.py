"""A solver that calls surrogates thousands of times: water heated along a pipe, marched segment by segment.

Water enters a pipe of diameter D and length L at T_in and p_in; the wall adds a uniform heat flux q. Each of N
segments needs the water's properties at the local bulk state (water), the Darcy friction factor (colebrook) and
the Nusselt number (gnielinski), then
    dT = q π D dx / (m cp),   dp = f (dx / D) ρ v² / 2,   h = Nu k / D,   T_wall = T + q / h.
The same march runs twice: with the exported surrogates (pipeline.loader, one sample per call, as a solver calls
them) and with the reference libraries (CoolProp, fluids, ht). It prints both answers, their difference and the
time each took. heated_pipe.c and heated_pipe.f90 run the same march on the generated C and Fortran code.

    python examples/heated_pipe/heated_pipe.py [--segments 2000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

D, L, ROUGHNESS = 0.02, 20.0, 4.5e-5  # m; commercial steel
M_DOT, Q_FLUX = 0.3, 5.0e4  # kg/s, W/m²
T_IN, P_IN = 300.0, 1.0e6  # K, Pa
AREA = math.pi * D * D / 4


def march(props, friction, nusselt, segments: int) -> dict[str, float]:
    """props(T, p) -> (rho, mu, k, cp); friction(Re, eD) -> fd; nusselt(Re, Pr) -> Nu."""
    T, p, dx, t_wall_max = T_IN, P_IN, L / segments, 0.0
    for _ in range(segments):
        rho, mu, k, cp = props(T, p)
        v = M_DOT / (rho * AREA)
        Re, Pr = rho * v * D / mu, mu * cp / k
        h = nusselt(Re, Pr) * k / D
        t_wall_max = max(t_wall_max, T + Q_FLUX / h)
        p -= friction(Re, ROUGHNESS / D) * dx / D * rho * v * v / 2
        T += Q_FLUX * math.pi * D * dx / (M_DOT * cp)
    return {"outlet_T_K": T, "pressure_drop_Pa": P_IN - p, "max_wall_T_K": t_wall_max}


def surrogates():
    """The exported surrogates, called one sample at a time through the loader's bound buffers."""
    from pipeline.loader import load

    water, colebrook, gnielinski = (load(ROOT / "exported" / f"{n}.onnx") for n in ("water", "colebrook", "gnielinski"))
    return (
        lambda T, p: water.point(T, p),
        lambda Re, eD: colebrook.point(Re, eD)[0],
        lambda Re, Pr: gnielinski.point(Re, Pr)[0],
    )


def references():
    """The surrogates' own references, one point a call (pipeline/build/references.py): CoolProp's AbstractState (HEOS),
    fluids' Colebrook, ht's Gnielinski with fluids' smooth-pipe friction."""
    from pipeline import references as ref

    return ref.water_state("HEOS"), ref.colebrook_fd, ref.gnielinski_nu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--segments", type=int, default=2000)
    args = p.parse_args()
    results = {}
    for label, make in (("surrogates", surrogates), ("references", references)):
        functions = make()  # imports and loading are not timed: only the march is
        t0 = time.perf_counter()
        results[label] = march(*functions, args.segments)
        results[label]["seconds"] = time.perf_counter() - t0
    s, r = results["surrogates"], results["references"]
    print(f"heated pipe, {args.segments} segments ({3 * args.segments} property/correlation calls each way)")
    print(f"{'':<18} {'surrogates':>14} {'references':>14} {'rel. diff':>10}")
    for key in ("outlet_T_K", "pressure_drop_Pa", "max_wall_T_K"):
        print(f"{key:<18} {s[key]:>14.6f} {r[key]:>14.6f} {abs(s[key] - r[key]) / abs(r[key]):>10.2e}")
    print(
        f"{'time [s]':<18} {s['seconds']:>14.4f} {r['seconds']:>14.4f} "
        f"({r['seconds'] / s['seconds']:.1f}x {'faster' if s['seconds'] < r['seconds'] else 'slower'} with surrogates)"
    )
    print("surrogates: " + " ".join(f"{k}={s[k]:.9g}" for k in ("outlet_T_K", "pressure_drop_Pa", "max_wall_T_K")))


if __name__ == "__main__":
    main()
