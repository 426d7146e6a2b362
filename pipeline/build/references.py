"""Reference functions: the truth each shipped surrogate learns.

Each takes an array X of shape (N, n_inputs) in the spec's input order and physical units and returns an array of
shape (N, n_outputs). The engineering references call the field's own libraries (fluids, ht, CoolProp) rather
than re-typing their formulas, so a surrogate is checked against the code engineers already trust.

Each library call is written once, here, in a one-point form (colebrook_fd, gnielinski_nu, water_state) that the
array functions loop over, and that the benchmarks time and the examples call: the reference that is timed is the
reference that is gated.
"""

from __future__ import annotations

import functools

import numpy as np


def paraboloid(X: np.ndarray) -> np.ndarray:
    """z = x² + y², the seed problem.

    Inputs x, y (dimensionless), valid on [0, 1]²; output z (dimensionless).

    >>> paraboloid(np.array([[0.0, 0.0], [1.0, 2.0]])).ravel().tolist()
    [0.0, 5.0]
    """
    X = np.asarray(X, dtype=np.float64)
    return (X[:, 0] ** 2 + X[:, 1] ** 2)[:, None]


def colebrook(X: np.ndarray) -> np.ndarray:
    """Darcy friction factor of turbulent pipe flow, from the Colebrook equation, solved by `fluids`.

        1/√f = -2 log10( (ε/D)/3.7 + 2.51/(Re √f) )

    Source: C. F. Colebrook, "Turbulent flow in pipes...", J. Inst. Civil Eng. 11 (1939) 133-156; solved exactly by
    `fluids.friction.Colebrook` (Lambert W form, numerical where that overflows).
    Inputs: Re [-] 4e3..1e8, eD = ε/D [-] 1e-6..0.05. Output: fd [-].

    >>> round(float(colebrook(np.array([[1e5, 1e-4]]))[0, 0]), 6)
    0.018514
    """
    with np.errstate(over="ignore"):  # fluids overflows on purpose at large eD*Re, then solves numerically
        return np.array([colebrook_fd(Re, eD) for Re, eD in np.asarray(X, dtype=np.float64)]).reshape(-1, 1)


def colebrook_fd(Re: float, eD: float) -> float:
    """One point of colebrook(): the Darcy friction factor, `fluids.friction.Colebrook(Re, eD)`.

    >>> round(colebrook_fd(1e5, 1e-4), 6)
    0.018514
    """
    from fluids.friction import Colebrook

    return Colebrook(Re, eD)


def gnielinski(X: np.ndarray) -> np.ndarray:
    """Nusselt number of turbulent flow in a smooth pipe, Gnielinski (1976), from `ht`; friction factor from `fluids`.

        Nu = (f/8)(Re - 1000) Pr / (1 + 12.7 (f/8)^½ (Pr^⅔ - 1)),  f = Darcy friction factor of a smooth pipe

    Source: V. Gnielinski, Int. Chem. Eng. 16 (1976) 359-368, via `ht.conv_internal.turbulent_Gnielinski`; f from
    `fluids.friction.friction_factor(Re, eD=0)` (Clamond's solution of Colebrook).
    Inputs: Re [-] 3e3..5e6, Pr [-] 0.5..2000. Output: Nu [-].

    >>> round(float(gnielinski(np.array([[1e5, 1.2]]))[0, 0]), 2)
    247.86
    """
    return np.array([gnielinski_nu(Re, Pr) for Re, Pr in np.asarray(X, dtype=np.float64)]).reshape(-1, 1)


def gnielinski_nu(Re: float, Pr: float) -> float:
    """One point of gnielinski(): `ht`'s Gnielinski with `fluids`' smooth-pipe friction factor.

    >>> round(gnielinski_nu(1e5, 1.2), 2)
    247.86
    """
    from fluids.friction import friction_factor
    from ht.conv_internal import turbulent_Gnielinski

    return turbulent_Gnielinski(Re, Pr, friction_factor(Re, eD=0.0))


WATER_PROPERTIES = ("Dmass", "viscosity", "conductivity", "Cpmass")


def water(X: np.ndarray) -> np.ndarray:
    """Liquid water density, dynamic viscosity, thermal conductivity and isobaric heat capacity, from CoolProp.

    CoolProp's reference equations: IAPWS-95 (Wagner & Pruß 2002) for density and heat capacity, IAPWS 2008 for
    viscosity and IAPWS 2011 for conductivity, on one `CoolProp.AbstractState` ("HEOS", the equations PropsSI
    uses): one flash per point for all four properties, where PropsSI flashes once per property. The values are
    PropsSI's bit for bit (checked on 20,000 points of the domain) at 3.3x the speed; this reference's cost is most
    of water's training and verification time. A point CoolProp cannot solve gives inf, as PropsSI's does.
    Inputs: T [K] 275..620 and at most T_sat(p) - 2 K (water_T_max), p [Pa] 1e5..1.6e7: subcooled liquid.
    Outputs: rho [kg/m³], mu [Pa s], k [W/m/K], cp [J/kg/K].

    >>> [float(f"{v:.5g}") for v in water(np.array([[300.0, 1e6]]))[0]]
    [996.96, 0.00085366, 0.61, 4178.1]
    """
    import CoolProp

    state, pt = _water_heos(), CoolProp.PT_INPUTS
    X = np.asarray(X, dtype=np.float64)
    Y = np.full((len(X), len(WATER_PROPERTIES)), np.inf)
    for i, (T, p) in enumerate(X.tolist()):
        try:
            state.update(pt, p, T)
        except ValueError:
            continue
        Y[i] = state.rhomass(), state.viscosity(), state.conductivity(), state.cpmass()
    return Y


@functools.cache
def _water_heos():
    """One HEOS AbstractState for water per process (building one costs about a millisecond)."""
    import CoolProp

    return CoolProp.AbstractState("HEOS", "Water")


def water_state(backend: str = "HEOS"):
    """water()'s properties at one point, the way a solver calls CoolProp: a function (T [K], p [Pa]) ->
    (rho, mu, k, cp) on one `CoolProp.AbstractState` of `backend` ("HEOS": the same equations as PropsSI;
    "BICUBIC&HEOS": tables built on first use, seconds).

    >>> [float(f"{v:.5g}") for v in water_state()(300.0, 1e6)]
    [996.96, 0.00085366, 0.61, 4178.1]
    """
    import CoolProp

    state = CoolProp.AbstractState(backend, "Water")

    def props(T: float, p: float) -> tuple[float, float, float, float]:
        state.update(CoolProp.PT_INPUTS, p, T)
        return state.rhomass(), state.viscosity(), state.conductivity(), state.cpmass()

    return props


def rough_pipe_nu(X: np.ndarray) -> np.ndarray:
    """Nusselt number of turbulent flow in a rough pipe: Gnielinski (1976) with the Colebrook friction factor.

        Nu = (f/8)(Re - 1000) Pr / (1 + 12.7 (f/8)^½ (Pr^⅔ - 1)),  1/√f = -2 log10( (ε/D)/3.7 + 2.51/(Re √f) )

    Source: V. Gnielinski, Int. Chem. Eng. 16 (1976) 359-368, via `ht.conv_internal.turbulent_Gnielinski`; f from
    `fluids.friction.Colebrook` (C. F. Colebrook, J. Inst. Civil Eng. 11 (1939) 133-156, solved exactly).
    Inputs: Re [-] 3e3..5e6, Pr [-] 0.5..2000, eD = ε/D [-] 1e-6..0.05. Output: Nu [-].

    >>> round(float(rough_pipe_nu(np.array([[1e5, 1.2, 1e-4]]))[0, 0]), 2)
    254.81
    """
    from ht.conv_internal import turbulent_Gnielinski

    X = np.asarray(X, dtype=np.float64)
    Re, Pr = X[:, 0], X[:, 1]
    # Colebrook is scalar-only (about 25 µs a call); Gnielinski's formula is plain arithmetic, so it takes arrays
    fd = colebrook(X[:, [0, 2]])[:, 0]
    return np.asarray(turbulent_Gnielinski(Re, Pr, fd), dtype=np.float64).reshape(-1, 1)


def friedel(X: np.ndarray) -> np.ndarray:
    """Frictional pressure gradient of two-phase gas-liquid flow in a smooth pipe, Friedel (1979), from `fluids`.

        dP/dz = φ_lo² (dP/dz)_lo,   φ_lo² = E + 3.24 F H / (Fr^0.0454 We^0.035),
        E = (1-x)² + x² ρl f_go / (ρg f_lo),  F = x^0.78 (1-x)^0.224,  H = (ρl/ρg)^0.91 (μg/μl)^0.19 (1 - μg/μl)^0.7

    with Fr and We of the homogeneous mixture, (dP/dz)_lo the gradient of the whole flow as liquid, and f_lo, f_go
    the Darcy friction factors of the whole flow as liquid and as gas (fluids' `friction_factor`: Clamond's
    solution of Colebrook, switching to 64/Re below Re = 2040; the shipped spec keeps both Re far above that).
    Source: L. Friedel, European Two Phase Flow Group Meeting, Ispra, Italy (1979), via
    `fluids.two_phase.Friedel(m, x, rhol, rhog, mul, mug, sigma, D, roughness=0, L=1)`.
    Inputs: m [kg/s] total mass flow, x [-] vapour quality, rhol, rhog [kg/m³], mul, mug [Pa s], sigma [N/m],
    D [m]. Output: dP/dz [Pa/m]. Valid for μl/μg < 1000 (Friedel's data); needs μg < μl.
    The shipped box (pipeline/specs/friedel.toml) says which ranges are covered and why.

    >>> round(float(friedel(np.array([[0.6, 0.1, 915.0, 2.67, 180e-6, 14e-6, 0.0487, 0.05]]))[0, 0]), 4)
    738.6501
    """
    from fluids.two_phase import Friedel

    X = np.asarray(X, dtype=np.float64)
    # Friedel is scalar-only (two friction factors a call, about 17 µs)
    return np.array([Friedel(*row, roughness=0.0, L=1.0) for row in X]).reshape(-1, 1)


def water_T_max(p) -> np.ndarray:
    """Highest temperature of the water surrogate's domain at pressure p: T_sat(p) - 2 K, from CoolProp.

    The 2 K margin keeps every point strictly liquid: PropsSI(T, P) raises within 1e-4 % of saturation, and cp
    steepens towards T_sat at high pressure. T_sat from IAPWS-95 (`PropsSI('T', 'P', p, 'Q', 0, 'Water')`).
    Input: p [Pa], a scalar or array, valid 1e5..1.6e7 (below the critical 2.2064e7). Output: T [K], p's shape.

    >>> [round(float(t), 3) for t in water_T_max(np.array([1e5, 1.6e7]))]
    [370.756, 618.505]
    """
    from CoolProp.CoolProp import PropsSI

    p = np.asarray(p, dtype=np.float64)
    return np.asarray(PropsSI("T", "P", p.reshape(-1), "Q", 0, "Water"), dtype=np.float64).reshape(p.shape) - 2.0
