"""The worked example whose reference costs (examples/costly_reference/): its exported model is the one its spec
describes, and within its gate against the solve_bvp reference at fresh points."""

import importlib.util
import json
from pathlib import Path

import numpy as np

from pipeline.build import spec
from pipeline.loader import load

HERE = Path(__file__).resolve().parents[1] / "examples" / "costly_reference"


def test_the_exported_fin_is_its_specs_and_within_its_gate():
    s = spec.load(str(HERE / "fin.toml"))
    card = json.loads((HERE / "fin.json").read_text())
    assert card["spec_sha256"] == spec.sha256(s)
    module = importlib.util.spec_from_file_location("fin_reference", HERE / "fin.py")
    fin = importlib.util.module_from_spec(module)
    module.loader.exec_module(fin)
    low, high = [i.min for i in s.inputs], [i.max for i in s.inputs]
    X = np.random.default_rng(2026).uniform(low, high, (25, 3))  # 25 solves: a quarter of a second
    reference = np.array([fin.efficiency(*x) for x in X])
    predicted = np.asarray(load(HERE / "fin.onnx")(X)).reshape(-1)
    assert np.max(np.abs(predicted - reference) / np.abs(reference)) <= s.gates["max_rel"]
