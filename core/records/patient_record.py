"""What one patient's report shows, read from the store (core.records.patient_report writes it; the pages
are core.records.patient_pages): the clinic (core.records.clinic), the patient's id, age and sex; per lesion
its body site (core.files.body_sites), each visit's picture and heat map, the outcome in words, the
clinician's decision, reviewer and time, the follow-up date of "monitor", the urgency the decision asks
for, what made each result (core.records.provenance) and the confirmed diagnosis that applies.
Patient names are not known to MelaScreen and never appear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone

import cv2
import numpy as np

from core.common.resizing import resize_longest_side
from core.decision.results import ScreeningResult, named_class
from core.decision.vocabulary import (
    NOT_DERMOSCOPY,
    NOT_SCREENED,
    class_name,
    outcome_code_of,
    outcome_label,
    review_choice,
)
from core.files.body_sites import SiteMatch, site_from_text
from core.imaging.cam import overlay
from core.imaging.pictures import case_picture
from core.records.clinic import Clinic, load_clinic
from core.records.evidence import confirmed_for_images
from core.records.followup import add_months
from core.records.patients import LesionSummary, TimelineEntry, lesion_timeline, patient_images, patient_lesions
from core.records.provenance import Provenance, provenance_of_run
from core.records.report_pictures import STORED_CAM_CLASS
from core.records.store import Review, ReviewStore


@dataclass(frozen=True)
class LesionRecord:
    lesion: LesionSummary
    timeline: tuple[TimelineEntry, ...]


@dataclass(frozen=True)
class Urgency:
    """What the clinician's decision asks for, in words, most urgent first (`rank` 0)."""

    rank: int
    words: str
    colour: str


URGENT = Urgency(0, "URGENT", "#c62828")
_AWAITING = Urgency(1, "awaiting review", "#e65100")
_FOLLOW_UP = Urgency(2, "follow-up", "#1565c0")
_RETAKE = Urgency(3, "picture to retake", "#616161")
_ROUTINE = Urgency(4, "no action", "#2e7d32")


def urgency_of(review: Review | None) -> Urgency:
    """From the clinician's decision: excise or refer is urgent; monitor is a follow-up; no review yet is
    'awaiting review' (the gate alone never makes a report urgent: a clinician decides)."""
    if review is None:
        return _AWAITING
    code = review_choice(review.decision).code
    if code in ("excise", "refer"):
        return URGENT
    if code == "monitor":
        return _FOLLOW_UP
    if code == "retake":
        return _RETAKE
    return _ROUTINE


def follow_up_date(review: Review | None) -> date | None:
    """When a 'monitor' review asks to see the lesion again: the review's date plus its months."""
    if review is None or review.follow_up_months is None or review_choice(review.decision).code != "monitor":
        return None
    try:
        reviewed = datetime.fromisoformat(review.created).astimezone().date()
    except ValueError:
        return None
    return add_months(reviewed, int(review.follow_up_months))


REPORT_PICTURE_SIDE = 480  # px, longest side of each picture put in a report (printed about 4.5 cm wide)


@dataclass(frozen=True)
class VisitRecord:
    """One picture of a lesion at one visit, as the report shows it."""

    entry: TimelineEntry
    outcome_text: str  # "suspicious for melanoma", "not a dermoscopy image: check the file", "not screened"
    outcome_code: str  # core.decision.vocabulary code, for the badge's colour
    p_malignant: float | None  # None for a picture that is not dermoscopy (no probability is shown)
    picture_jpeg: bytes  # b"" when neither the file nor a thumbnail is left
    picture_note: str  # why the picture is the stored thumbnail, if it is
    heat_map_jpeg: bytes  # the heat map over the picture; b"" when none is stored (or not dermoscopy)
    heat_map_class: str  # the class code whose map is shown
    named_class: str  # the class code the outcome names ("" when it names none)
    follow_up: date | None
    provenance: Provenance | None  # what made the result; None: not recorded
    age: int | None
    confirmed: str = ""  # the confirmed diagnosis that applies to the picture (core.records.evidence), in words

    @property
    def heat_map_words(self) -> str:
        if not self.heat_map_jpeg:
            return ""
        shown = class_name(self.heat_map_class)
        if self.named_class and self.named_class != self.heat_map_class:
            return f"heat map of {shown} (the map of {class_name(self.named_class)} is not stored with this result)"
        return f"heat map of {shown}"


@dataclass(frozen=True)
class LesionReport:
    lesion: LesionSummary
    site: SiteMatch
    urgency: Urgency
    review: Review | None  # the lesion's latest review (of its latest visit's most urgent picture)
    visits: tuple[VisitRecord, ...]

    @property
    def title(self) -> str:
        le = self.lesion
        return f"Lesion {le.label}" if le.labelled else f"Lesion without an id ({le.label})"

    @property
    def site_words(self) -> str:
        written = self.lesion.body_site
        if not written:
            return "body site not recorded"
        if self.site.site is None:
            return f"{written} (not on the body map: unknown site)"
        label = self.site.site.label
        return label if label.casefold() == written.casefold() else f"{label} (written: {written})"


@dataclass(frozen=True)
class PatientReport:
    patient_id: str
    age: int | None  # at the latest visit that recorded it
    sex: str | None
    clinic: Clinic
    created: str  # local time, when the report was made
    reviewer: str  # who made it
    summary: str  # the clinician's free text
    lesions: tuple[LesionReport, ...]

    @property
    def provenances(self) -> list[Provenance]:
        """Every distinct model bundle, signer and confidence that made a result in the report."""
        seen: list[Provenance] = []
        for le in self.lesions:
            for v in le.visits:
                if v.provenance is not None and v.provenance not in seen:
                    seen.append(v.provenance)
        return seen

    @property
    def unsigned(self) -> bool:
        return any(p.unsigned for p in self.provenances)

    @property
    def who(self) -> str:
        """ "Patient P001 · age 54 · sex F": on every page."""
        age = "age not recorded" if self.age is None else f"age {self.age}"
        sex = f"sex {_SEX_WORDS.get(self.sex or '', self.sex)}" if self.sex else "sex not recorded"
        return f"Patient {self.patient_id} · {age} · {sex}"


_SEX_WORDS = {"F": "F (female)", "M": "M (male)", "O": "O (other)"}


def patient_record(store: ReviewStore, patient_id: str) -> list[LesionRecord]:
    """Every lesion of the patient (most urgent first) with its timeline; ValueError for an unknown id."""
    lesions = patient_lesions(store, patient_id)
    if not lesions:
        raise ValueError(f"there is no patient '{patient_id}' in {store.path} (or no image is filed under them)")
    return [LesionRecord(le, tuple(lesion_timeline(store, le.lesion_key))) for le in lesions]


def _ages(store: ReviewStore, patient_id: str) -> tuple[dict[str, int | None], int | None]:
    """Each image's recorded age, and the age at the latest visit that recorded one."""
    images = patient_images(store, patient_id)
    ages = {a.sha256: a.age for a in images}
    dated = sorted((a.visit_date or date.min, a.age) for a in images if a.age is not None)
    return ages, (dated[-1][1] if dated else None)


def _provenance(store: ReviewStore, result_id: int, cache: dict) -> Provenance | None:
    run_id = store.first_run_of(result_id)
    if run_id is None:
        return None
    if run_id not in cache:
        run = store.get_run(run_id)
        cache[run_id] = None if run is None else provenance_of_run(run)
    return cache[run_id]


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return buf.tobytes() if ok else b""


# (result, class code) -> that class's heat map (H x W, 0..1) or None: a source of maps besides the stored one
HeatMapSource = Callable[[ScreeningResult, str], "np.ndarray | None"]


def _heat_map(result: ScreeningResult, named: str, source: HeatMapSource | None) -> tuple[np.ndarray | None, str]:
    """The map of the class the outcome names: the one stored with the result (screening keeps it, schema 6),
    else what `source` gives (e.g. the app's models, for a result stored before), else the stored melanoma
    map (the caption then says the named class's map is not stored)."""
    stored, stored_class = result.heat_map(STORED_CAM_CLASS)
    if not named or stored_class == named:
        return stored, stored_class
    if source is not None:
        cam = source(result, named)
        if cam is not None:
            return cam, named
    return stored, stored_class


def _confirmed_words(confirmed: dict, e: TimelineEntry) -> str:
    c = confirmed.get(e.sha256)
    return c.shown if c is not None else ""


def _visit(
    store: ReviewStore, e: TimelineEntry, age: int | None, cache: dict, heat_maps: HeatMapSource | None = None
) -> VisitRecord:
    result = store.get_result(e.result_id) if e.result_id is not None else None
    if result is None or not result.ok:
        return VisitRecord(e, "not screened", NOT_SCREENED.code, None, b"", "", b"", "", "", None, None, age)
    code = outcome_code_of(result.decision, result.intake, result.ok)
    not_dermoscopy = code == NOT_DERMOSCOPY.code
    words = outcome_label(result.decision, result.malignant_class, result.band, result.intake)
    picture = case_picture(e.path, e.sha256, store.thumbnail(e.result_id))  # type: ignore[arg-type]  # result_id is set: a row without one returned above
    rgb = picture.rgb
    if rgb is not None:
        rgb = resize_longest_side(rgb, REPORT_PICTURE_SIDE, enlarge=False)
    named = "" if not_dermoscopy else named_class(result, STORED_CAM_CLASS)
    heat, heat_class = b"", ""
    if rgb is not None and not not_dermoscopy:
        cam, cam_class = _heat_map(result, named, heat_maps)
        if cam is not None:
            heat, heat_class = _jpeg(overlay(rgb, cam, 0.5)), cam_class
    return VisitRecord(
        entry=e,
        outcome_text=words,
        outcome_code=code,
        p_malignant=None if not_dermoscopy else e.p_malignant,
        picture_jpeg=_jpeg(rgb) if rgb is not None else b"",
        picture_note=picture.note if picture.from_thumbnail else "",
        heat_map_jpeg=heat,
        heat_map_class=heat_class,
        named_class=named,
        follow_up=follow_up_date(e.review),
        provenance=_provenance(store, e.result_id, cache),  # type: ignore[arg-type]  # result_id is set: a row without one returned above
        age=age,
    )


def build_patient_report(
    store: ReviewStore,
    patient_id: str,
    reviewer: str = "",
    clinic: Clinic | None = None,
    summary: str = "",
    heat_maps: HeatMapSource | None = None,
) -> PatientReport:
    """Everything a patient's report shows, read from the store (ValueError for an unknown patient).
    `heat_maps(result, class_code)`: the map of the class an outcome names (e.g. the app, which has the
    models); without it, or when it gives none, the stored map (melanoma's) is shown and captioned so."""
    records = patient_record(store, patient_id)
    ages, age = _ages(store, patient_id)
    cache: dict = {}
    lesions = []
    confirmed = confirmed_for_images(store, [e.sha256 for rec in records for e in rec.timeline])
    for rec in records:
        visits = tuple(
            replace(_visit(store, e, ages.get(e.sha256), cache, heat_maps), confirmed=_confirmed_words(confirmed, e))
            for e in rec.timeline
        )
        review = rec.lesion.latest_review
        lesions.append(
            LesionReport(rec.lesion, site_from_text(rec.lesion.body_site), urgency_of(review), review, visits)
        )
    lesions.sort(key=lambda le: le.urgency.rank)  # stable: most urgent outcome first within each urgency
    return PatientReport(
        patient_id=patient_id,
        age=age,
        sex=store.patient_sex(patient_id),
        clinic=clinic if clinic is not None else load_clinic(),
        created=datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %z"),
        reviewer=reviewer,
        summary=summary.strip(),
        lesions=tuple(lesions),
    )
