"""The water FMU in a small system simulation: a heated, stirred tank with a through-flow, co-simulated with FMPy.

    python -m pipeline fmu water --dest runs/fmu          # builds runs/fmu/water.fmu
    python examples/fmu/heated_tank.py [--fmu runs/fmu/water.fmu] [--plot runs/examples/fmu/heated_tank.png]

A 50-litre tank at 10 bar, full of water, takes in 0.1 kg/s at 290 K and overflows at its own temperature; a 20 kW
heater runs for the first 40 minutes. The tank's energy balance,

    m(T) cp(T) dT/dt = mdot cp(T) (T_in - T) + Q(t),      m(T) = rho(T) V,

is integrated here (Heun's method, 10 s steps) while the water properties come from the FMU through FMI 2.0
co-simulation calls (fmi2SetReal T and p, fmi2DoStep, fmi2GetReal rho and cp), as a system simulator would make
them. The same model is integrated once more with CoolProp's properties, and the difference is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # a script run from a checkout; `make venv` also installs the package (pip install -e .)
VOLUME, P, MDOT, T_IN = 0.05, 1.0e6, 0.1, 290.0  # m3, Pa, kg/s, K
HEATER_W, HEATER_OFF_S = 20e3, 2400.0  # W, s
DT, END = 10.0, 3600.0  # s


def heater(t: float) -> float:
    return HEATER_W if t < HEATER_OFF_S else 0.0


def integrate(properties) -> tuple[np.ndarray, np.ndarray]:
    """Heun's method on the tank's energy balance; properties(t, T) -> (rho, cp). Returns T and (rho, cp) over
    time, at DT intervals from 0 to END."""
    steps = int(round(END / DT))
    T = np.empty(steps + 1)
    props = np.empty((steps + 1, 2))
    T[0] = T_IN

    def dTdt(t, temp):
        rho, cp = properties(t, temp)
        return (MDOT * cp * (T_IN - temp) + heater(t)) / (rho * VOLUME * cp), (rho, cp)

    for n in range(steps):
        t = n * DT
        k1, props[n] = dTdt(t, T[n])
        k2, _ = dTdt(t + DT, T[n] + DT * k1)
        T[n + 1] = T[n] + 0.5 * DT * (k1 + k2)
    props[steps] = properties(END, T[steps])
    return T, props


class WaterFMU:
    """The FMU as a co-simulation slave: each call sets (T, p), does a step of the communication interval and
    reads (rho, cp), by the names in its modelDescription.xml."""

    def __init__(self, path: Path):
        from fmpy import extract, read_model_description
        from fmpy.fmi2 import FMU2Slave

        self.md = read_model_description(str(path))
        self.vr = {v.name: v.valueReference for v in self.md.modelVariables}
        self.unzipped = extract(str(path))
        self.slave = FMU2Slave(
            guid=self.md.guid,
            unzipDirectory=self.unzipped,
            modelIdentifier=self.md.coSimulation.modelIdentifier,
            instanceName="tank_water",
        )
        self.slave.instantiate()
        self.slave.setupExperiment(startTime=0.0)
        self.slave.enterInitializationMode()
        self.slave.exitInitializationMode()
        self.time = 0.0

    def __call__(self, t: float, T: float) -> tuple[float, float]:
        self.slave.setReal([self.vr["T"], self.vr["p"]], [T, P])
        if t > self.time:  # a communication step to the time of this call
            self.slave.doStep(currentCommunicationPoint=self.time, communicationStepSize=t - self.time)
            self.time = t
        rho, cp = self.slave.getReal([self.vr["rho"], self.vr["cp"]])
        return rho, cp

    def close(self):
        self.slave.terminate()
        self.slave.freeInstance()
        shutil.rmtree(self.unzipped, ignore_errors=True)


def coolprop(t: float, T: float) -> tuple[float, float]:
    """rho, cp from the water surrogate's own reference (pipeline/build/references.py: CoolProp)."""
    from pipeline.references import water

    rho, _, _, cp = water(np.array([[T, P]]))[0]
    return float(rho), float(cp)


def plot(path: Path, t, T_fmu, T_ref, props):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    axes[0].plot(t / 60, T_fmu, label="water.fmu (FMI 2.0 co-simulation)")
    axes[0].plot(t / 60, T_ref, "--", label="CoolProp")
    axes[0].axvline(HEATER_OFF_S / 60, color="grey", lw=0.8)
    axes[0].set_ylabel("tank T [K]")
    axes[0].legend()
    axes[1].plot(t / 60, props[:, 0])
    axes[1].set_ylabel("rho [kg/m3]")
    axes[2].plot(t / 60, props[:, 1])
    axes[2].set_ylabel("cp [J/kg/K]")
    axes[2].set_xlabel("time [min]  (heater off at the grey line)")
    fig.suptitle(f"Heated tank, {VOLUME * 1e3:g} L at {P / 1e5:g} bar, {MDOT:g} kg/s in at {T_IN:g} K")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fmu", type=Path, default=ROOT / "runs" / "fmu" / "water.fmu")
    ap.add_argument("--plot", type=Path, default=ROOT / "runs" / "examples" / "fmu" / "heated_tank.png")
    args = ap.parse_args(argv)
    if not args.fmu.is_file():
        print(
            f"error: no FMU at {args.fmu}: run `python -m pipeline fmu water --dest {args.fmu.parent}`", file=sys.stderr
        )
        return 2
    water = WaterFMU(args.fmu)
    try:
        T_fmu, props = integrate(water)
    finally:
        water.close()
    T_ref, _ = integrate(coolprop)
    t = np.arange(len(T_fmu)) * DT
    plot(args.plot, t, T_fmu, T_ref, props)
    print(
        f"heated tank: {len(t) - 1} steps of {DT:g} s through {args.fmu.name} (FMI 2.0 co-simulation); "
        f"T rises from {T_IN:g} K to {T_fmu.max():.2f} K and falls to {T_fmu[-1]:.2f} K; "
        f"max |T_fmu - T_coolprop| = {np.max(np.abs(T_fmu - T_ref)):.2e} K; plot in {os.path.relpath(args.plot)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
