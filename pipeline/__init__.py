"""Surrogate-model pipeline: spec -> data -> model -> checkpoint -> gate report -> ONNX + card -> benchmark.

Layers, each importing only those before it (tests/test_layers.py checks it):

    errors    every exception class
    runtime   card, domain, files, loader: numpy and onnxruntime only (what `pip install .` installs)
    codegen   graph, C, Fortran, text, the C backend, the FMU: the runtime plus onnx
    build     spec, references, data, model, train, verify, derivatives, checkpoint, export, report, search (torch)
    cli       `python -m pipeline`

Importing this package imports nothing else. `pipeline.loader`, `pipeline.card` and `pipeline.references` are the
runtime's and the build layer's modules under the paths that users, specs and cards already hold.
"""
