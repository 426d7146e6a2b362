"""Surrogate-model pipeline: spec -> data -> model -> checkpoint -> gate report -> ONNX + card -> benchmark.

Modules, one per stage: spec, data (with references), model, train, checkpoint, verify, export, card, loader.
The command line is `python -m pipeline` (see cli.py). Importing this package imports nothing else: `pipeline.loader`
and `pipeline.card` need numpy and onnxruntime only (what `pip install .` installs); the other stages need the
`train` extra (torch, onnx, ...).
"""
