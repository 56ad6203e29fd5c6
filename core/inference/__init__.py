"""The models: the signed bundle, its engines (onnxruntime, OpenVINO), the ensemble with its
calibration, class heat maps and similar training images."""
