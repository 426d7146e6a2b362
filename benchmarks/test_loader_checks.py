"""What the loader's input checks cost point(), side by side in one run: water as shipped (a box), water with a
domain bound in its card (T <= T_lim(p), 6 knots, log scale), and that bound's pure-Python check alone.

    .venv/bin/python -m pytest benchmarks/test_loader_checks.py -q -p no:cacheprovider --benchmark-columns=median

The bound check must stay well under 1 µs beside point()'s ~4 µs. summarize.py does not show these (kind
"loader_check"); they are here so that the claim rests on a measurement.
"""

import json
from pathlib import Path

import onnx
import pytest

from pipeline.loader import CARD_KEY, load, seal

WATER = Path(__file__).resolve().parents[1] / "exported" / "water.onnx"
T_LIM = {
    "input": "T",
    "side": "max",
    "of": "p",
    "label": "T_lim(p)",
    "interpolation_error": 0.0,
    "table": {"scale": "log", "lo": 5e5, "hi": 1e7, "values": [330.0, 350.0, 365.0, 380.0, 392.0, 400.0]},
}
POINT = (320.0, 1e6)  # inside the box and the bound, by more than the bound varies: the first step answers
NEAR = (350.0, 1e6)  # 2.4 K inside the bound (352.35 K there): the interpolation answers


@pytest.fixture(scope="module")
def with_domain(tmp_path_factory):
    proto = onnx.load(WATER)
    card = json.loads(next(p.value for p in proto.metadata_props if p.key == CARD_KEY))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, json.dumps(card | {"domain": {"bounds": [T_LIM]}}, sort_keys=True)
    path = tmp_path_factory.mktemp("domain") / "water.onnx"
    path.write_bytes(seal(proto.SerializeToString()))
    return load(path)


@pytest.mark.parametrize(
    "case", ["point, box", "point, box and bound", "bound check alone", "bound check alone, near the bound"]
)
def test_point_checks(benchmark, with_domain, case):
    benchmark.group = "loader point() checks"
    benchmark.extra_info.update(kind="loader_check", case=case)
    if case == "point, box":
        f = load(WATER)
        benchmark(f.point, *POINT)
    elif case == "point, box and bound":
        benchmark(with_domain.point, *POINT)
    else:
        assert benchmark(with_domain._point_bounds[0].clearly_inside, NEAR if case.endswith("bound") else POINT)
