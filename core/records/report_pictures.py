"""The pictures a run report shows: the screened image (or its stored thumbnail: core.imaging.pictures) at
report size, its heat map over it, each as an embedded JPEG, and which class's map it is in words."""

from __future__ import annotations

import base64

import cv2

from core.common.resizing import resize_longest_side
from core.decision.results import ScreeningResult, named_class
from core.decision.vocabulary import class_name
from core.imaging.cam import overlay
from core.imaging.pictures import case_picture

STORED_CAM_CLASS = "mel"  # the class of `cam`, the map every result keeps (core.decision.results)
REPORT_IMAGE_SIDE = 220  # px, longest side of each picture in the report


def data_uri_jpeg(rgb) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def report_pictures(result: ScreeningResult, thumbnail: bytes | None, with_heatmap: bool):
    """(picture, heat map overlay) as RGB arrays at report size, or (None, None) (see core.imaging.pictures). The map
    is the class's the outcome names when the result kept it, else the stored melanoma map."""
    pic = case_picture(result.path, result.sha256, thumbnail)
    if pic.rgb is None:
        return None, None
    rgb = resize_longest_side(pic.rgb, REPORT_IMAGE_SIDE, enlarge=False)
    cam, _ = result.heat_map(STORED_CAM_CLASS)
    heat = overlay(rgb, cam, 0.5) if (with_heatmap and cam is not None) else None
    return rgb, heat


def heat_map_caption(r: ScreeningResult, positive_class: str = STORED_CAM_CLASS) -> str:
    """e.g. "heat map of basal cell carcinoma"; for an older result whose outcome names another class:
    "heat map of melanoma (the map of X is not stored with this result)"."""
    _, shown = r.heat_map(positive_class)
    named = named_class(r, positive_class)
    words = f"heat map of {class_name(shown)}"
    if named != shown:
        words += f" (the map of {class_name(named)} is not stored with this result)"
    return words
