"""The build layer: spec -> data -> model -> train -> verify -> checkpoint -> export and report (torch, onnx)."""
