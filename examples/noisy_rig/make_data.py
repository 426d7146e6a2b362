"""How rig.csv was made: 300 "rig measurements" of the Nusselt number of turbulent liquid flow heated in a smooth
pipe, with 4 % scatter.

The trend is a real correlation: Gnielinski's (`ht.conv_internal.turbulent_Gnielinski`, with the smooth-pipe
Darcy friction factor from `fluids.friction.friction_factor`) times Petukhov's viscosity correction for a heated
liquid, (μ_bulk/μ_wall)^0.11. Inputs are drawn log-uniformly over Re 3,000-100,000, Pr 0.7-100 and
μ_bulk/μ_wall 0.3-3 (a rig's operating points are not a grid), and every value gets log-normal scatter of 4 %
(seed 2026). Rerun to regenerate: `python examples/noisy_rig/make_data.py`; compare.py uses trend() as the truth.
"""

from pathlib import Path

import numpy as np
from fluids.friction import friction_factor
from ht.conv_internal import turbulent_Gnielinski

SCATTER = 0.04
ROWS = 300
LOW, HIGH = np.log([3e3, 0.7, 0.3]), np.log([1e5, 100.0, 3.0])


def trend(X: np.ndarray) -> np.ndarray:
    """The noise-free Nusselt number at rows of (Re, Pr, mu_ratio)."""
    return np.array(
        [turbulent_Gnielinski(Re, Pr, friction_factor(Re)) * ratio**0.11 for Re, Pr, ratio in np.asarray(X)]
    )


def rows(seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.exp(LOW + (HIGH - LOW) * rng.uniform(size=(ROWS, 3)))
    return X, trend(X) * np.exp(rng.normal(0.0, SCATTER, ROWS))


if __name__ == "__main__":
    X, y = rows()
    np.savetxt(
        Path(__file__).with_name("rig.csv"), np.c_[X, y], delimiter=",", header="Re,Pr,mu_ratio,Nu", comments="",
        fmt="%.6g",
    )  # fmt: skip
