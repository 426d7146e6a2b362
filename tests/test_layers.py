"""The package's layers and the directions their imports may take, read from the source (every import statement,
at module level or inside a function).

    errors    the exception classes; imports nothing of the pipeline
    runtime   card, domain, files, loader: numpy and onnxruntime only          -> errors
    codegen   graph, C, Fortran, text, the C backend, the FMU                   -> runtime, errors
    build     spec, references, data, model, train, verify, ..., export        -> codegen, runtime, errors
    top       cli, __main__, and the aliases pipeline.loader / .card / .references that keep old import paths

A module may import its own layer and the layers below it, never one above.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
LAYERS = ["errors", "runtime", "codegen", "build", "top"]


def layer_of(module: str) -> str:
    """'pipeline.build.train' -> 'build'; modules directly under pipeline (cli, aliases) are 'top'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    return parts[1] if parts[1] in LAYERS else "top"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def pipeline_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of a pipeline module in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pipeline"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pipeline":
                continue
            if node.module is None or target in ("pipeline",) or target.count(".") == 1:
                # `from . import data` or `from pipeline.build import data`: each name may be a module
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            found.append((node.lineno, target))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    for path in modules():
        assert layer_of(module_name(path)) in LAYERS


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path):
    here = layer_of(module_name(path))
    for line, target in pipeline_imports(path):
        there = layer_of(target)
        assert LAYERS.index(there) <= LAYERS.index(here), (
            f"{path.relative_to(PACKAGE.parent)}:{line}: the {here} layer imports {target} ({there} layer, above it)"
        )


def test_errors_module_imports_nothing():
    tree = ast.parse((PACKAGE / "errors.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_checker_sees_a_violation(tmp_path):
    """The check above would fail on an upward import (so it cannot pass by finding nothing)."""
    assert layer_of("pipeline.build.train") == "build" and layer_of("pipeline.runtime.loader") == "runtime"
    runtime_file = PACKAGE / "runtime" / "loader.py"
    targets = [t for _, t in pipeline_imports(runtime_file)]
    assert "pipeline.errors" in targets and "pipeline.runtime.domain" in targets
    assert LAYERS.index(layer_of("pipeline.build.spec")) > LAYERS.index(layer_of(module_name(runtime_file)))


def test_old_import_paths_are_the_same_modules():
    """Paths that users, specs and cards hold keep working, as the very same module objects."""
    import pipeline.card
    import pipeline.loader
    import pipeline.references
    from pipeline.build import references
    from pipeline.runtime import card, loader

    assert pipeline.loader is loader and pipeline.card is card and pipeline.references is references
