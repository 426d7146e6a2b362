"""The torch-free runtime: model cards, domain bounds, atomic writes and the loader (numpy + onnxruntime)."""
