"""A case as the case view shows it, read on a worker: the stored result with its heat map, the picture (the
file if it still holds the screened image, else the stored thumbnail), whose lesion it is and its other visits."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from core import (
    AttachedIdentity,
    ConfirmedDiagnosis,
    ScreeningResult,
    TimelineEntry,
    case_picture,
    confirmed_for_images,
    identity_of,
    lesion_timeline,
    resize_longest_side,
)


@dataclass(frozen=True)
class CaseData:
    """What the case view shows; built by `load_case` on a worker thread."""

    result_id: int | None
    result: ScreeningResult  # with its heat map when one is stored
    rgb: np.ndarray | None  # the picture, upright; the stored thumbnail when the file is gone
    image_note: str = ""  # why the picture is not the original file, if it is not
    identity: AttachedIdentity | None = None  # whose lesion, where, which visit
    visits: tuple[TimelineEntry, ...] = ()  # the lesion's pictures (this one included)
    # sha256 -> the confirmed diagnosis (core.records.evidence) that applies to this picture and the lesion's others
    confirmed: dict[str, ConfirmedDiagnosis] = field(default_factory=dict)


def load_case(store, result_id: int | None, shown: ScreeningResult) -> CaseData:
    """Read the stored result (with heat map) and the picture (core.imaging.pictures: the file if it is
    still the screened image, else the stored thumbnail, saying so)."""
    result = shown
    if store is not None and result_id is not None:
        stored = store.get_result(result_id)
        if stored is not None:
            # A trial's decision (shown) stays what the case says; the stored row brings the heat map.
            keep = (
                dict(decision=shown.decision, reason=shown.reason, band=shown.band, details=shown.details)
                if shown.trial
                else {}
            )
            result = replace(
                stored,
                path=shown.path,
                from_store=shown.from_store,
                confidence=shown.confidence,
                trial=shown.trial,
                **keep,
            )
    if not result.ok:
        return CaseData(result_id, result, None, "")
    identity, visits = _filed(store, result.sha256)
    confirmed = _confirmed(store, [result.sha256, *(e.sha256 for e in visits)])
    thumb = store.thumbnail(result_id) if (store is not None and result_id is not None) else None
    pic = case_picture(result.path, result.sha256, thumb)
    if pic.rgb is None or pic.from_thumbnail:
        return CaseData(result_id, result, pic.rgb, pic.note, identity, visits, confirmed)
    rgb, note = _display_size(pic.rgb)
    return CaseData(result_id, result, rgb, note, identity, visits, confirmed)


def _confirmed(store, sha256s: list) -> dict[str, ConfirmedDiagnosis]:
    """The confirmed diagnoses (core.records.evidence) that apply to these pictures, by sha256."""
    if store is None:
        return {}
    return confirmed_for_images(store, [s for s in sha256s if s])


def _filed(store, sha256: str | None) -> tuple[AttachedIdentity | None, tuple[TimelineEntry, ...]]:
    """Whose picture it is, and the lesion's pictures (for the earlier visits beside it)."""
    if store is None or not sha256:
        return None, ()
    a = identity_of(store, sha256)
    return (a, tuple(lesion_timeline(store, a.lesion_key))) if a is not None else (None, ())


DISPLAY_MAX_SIDE = 2400  # keeps redrawing the heat map quick; dermoscopy detail survives


def _display_size(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    h, w = rgb.shape[:2]
    if max(h, w) <= DISPLAY_MAX_SIDE:
        return rgb, ""
    small = resize_longest_side(rgb, DISPLAY_MAX_SIDE, enlarge=False)
    return small, f"Shown at {small.shape[1]} × {small.shape[0]} px (the file is {w} × {h})."
