"""The heat map of any class, on demand: where the models looked when scoring that class.

Screening stores the heat map of the bundle's positive class (melanoma). When the outcome names another
class ("suspicious for basal cell carcinoma") the clinician should see that class's map; the exported
graphs already return the Grad-CAM of every class (issue 24, item 5), so one image is run again through
the members on its TTA views and that class's maps are combined exactly as screening combines them.
"""

from __future__ import annotations

import numpy as np

from .bundle import OUTPUT_NAMES
from .model_input import InputSpec, model_input
from .results import Decision, ScreeningResult


def named_class(result: ScreeningResult, positive_class: str = "mel") -> str:
    """The class the outcome names: the malignant class of a suspicious result, else the most likely class
    (the reason names it); the positive class when nothing is named."""
    if result.decision is Decision.SUSPICIOUS and result.malignant_class:
        return result.malignant_class
    return result.likely_class or result.malignant_class or positive_class


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
