"""Surrogate-model pipeline: spec -> data -> model -> checkpoint -> gate report -> ONNX + card -> benchmark.

Modules, one per stage: spec, data (with references), model, train, checkpoint, verify, export, loader.
The command line is `python -m pipeline` (see cli.py). `pipeline.loader` imports numpy and onnxruntime only.
"""
