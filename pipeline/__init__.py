"""Surrogate-model pipeline: spec -> data -> model -> checkpoint -> gate report -> ONNX + card -> benchmark.

The Python API is the names in __all__ (pipeline.build.api defines them; docs/python-api.md describes each):

    import pipeline
    spec = pipeline.spec("bowl", inputs=[...], outputs=[...], reference=lambda X: ..., gates={"max_abs": 1e-3})
    pipeline.train(spec); report = pipeline.verify(spec); model = pipeline.export(spec).load()

Layers, each importing only those before it (tests/test_layers.py checks it):

    errors    every exception class
    runtime   card, domain, files, loader: numpy and onnxruntime only (what `pip install .` installs)
    codegen   graph, C, Fortran, text, the C backend, the FMU: the runtime plus onnx
    build     spec, references, data, model, train, verify, derivatives, checkpoint, export, report, search, api (torch)
    cli       `python -m pipeline`, a thin wrapper over build.api

Importing this package imports nothing else: the API's names are looked up on first use (__getattr__), and building a
spec loads no torch; training, verifying and exporting load it when they run. `pipeline.loader`, `pipeline.card` and
`pipeline.references` are the runtime's and the build layer's modules under the paths that users, specs and cards
already hold.
"""

__all__ = [
    # specs
    "spec", "Input", "Output", "Spec", "load_spec", "save_spec", "to_toml", "surrogates",
    # the verbs of `python -m pipeline`, and what they return
    "train", "Training", "verify", "GateReport", "gate", "export", "Exported", "load",
    "report", "generate_code", "fmu", "search",
    # the exceptions, each with the one line the command line prints (pipeline.errors)
    "PipelineError", "SpecError", "LoaderError", "CardError",
]  # fmt: skip


def __getattr__(name: str):
    if name in __all__:
        from .build import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
