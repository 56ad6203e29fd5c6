"""The heat map of any class, on demand: where the models looked when scoring that class.

Screening stores the heat map of the bundle's positive class (melanoma) and, since schema 6, the map of
the class the outcome names (core.screening composes it from the same run: the exported graphs return the
Grad-CAM of every class, issue 24 item 5). For any other class, or a result stored before, one image is
run again through the members on its TTA views and that class's maps are combined exactly as screening
combines them.
"""

from __future__ import annotations

import numpy as np

from .bundle import OUTPUT_NAMES
from .model_input import InputSpec, model_input
from .results import named_class as named_class  # its home is core.results; known here by this name


def class_heat_map(ensemble, rgb: np.ndarray, class_code: str) -> np.ndarray:
    """A 0..1 map (image size) of `class_code` for the picture `rgb`, from a core.ensemble.Ensemble.
    ValueError for a class the bundle does not have."""
    m = ensemble.manifest
    if class_code not in m.class_names:
        raise ValueError(f"the bundle has no class {class_code!r}; its classes: {', '.join(m.class_names)}")
    k = m.class_names.index(class_code)
    x = model_input(rgb, InputSpec.from_manifest(m))
    views = ensemble._views_of(x[None])  # the TTA views screening used, in its order
    with ensemble._engine_lock:  # one call at a time per member, as screening
        outs = [member.run(views, OUTPUT_NAMES[:2]) for member in ensemble.members]
    cams = np.stack([out[OUTPUT_NAMES[1]][:, k] for out in outs]).astype(np.float32)  # M x V x h x w
    return ensemble._ensemble_cam(cams, rgb.shape[:2])
