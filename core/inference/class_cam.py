"""The heat map of any class, on demand: where the models looked when scoring that class.

Screening stores the heat map of the bundle's positive class (melanoma) and, since schema 6, the map of
the class the outcome names (core.screening.screener composes it from the same run: the exported graphs return the
Grad-CAM of every class, issue 24 item 5). For any other class, or a result stored before, one image is
run again through the members on its TTA views and that class's maps are combined exactly as screening
combines them.
"""

from __future__ import annotations

import numpy as np

from core.decision.results import (
    named_class as named_class,  # its home is core.decision.results; known here by this name
)
from core.imaging.model_input import InputSpec, model_input


def class_heat_map(ensemble, rgb: np.ndarray, class_code: str) -> np.ndarray:
    """A 0..1 map (image size) of `class_code` for the picture `rgb`, from a core.inference.ensemble.Ensemble.
    ValueError for a class the bundle does not have."""
    x = model_input(rgb, InputSpec.from_manifest(ensemble.manifest))
    # the same passes and composition as screening (core.inference.ensemble); ValueError names a class the bundle lacks
    cam = ensemble.class_cam(ensemble.run(x[None]), 0, class_code, rgb.shape[:2])
    assert cam is not None  # run() keeps the maps (with_cam defaults to True)
    return cam
