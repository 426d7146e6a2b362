"""The generated C and Fortran of every exported model, byte for byte, against tests/golden/generated.sha256.

A refactoring of the generators must leave what solvers compile unchanged. A change that is meant to alter the
generated text (or a re-export of a model) updates the manifest in the same commit, saying why:

    GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/test_generated_bytes.py
"""

import hashlib
import itertools
import os
from pathlib import Path

from pipeline import codegen

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "tests" / "golden" / "generated.sha256"


def generated(tmp_path: Path) -> dict[str, str]:
    digests = {}
    for model in sorted((ROOT / "exported").glob("*.onnx")):
        for lang, precision in itertools.product(codegen.LANGUAGES, codegen.PRECISIONS):
            folder = f"{lang}_{precision}"
            for path in codegen.generate(model, lang, tmp_path / folder, precision):
                digests[f"{folder}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_generated_sources_are_unchanged(tmp_path):
    now = generated(tmp_path)
    if os.environ.get("GOLDEN_UPDATE"):
        MANIFEST.write_text("".join(f"{d}  {name}\n" for name, d in sorted(now.items())))
    recorded = dict(reversed(line.split("  ", 1)) for line in MANIFEST.read_text().splitlines())
    changed = sorted(n for n in recorded.keys() | now.keys() if recorded.get(n) != now.get(n))
    assert not changed, f"generated files differ from {MANIFEST.name}: {', '.join(changed)}"
