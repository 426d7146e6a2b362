"""Real domains and real references: bounds that cut the box, references that fail, misbehave or share a name."""

import json
import re
import textwrap

import numpy as np
import pytest

from pipeline.build import data, spec
from pipeline.card import Card
from pipeline.cli import EXIT_BAD_INPUT
from pipeline.errors import PipelineError
from pipeline.runtime import domain

TWO_INPUTS = """
spec_version = 1
name = "{name}"
[reference]
callable = "{callable}"
vectorized = {vectorized}
{reference_extra}
[[inputs]]
name = "a"
unit = "K"
min = 1.0
max = 3.0
[[inputs]]
name = "b"
unit = "Pa"
min = 1.0
max = 10.0
scale = "log"
{domain}
[[outputs]]
name = "y"
unit = "1"
[sampling]
count = 400
holdout = 300
grid = 21
[model]
widths = [8, 8]
[training]
max_steps = 300
[gates]
max_abs = 5e-3
"""


def two_inputs(
    tmp_path,
    module_text: str | None = None,
    folder: str = ".",
    name: str = "t",
    callable_="ref:f",
    vectorized="true",
    reference_extra="",
    domain_="",
) -> str:
    where = tmp_path / folder
    where.mkdir(parents=True, exist_ok=True)
    if module_text is not None:
        (where / f"{callable_.partition(':')[0]}.py").write_text(textwrap.dedent(module_text))
    path = where / f"{name}.toml"
    path.write_text(
        TWO_INPUTS.format(
            name=name, callable=callable_, vectorized=vectorized, reference_extra=reference_extra, domain=domain_
        )
    )
    return str(path)


SMOOTH = """
import numpy as np
def f(X):
    return np.sin(X[:, 0]) * np.log(X[:, 1]) / 3
"""


# --- references that fail ------------------------------------------------------------------------------------------

RAISES = """
import math
def f(a, b):
    if a > 2.9 and b > 8.0:
        raise ValueError("math domain error")
    return math.sin(a) * math.log(b) / 3
"""


def test_failing_reference_is_one_line_naming_inputs_and_message(cli, tmp_path):
    status, _, err = cli("train", two_inputs(tmp_path, RAISES, vectorized="false"))
    assert status == EXIT_BAD_INPUT and err.count("\n") == 1
    assert "failed on" in err and "first at a=" in err and "ValueError: math domain error" in err
    assert 'on_error = "drop"' in err


@pytest.mark.slow  # trains through the command line
def test_failing_points_can_be_dropped_and_are_counted(cli, tmp_path):
    path = two_inputs(tmp_path, RAISES, vectorized="false", reference_extra='on_error = "drop"')
    status, out, err = cli("train", path)
    assert status == 0, out + err
    assert "the reference failed on" in out and "excluded" in out
    status, out, _ = cli("verify", path)
    assert status == 0 and "reference failed on" in out  # the share of the domain excluded
    assert cli("export", path)[0] == 0
    card = json.loads((tmp_path / "exported" / "t.json").read_text())
    failed, asked = card["verification"]["excluded"]["grid"]
    assert 0 < failed < asked and card["training"]["reference_failures"]["training"][0] > 0


def test_vectorized_reference_that_raises_is_searched_row_by_row(tmp_path):
    s = spec.load(
        two_inputs(
            tmp_path,
            """
        import numpy as np
        def f(X):
            if (X[:, 0] > 2.95).any():
                raise ArithmeticError("no convergence")
            return X[:, 0]
        """,
        )
    )
    X = np.array([[1.0, 2.0], [2.99, 2.0], [2.0, 2.0]])
    with pytest.raises(PipelineError, match=r"failed on 1 of 3 .*a=2\.99.*ArithmeticError: no convergence"):
        data.evaluate(s, X)


@pytest.mark.parametrize(
    "body, message",
    [
        ("def f(X):\n    return [['a'] * len(X)]\n", "not an array of numbers"),
        ("def f(X):\n    return [[1.0], [1.0, 2.0]] * (len(X) // 2)\n", "not an array of numbers"),
        ("def f(X)\n    return X\n", "SyntaxError in"),
        ("import no_such_package_here\n", "ModuleNotFoundError"),
        ("x = 1 / 0\n", "ZeroDivisionError"),
    ],
)
def test_bad_user_modules_and_returns_are_one_line(cli, tmp_path, body, message):
    status, _, err = cli("train", two_inputs(tmp_path, body))
    assert status == EXIT_BAD_INPUT and message in err and err.count("\n") == 1, err
    if "Syntax" in message or "Division" in message:
        assert "ref.py line" in err  # the user's file and line


def test_reference_cannot_corrupt_the_samples(tmp_path):
    s = spec.load(
        two_inputs(
            tmp_path,
            """
        import numpy as np
        def f(X):
            y = np.sin(X[:, 0]) * np.log(X[:, 1]) / 3
            X[:, 0] = 0.0     # a reference that writes into its argument
            return y
        """,
        )
    )
    d = data.build(s)
    assert d.x_train[:, 0].min() >= 1.0 and d.x_grid[:, 0].min() >= 1.0
    assert np.allclose(d.y_grid[:, 0], np.sin(d.x_grid[:, 0]) * np.log(d.x_grid[:, 1]) / 3)


def test_each_spec_gets_its_own_module(tmp_path):
    a = spec.load(two_inputs(tmp_path, "def f(X):\n    return X[:, 0]\n", folder="a", name="x", callable_="mycorr:f"))
    b = spec.load(
        two_inputs(tmp_path, "def f(X):\n    return 2 * X[:, 0]\n", folder="b", name="y", callable_="mycorr:f")
    )
    X = np.array([[2.0, 2.0]])
    assert data.evaluate(a, X)[0, 0] == 2.0 and data.evaluate(b, X)[0, 0] == 4.0
    assert data.evaluate(a, X)[0, 0] == 2.0


# --- domains that are not boxes ------------------------------------------------------------------------------------

BOUND = """
import numpy as np
def a_max(b):
    return 1.5 + np.log10(b)      # a <= 1.5 + log10(b): cuts the box's corner at small b, large a
"""

DOMAIN = """
[[domain]]
input = "a"
max = "bounds:a_max"
of = "b"
label = "1.5 K + log10(b)"
"""


def domain_spec(tmp_path) -> str:
    (tmp_path / "bounds.py").write_text(BOUND)
    return two_inputs(tmp_path, SMOOTH, domain_=DOMAIN)


def test_every_sample_is_in_the_domain_and_the_grid_reaches_its_edge(tmp_path):
    s = spec.load(domain_spec(tmp_path))
    d = data.build(s)
    for X in (d.x_train, d.x_holdout, d.x_grid):
        assert data.in_domain(s, X).all()
    b = data.bounds(s)[0]
    on_edge = np.isclose(d.x_grid[:, 0], domain.bound_value(b, d.x_grid[:, 1]))
    assert on_edge.sum() >= 21  # the grid's last row in a lies on the bound
    assert b["interpolation_error"] <= 1e-5 * 2 and len(b["table"]["values"]) >= 65


@pytest.mark.slow
def test_domain_in_card_and_report(cli, tmp_path):
    path = domain_spec(tmp_path)
    assert cli("train", path)[0] == 0
    status, out, err = cli("export", path)
    assert status == 0, err
    card = Card.from_dict(json.loads((tmp_path / "exported" / "t.json").read_text()))
    (bound,) = card.bounds
    assert bound["input"] == "a" and bound["of"] == "b" and bound["side"] == "max"
    assert bound["label"] == "1.5 K + log10(b)" and bound["interpolation_error"] >= 0
    x = np.array([[2.9, 2.0]])  # a = 2.9 > 1.5 + log10(2) = 1.80
    assert domain.violations(card.bounds, ["a", "b"], x)[0, 0]
    assert domain.describe(card.bounds, card.inputs, x[0]).startswith("a = 2.9 K is above 1.5 K + log10(b) = 1.80")
    assert (tmp_path / "exported" / "t_report" / "error_map.png").is_file()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[[domain]]\ninput = "c"\nmax = "bounds:a_max"\nof = "b"\nlabel = "x"\n',
            "domain[0].input = 'c' is not an input",
        ),
        ('[[domain]]\ninput = "a"\nmax = "bounds:a_max"\nmin = "bounds:a_max"\nof = "b"\nlabel = "x"\n', "exactly one"),
        ('[[domain]]\ninput = "a"\nmax = "bounds:a_max"\nof = "a"\nlabel = "x"\n', "another input"),
    ],
)
def test_bad_domains_are_one_line(tmp_path, text, message):
    with pytest.raises(PipelineError, match=re.escape(message)):
        spec.load(two_inputs(tmp_path, SMOOTH, domain_=text))


def test_a_bound_that_empties_the_domain_is_refused(tmp_path):
    (tmp_path / "bounds.py").write_text("def a_max(b):\n    return 0.5 + 0 * b\n")
    s = spec.load(two_inputs(tmp_path, SMOOTH, domain_=DOMAIN))
    with pytest.raises(PipelineError, match="leaves no room for a"):
        data.bounds(s)


def test_shipped_water_covers_the_subcooled_region():
    s = spec.load("water")
    (b,) = data.bounds(s)
    p = np.array([1e5, 1.55e7, 1.6e7])
    tsat = np.array([372.756, 617.94, 620.505])  # IAPWS-95 saturation temperatures (CoolProp)
    assert np.allclose(domain.bound_value(b, p), tsat - 2, atol=0.01)
    assert data.in_domain(s, np.array([[563.15, 1.55e7]]))[0]  # a PWR: 155 bar, 290 C
    assert not data.in_domain(s, np.array([[375.0, 1e5]]))[0]  # steam at 1 bar


def test_the_interpolation_every_emitter_writes_is_bound_value():
    """domain.interpolation() is the one description of a bound's interpolation that the C, Fortran and FMU emitters
    write out; run in Python, its steps give bound_value()'s numbers."""
    import math

    from pipeline.runtime import domain

    python = domain.Syntax(
        number=repr, clamp="min(max({a}, {lo}), {hi})", integer="int({a})", item="{array}[{k}]", log10="math.log10({a})"
    )
    for scale, lo, hi in (("linear", -2.0, 3.0), ("log", 1e5, 1.6e7)):
        s = np.linspace(*(np.log10([lo, hi]) if scale == "log" else (lo, hi)), 9)
        x = 10.0**s if scale == "log" else s
        bound = {"table": {"scale": scale, "lo": lo, "hi": hi, "values": list(np.sin(x / x.max() * 5))}}
        table = domain.BoundTable.of_bound(bound)
        probes = np.concatenate([x, np.random.default_rng(0).uniform(lo - (hi - lo) / 10, hi * 1.1, 200)])
        for of in probes:
            env = {"math": math, "values": table.values}
            for var, expr in domain.interpolation(table, python, repr(float(of)), "values"):
                env[var] = eval(expr, env)
            assert math.isclose(env["v"], domain.bound_value(bound, [of])[0], rel_tol=1e-14, abs_tol=1e-14)
