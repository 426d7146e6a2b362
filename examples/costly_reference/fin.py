"""A reference that genuinely costs: a straight fin with temperature-dependent conductivity, solved as a
boundary-value problem with scipy's solve_bvp (3 ms a call on the idle 2-core reference machine, up to 10 ms loaded).

Dimensionless: theta = (T - T_inf) / (T_base - T_inf), xi = x / L, conductivity k = k_0 (1 + beta theta),
    d/dxi [(1 + beta theta) dtheta/dxi] = mL^2 theta,   theta(0) = 1,
    (1 + beta theta) dtheta/dxi (1) = -Bi_tip theta(1)   (convection from the tip).
Output: the fin efficiency, eta = heat through the base / heat of a fin at the base temperature everywhere.
"""

import numpy as np
from scipy.integrate import solve_bvp


def efficiency(mL: float, beta: float, bi_tip: float) -> float:
    m2 = mL * mL
    xi = np.linspace(0.0, 1.0, 41)

    def rhs(x, y):
        theta, q = y  # q = (1 + beta theta) dtheta/dxi
        return np.vstack([q / (1.0 + beta * theta), m2 * theta])

    def bc(ya, yb):
        return np.array([ya[0] - 1.0, yb[1] + bi_tip * yb[0]])

    guess = np.vstack([np.cosh(mL * (1 - xi)) / np.cosh(mL), -mL * np.tanh(mL) * np.ones_like(xi)])
    sol = solve_bvp(rhs, bc, xi, guess, tol=1e-8, max_nodes=5000)
    if not sol.success:
        raise RuntimeError(f"solve_bvp: {sol.message}")
    q_base = -sol.sol(0.0)[1]
    return float(q_base / (m2 + bi_tip))  # ideal fin: the whole surface (and the tip) at the base temperature
