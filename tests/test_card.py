"""pipeline/runtime/card.py: the typed card reads every committed card as it is, and refuses versions it does not know."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from pipeline import codegen
from pipeline.card import CARD_VERSION, Card, CardError
from pipeline.errors import PipelineError
from pipeline.loader import CARD_KEY, DIGEST_KEY, LoaderError, load, seal

ROOT = Path(__file__).resolve().parents[1]
CARDS = sorted((ROOT / "exported").glob("*.json"))


@pytest.mark.parametrize("path", CARDS, ids=[p.stem for p in CARDS])
def test_committed_cards_round_trip_byte_for_byte(path):
    card = Card.from_dict(json.loads(path.read_text()), path.name)
    assert json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n" == path.read_text()
    assert card.input_names and card.architecture.parameters > 0 and card.onnx.opset == 18


def paraboloid_card() -> dict:
    return json.loads((ROOT / "exported" / "paraboloid.json").read_text())


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(card_version=CARD_VERSION + 1), f"card_version {CARD_VERSION + 1} is newer than"),
        (lambda c: c.pop("card_version"), "the card has no card_version"),
        (lambda c: c.update(card_version="1"), "the card has no card_version"),
        (lambda c: c.update(surprise=1), r"unknown card field\(s\) \['surprise'\]"),
        (lambda c: c["inputs"][0].pop("max"), r"inputs\[0\]: missing field\(s\) \['max'\]"),
        (lambda c: c["inputs"][0].update(max="1"), r"inputs\[0\]: max must be a number"),
        (lambda c: c.update(outputs=None), "the card has no list of outputs"),
        (lambda c: c.update(domain={"bounds": [{"input": "x"}]}), r"domain.bounds\[0\] needs input, side"),
    ],
)
def test_bad_cards_are_one_line_errors(edit, message):
    card = paraboloid_card()
    edit(card)
    with pytest.raises(CardError, match=message) as e:
        Card.from_dict(card, "paraboloid.json")
    assert "\n" not in str(e.value) and str(e.value).startswith("paraboloid.json: ")


def with_version(tmp_path: Path, version: int) -> Path:
    """The shipped paraboloid, its embedded card claiming another version, sealed again (no card file beside it)."""
    model = onnx.load(str(ROOT / "exported" / "paraboloid.onnx"))
    props = {p.key: p.value for p in model.metadata_props if p.key != DIGEST_KEY}
    props[CARD_KEY] = json.dumps(json.loads(props[CARD_KEY]) | {"card_version": version})
    onnx.helper.set_model_props(model, props)
    path = tmp_path / "paraboloid.onnx"
    path.write_bytes(seal(model.SerializeToString()))
    return path


def test_loader_and_codegen_refuse_a_newer_card_version(tmp_path):
    path = with_version(tmp_path, CARD_VERSION + 1)
    with pytest.raises(LoaderError, match=f"card_version {CARD_VERSION + 1} is newer than this pipeline reads"):
        load(path)
    with pytest.raises(PipelineError, match=f"card_version {CARD_VERSION + 1} is newer"):
        codegen.read_graph(path)


def test_loader_hands_out_the_typed_card():
    f = load(ROOT / "exported" / "water.onnx")
    assert isinstance(f.card, Card) and f.card.input_names == ["T", "p"] and f.card.bounds[0]["of"] == "p"


def test_card_and_loader_import_neither_torch_nor_onnx():
    code = (
        "import sys, pipeline.card, pipeline.loader, pipeline; "
        "print(sorted(m for m in ('torch', 'onnx', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
