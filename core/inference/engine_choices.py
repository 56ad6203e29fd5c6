"""What a user may choose of the engines (settings, --engine, --precision, --provider), without importing
onnxruntime: the command line builds its help from these before any model is needed."""

from __future__ import annotations

ENGINES = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("exact", "fast")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# "auto" takes CUDA when onnxruntime has it, else the CPU.
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *PROVIDERS)
