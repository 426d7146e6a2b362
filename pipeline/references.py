"""Reference functions: the truth each shipped surrogate learns.

Each takes an array X of shape (N, n_inputs) in the spec's input order and physical units and returns an array of
shape (N, n_outputs). The engineering references call the field's own libraries (fluids, ht, CoolProp) rather
than re-typing their formulas, so a surrogate is checked against the code engineers already trust.
"""

from __future__ import annotations

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
    from fluids.friction import Colebrook
    with np.errstate(over="ignore"):  # fluids overflows on purpose at large eD*Re, then solves numerically
        return np.array([Colebrook(Re, eD) for Re, eD in np.asarray(X, dtype=np.float64)]).reshape(-1, 1)


def gnielinski(X: np.ndarray) -> np.ndarray:
    """Nusselt number of turbulent flow in a smooth pipe, Gnielinski (1976), from `ht`; friction factor from `fluids`.

        Nu = (f/8)(Re - 1000) Pr / (1 + 12.7 (f/8)^½ (Pr^⅔ - 1)),  f = Darcy friction factor of a smooth pipe

    Source: V. Gnielinski, Int. Chem. Eng. 16 (1976) 359-368, via `ht.conv_internal.turbulent_Gnielinski`; f from
    `fluids.friction.friction_factor(Re, eD=0)` (Clamond's solution of Colebrook).
    Inputs: Re [-] 3e3..5e6, Pr [-] 0.5..2000. Output: Nu [-].

    >>> round(float(gnielinski(np.array([[1e5, 1.2]]))[0, 0]), 2)
    247.86
    """
    from fluids.friction import friction_factor
    from ht.conv_internal import turbulent_Gnielinski
    return np.array([turbulent_Gnielinski(Re, Pr, friction_factor(Re, eD=0.0))
                     for Re, Pr in np.asarray(X, dtype=np.float64)]).reshape(-1, 1)


WATER_PROPERTIES = ("Dmass", "viscosity", "conductivity", "Cpmass")


def water(X: np.ndarray) -> np.ndarray:
    """Liquid water density, dynamic viscosity, thermal conductivity and isobaric heat capacity, from CoolProp.

    CoolProp's reference equations: IAPWS-95 (Wagner & Pruß 2002) for density and heat capacity, IAPWS 2008 for
    viscosity and IAPWS 2011 for conductivity, evaluated with `CoolProp.CoolProp.PropsSI` (vectorized over arrays).
    Inputs: T [K] 275..420, p [Pa] 5e5..1e7 (liquid throughout). Outputs: rho [kg/m³], mu [Pa s], k [W/m/K],
    cp [J/kg/K].

    >>> [float(f"{v:.5g}") for v in water(np.array([[300.0, 1e6]]))[0]]
    [996.96, 0.00085366, 0.61, 4178.1]
    """
    from CoolProp.CoolProp import PropsSI
    X = np.asarray(X, dtype=np.float64)
    return np.stack([PropsSI(prop, "T", X[:, 0], "P", X[:, 1], "Water") for prop in WATER_PROPERTIES], axis=1)
