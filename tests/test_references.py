"""The reference functions agree with direct calls of the field's libraries, and the friedel box is what its spec
says: both single-phase flows turbulent, and the phases' properties never cross, at every corner."""

import itertools
import math
import tomllib

import numpy as np
import pytest

from pipeline import references
from pipeline.build.spec import SPECS_DIR

TURBULENT_RE = 1e4
"""the friedel box keeps Re_lo and Re_go at or above this: fully turbulent, far from fluids' laminar switch"""


def _box(name: str) -> dict[str, tuple[float, float]]:
    # Read the TOML directly: the box is what matters here, whatever the spec's sampling defaults
    raw = tomllib.loads((SPECS_DIR / f"{name}.toml").read_text())
    return {i["name"]: (float(i["min"]), float(i["max"])) for i in raw["inputs"]}


def _corners(box: dict) -> np.ndarray:
    return np.array(list(itertools.product(*box.values())), dtype=np.float64)


def _inner_points(box: dict, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = np.array(list(box.values())).T
    return lo * (hi / lo) ** rng.random((n, len(box)))  # all bounds positive: log-uniform


def test_rough_pipe_nu_matches_ht_and_fluids():
    from fluids.friction import Colebrook
    from ht.conv_internal import turbulent_Gnielinski

    box = _box("rough_pipe_nu")
    assert list(box) == ["Re", "Pr", "eD"]
    X = np.vstack([_corners(box), _inner_points(box, 8, seed=0)])
    got = references.rough_pipe_nu(X)
    assert got.shape == (len(X), 1)
    with np.errstate(over="ignore"):
        want = [turbulent_Gnielinski(Re, Pr, Colebrook(Re, eD)) for Re, Pr, eD in X]
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12)
    # roughness matters: at the roughest wall Nu is well above the smooth-pipe reference at the same Re, Pr
    smooth = references.gnielinski(np.array([[1e6, 5.0]]))[0, 0]
    assert references.rough_pipe_nu(np.array([[1e6, 5.0, 0.05]]))[0, 0] > 2 * smooth
    assert references.rough_pipe_nu(np.array([[1e6, 5.0, 1e-6]]))[0, 0] == pytest.approx(smooth, rel=2e-3)


def test_friedel_matches_fluids():
    from fluids.two_phase import Friedel

    box = _box("friedel")
    assert list(box) == ["m", "x", "rhol", "rhog", "mul", "mug", "sigma", "D"]
    X = np.vstack([_corners(box)[::37], _inner_points(box, 8, seed=1)])
    got = references.friedel(X)
    assert got.shape == (len(X), 1)
    want = [
        Friedel(m, x, rhol, rhog, mul, mug, sigma, D, roughness=0.0, L=1.0)
        for m, x, rhol, rhog, mul, mug, sigma, D in X
    ]
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12)


def test_friedel_box_is_turbulent_and_physical_at_every_corner():
    from fluids.friction import LAMINAR_TRANSITION_PIPE

    box = _box("friedel")
    corners = _corners(box)
    assert corners.shape == (256, 8)
    m, x, rhol, rhog, mul, mug, sigma, D = corners.T
    re_lo = 4 * m / (math.pi * D * mul)
    re_go = 4 * m / (math.pi * D * mug)
    assert TURBULENT_RE > LAMINAR_TRANSITION_PIPE  # so the box never reaches fluids' switch to 64/Re
    assert re_lo.min() >= TURBULENT_RE, f"Re_lo = {re_lo.min():.0f} at corner {corners[re_lo.argmin()]}"
    assert re_go.min() >= TURBULENT_RE, f"Re_go = {re_go.min():.0f} at corner {corners[re_go.argmin()]}"
    # Re is monotonic in each of m, D, mu, so the corners bound it over the whole box; likewise the checks below
    assert box["rhog"][1] < box["rhol"][0]  # gas lighter than liquid everywhere
    assert box["mug"][1] < box["mul"][0]  # Friedel's H has (1 - mug/mul)^0.7
    assert box["mul"][1] / box["mug"][0] < 1000  # Friedel's stated validity
    assert 0 < box["x"][0] and box["x"][1] < 1
    y = references.friedel(corners)
    assert np.isfinite(y).all() and (y > 0).all()


def test_water_T_max_is_saturation_minus_2_K():
    from CoolProp.CoolProp import PropsSI

    p = np.array([1e5, 1e6, 5e6, 1.6e7])
    got = references.water_T_max(p)
    assert got.shape == p.shape
    np.testing.assert_allclose(got, [PropsSI("T", "P", v, "Q", 0, "Water") - 2.0 for v in p], rtol=1e-12)
    assert references.water_T_max(np.array([[1e5], [1e6]])).shape == (2, 1)  # keeps any array shape
    assert float(references.water_T_max(1e5)) == pytest.approx(370.756, abs=1e-3)  # 100 C at 1.01325 bar
    # at the bound itself the liquid properties exist (PropsSI raises only within 1e-4 % of saturation)
    rho = PropsSI("Dmass", "T", got, "P", p, "Water")
    assert np.isfinite(rho).all() and (rho > 500).all()


def test_coolprop_conductivity_has_a_slope_jump_at_its_critical_enhancement_onset():
    """Why water's dk/dT and dk/dp are reported, not gated: IAPWS 2011 (CoolProp) switches its critical
    enhancement on with a square-root onset along T ~ 430-439 K, so dk/dT jumps there (at 12 bar: from -2.9e-4
    to +2.7e-4 W/m/K^2 between two 0.025 K steps; finer steps see larger jumps, the onset's slope is infinite), a
    slope no smooth surrogate can follow."""
    from CoolProp.CoolProp import PropsSI

    T = np.linspace(430.0, 431.5, 61)
    k = PropsSI("L", "T", T, "P", np.full_like(T, 1.2e6), "Water")
    slope = np.diff(k) / np.diff(T)
    assert slope[0] < -2.5e-4 and slope.max() > 2e-4  # falling, then a jump to rising within the window
    smooth = np.diff(PropsSI("L", "T", T - 20.0, "P", np.full_like(T, 1.2e6), "Water")) / np.diff(T)
    assert np.ptp(smooth) < 0.05 * np.ptp(slope)  # 20 K lower the same window is smooth
