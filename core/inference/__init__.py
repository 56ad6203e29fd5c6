"""The models, in the order of the flow: the bundle's manifest (manifest; older schemas upgraded once as
read, upgrade), the signed bundle loaded from a folder or a zip (bundle, signing, unzip, digests), the
engines that run its members (engines: onnxruntime, OpenVINO), the ensemble with its calibration
(ensemble, calibration: shared with export's fits), class heat maps (class_cam) and similar training
images (similar)."""
