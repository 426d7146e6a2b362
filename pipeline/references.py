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
