"""Patients, lesions and visits in the results store (schema version 3), and the queries on them.

An image (by the SHA-256 of its bytes) is attached to at most one lesion visit; a lesion belongs
to one patient; results and reviews stay keyed by the image, so they follow it. An image already
attached elsewhere is never moved silently: `attach` refuses and says where it is.

A lesion without a clinic lesion id (a DICOM file without Lesion Number, a sidecar row without
lesion_id, a PATIENT/VISIT/ folder without a lesion folder) gets a lesion of its own, labelled
"unlabelled <first 12 hex digits of the image hash>", so that pictures are never grouped as
one lesion by guesswork.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from core.common.errors import StoreError
from core.decision.results import Decision, ScreeningResult, risk_probability
from core.decision.vocabulary import outcome_label, risk_order
from core.files.identity import FolderIdentities, Identity, IdentityIssue, IdentitySettings
from core.files.identity_sources import resolve_identities
from core.records.store import QueueItem, Review, ReviewStore

# Where an image is filed, and the refusal to move it, are the store's records; named here for the clinic's code.
from core.records.store.patient_rows import AttachConflict as AttachConflict
from core.records.store.patient_rows import AttachedIdentity as AttachedIdentity

PATIENTS_SCHEMA_VERSION = 3
UNLABELLED_PREFIX = "unlabelled "
ROSE_MARGIN = 0.05  # a rise of p(malignant) between visits smaller than this is noise, not news


@dataclass(frozen=True)
class PatientSummary:
    patient_id: str
    lesions: int
    images: int
    waiting: int  # cases in the review queue not reviewed yet
    top_decision: Decision | None  # the most urgent waiting case's outcome
    top_p_malignant: float | None  # ... and its p(malignant)
    last_visit: date | None
    top_words: str = ""  # ... in words: "suspicious for melanoma", "review (high risk)"


@dataclass(frozen=True)
class LesionSummary:
    lesion_key: int
    patient_id: str
    label: str
    labelled: bool
    body_site: str | None
    visits: int
    images: int
    last_visit: date | None
    latest_decision: Decision | None  # of the latest visit's latest screened image
    latest_p_malignant: float | None
    latest_review: Review | None
    latest: TimelineEntry | None = None  # the picture the latest outcome comes from


@dataclass(frozen=True)
class TimelineEntry:
    """One picture of a lesion at one visit, with what was decided then."""

    visit_date: date | None
    sha256: str
    result_id: int | None  # the image's latest good result; None if it was never screened well
    path: str
    p_malignant: float | None
    decision: Decision | None
    review: Review | None  # the image's latest review
    rose_from: float | None = None  # the previous visit's p(malignant) when this one is higher by >= ROSE_MARGIN
    malignant_class: str = ""
    band: str | None = None
    intake: str | None = None  # the intake check's level (core.decision.vocabulary.INTAKE_LEVELS)
    confidence: float | None = None  # the gate's confidence that made the outcome (None: not recorded)

    @property
    def words(self) -> str:
        """The outcome as a clinician reads it: "review (high risk)", "no cancer suspected", ..."""
        return outcome_label(self.decision, self.malignant_class, self.band, self.intake)

    @property
    def confidence_words(self) -> str:
        return "confidence not recorded" if self.confidence is None else f"at confidence {self.confidence:g}"


def _require_schema(store: ReviewStore) -> None:
    if store.schema_version < PATIENTS_SCHEMA_VERSION:
        raise StoreError(
            f"{store.path}: this results file predates patients (schema {store.schema_version}); "
            "open it with ReviewStore.open, which upgrades it"
        )


# -------------------------------------------------------------------------------------- writing


def attach(store: ReviewStore, sha256: str, identity: Identity) -> AttachedIdentity:
    """File an image under its patient, lesion and visit (creating them as needed), in one transaction.

    Attaching an image again to the same lesion visit changes nothing. Raises AttachConflict when
    it is already attached to another one, or when the lesion was recorded at another body site.
    """
    _require_schema(store)
    if not sha256:
        raise ValueError("an image needs its sha256 to be attached")
    labelled = bool(identity.lesion_id)
    label = identity.lesion_id or f"{UNLABELLED_PREFIX}{sha256[:12]}"
    store.file_image(sha256, identity, label, labelled)
    found = identity_of(store, sha256)
    assert found is not None
    return found


def attach_results(
    store: ReviewStore, results: Iterable[ScreeningResult], intake: FolderIdentities
) -> list[IdentityIssue]:
    """Attach every screened file that has an identity; conflicts come back as issues."""
    issues: list[IdentityIssue] = []
    for r in results:
        identity = intake.identity_for(r.path)
        if identity is None or not r.sha256:
            continue
        try:
            attach(store, r.sha256, identity)
        except AttachConflict as exc:
            issues.append(IdentityIssue(r.path, None, str(exc)))
    return issues


class PatientFiling:
    """One run's identities: resolved for every scanned path before screening, then each stored
    result is filed under its patient, lesion and visit as it comes (a resumed run files again,
    which changes nothing). Problems (bad sidecar rows, conflicts) collect in `issues`."""

    def __init__(self, folder, paths: Sequence, settings: IdentitySettings = IdentitySettings()):
        self.intake = resolve_identities(folder, paths, settings.sidecar, settings.layout)
        self.paths = [p for p in paths if not self.intake.is_sidecar(p)]
        self.issues: list[IdentityIssue] = list(self.intake.issues)

    def file(self, store: ReviewStore | None, result: ScreeningResult) -> AttachedIdentity | None:
        identity = self.intake.identity_for(result.path)
        if store is None or identity is None or not result.sha256:
            return None
        if result.ok and not result.is_case:
            # Not a dermoscopy image: never one of the patient's cases (issue 24); the identity problem is said.
            self.issues.append(
                IdentityIssue(
                    result.path,
                    None,
                    f"not filed under patient '{identity.patient_id}': the picture does not look like a dermoscopy "
                    "image (listed under the images to check)",
                )
            )
            return None
        try:
            return attach(store, result.sha256, identity)
        except AttachConflict as exc:
            self.issues.append(IdentityIssue(result.path, None, str(exc)))
            return None


# -------------------------------------------------------------------------------------- reading


def identity_of(store: ReviewStore, sha256: str) -> AttachedIdentity | None:
    """Where the image is filed, or None ("no patient")."""
    if store.schema_version < PATIENTS_SCHEMA_VERSION:
        return None
    return store.identity_of(sha256)


def identities_of(store: ReviewStore, sha256s: Sequence[str]) -> dict[str, AttachedIdentity]:
    """sha256 -> where the image is filed; images filed under no patient are left out."""
    return store.identities_of(sha256s)


def patient_images(store: ReviewStore, patient_id: str) -> list[AttachedIdentity]:
    """Every image filed under the patient, by lesion label then visit date."""
    return store.patient_images(patient_id)


def _urgency(decision: Decision | None, p: float | None) -> tuple:
    """Most urgent first by the outcome alone (its band left out: the band ranks only queue items), then p."""
    return risk_order(decision, None, p)


def patient_queue(store: ReviewStore, patient_id: str, include_reviewed: bool = False) -> list[QueueItem]:
    """The review queue restricted to one patient's images, in the queue's order."""
    shas = {a.sha256 for a in patient_images(store, patient_id)}
    return [q for q in store.queue(include_reviewed=include_reviewed) if q.sha256 in shas]


def queue_by_patient(items: Sequence[QueueItem], identities: dict[str, AttachedIdentity]) -> list[QueueItem]:
    """The review queue as a clinic works it: patients ordered by their highest-risk waiting case, each
    patient's lesions by their most urgent picture, then the lesion's pictures (oldest visit first). An
    image filed under no patient stands alone, placed by its own risk."""

    def urgency(q: QueueItem) -> tuple:
        return risk_order(q.decision, q.band, risk_probability(q))

    groups: dict[tuple, list[QueueItem]] = {}
    for q in items:
        a = identities.get(q.sha256)
        groups.setdefault(("p", a.patient_id) if a else ("image", q.sha256), []).append(q)

    def lesion_key(q: QueueItem) -> int:
        return identities[q.sha256].lesion_key

    out: list[QueueItem] = []
    for _, members in sorted(groups.items(), key=lambda kv: (min(urgency(q) for q in kv[1]), kv[0])):
        if members and members[0].sha256 not in identities:
            out.extend(members)
            continue
        lesions: dict[int, list[QueueItem]] = {}
        for q in members:
            lesions.setdefault(lesion_key(q), []).append(q)
        for _, pics in sorted(lesions.items(), key=lambda kv: (min(urgency(q) for q in kv[1]), kv[0])):
            out.extend(
                sorted(pics, key=lambda q: (identities[q.sha256].visit_date or date.max, urgency(q), q.result_id))
            )
    return out


def worklist(store: ReviewStore) -> list[PatientSummary]:
    """Every patient, those with the highest-risk waiting case first, then those with none waiting."""
    if store.schema_version < PATIENTS_SCHEMA_VERSION:
        return []
    waiting: dict[str, list[QueueItem]] = {}
    by_sha: dict[str, QueueItem] = {}
    for q in store.queue(include_reviewed=False):
        by_sha.setdefault(q.sha256, q)
    ids = identities_of(store, list(by_sha))
    for sha, q in by_sha.items():
        if sha in ids:
            waiting.setdefault(ids[sha].patient_id, []).append(q)
    out = []
    for pid, n_lesions, n_images, last in store.patient_counts():
        items = waiting.get(pid, [])
        top = min(items, key=lambda q: _urgency(q.decision, risk_probability(q)), default=None)
        out.append(
            PatientSummary(
                patient_id=pid,
                lesions=n_lesions,
                images=n_images,
                waiting=len(items),
                top_decision=None if top is None else top.decision,
                top_p_malignant=None if top is None else risk_probability(top),
                last_visit=last,
                top_words="" if top is None else outcome_label(top.decision, top.malignant_class, top.band),
            )
        )
    out.sort(key=lambda s: (s.waiting == 0, *_urgency(s.top_decision, s.top_p_malignant), s.patient_id))
    return out


def lesion_timeline(store: ReviewStore, lesion_key: int) -> list[TimelineEntry]:
    """Every picture of a lesion, oldest visit first (undated last), with p(malignant), the gate's
    decision and the latest review; `rose_from` marks a visit whose p rose over the previous one's."""
    rows = store.lesion_pictures(lesion_key)
    shas = [r[0] for r in rows]
    latest = store.latest_results(shas)
    reviews = store.latest_reviews(shas)
    entries: list[TimelineEntry] = []
    for sha, visit_date in rows:
        rid, path, p, decision, malignant, band, intake, confidence = latest.get(
            sha, (None, "", None, None, "", None, None, None)
        )
        entries.append(
            TimelineEntry(
                visit_date,
                sha,
                rid,
                path,
                p,
                decision,
                reviews.get(sha),
                malignant_class=malignant,
                band=band,
                intake=intake,
                confidence=None if confidence is None else float(confidence),
            )
        )
    return _mark_rises(entries)


def _mark_rises(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Compare each dated visit's highest p(malignant) with the previous dated visit's."""
    per_visit: dict[date, float] = {}
    for e in entries:
        if e.visit_date is not None and e.p_malignant is not None:
            per_visit[e.visit_date] = max(per_visit.get(e.visit_date, 0.0), e.p_malignant)
    dates = sorted(per_visit)
    previous = {later: per_visit[earlier] for earlier, later in zip(dates, dates[1:])}
    out = []
    for e in entries:
        before = previous.get(e.visit_date) if e.visit_date is not None else None
        if before is not None and e.p_malignant is not None and e.p_malignant - before >= ROSE_MARGIN:
            e = replace(e, rose_from=before)
        out.append(e)
    return out


def patient_lesions(store: ReviewStore, patient_id: str) -> list[LesionSummary]:
    """A patient's lesions with their body site and the latest visit's outcome, most urgent first."""
    out = []
    for key, label, labelled, site, n_visits, n_images, last in store.lesion_counts(patient_id):
        timeline = lesion_timeline(store, key)
        latest = _latest_entry(timeline)
        out.append(
            LesionSummary(
                lesion_key=key,
                patient_id=patient_id,
                label=label,
                labelled=labelled,
                body_site=site,
                visits=n_visits,
                images=n_images,
                last_visit=last,
                latest_decision=None if latest is None else latest.decision,
                latest_p_malignant=None if latest is None else latest.p_malignant,
                latest_review=None if latest is None else latest.review,
                latest=latest,
            )
        )
    out.sort(key=lambda s: (*_urgency(s.latest_decision, s.latest_p_malignant), s.label))
    return out


def _latest_entry(timeline: list[TimelineEntry]) -> TimelineEntry | None:
    """The most urgent screened picture of the lesion's latest visit."""
    dated = [e for e in timeline if e.visit_date is not None]
    if dated:
        last = max(e.visit_date for e in dated)  # type: ignore[type-var]  # dated: visit dates are set
        candidates = [e for e in dated if e.visit_date == last]
    else:
        candidates = timeline
    candidates = [e for e in candidates if e.decision is not None] or candidates
    return min(candidates, key=lambda e: _urgency(e.decision, e.p_malignant), default=None)


@dataclass(frozen=True)
class FilingSummary:
    """Where a run's pictures were filed, in one line a clinician reads after the run (issue 24, item 8)."""

    filed: int  # patients' pictures filed under a patient
    patients: int
    unfiled: int  # pictures of skin filed under no patient
    problems: tuple[str, ...]  # intake issues, each with its sidecar line

    @property
    def words(self) -> str:
        n = len(self.problems)
        text = (
            f"{self.filed} image{'s' if self.filed != 1 else ''} filed under {self.patients} "
            f"patient{'s' if self.patients != 1 else ''}, {n} identity problem{'s' if n != 1 else ''}"
        )
        if self.unfiled:
            text += f"; {self.unfiled} image{'s' if self.unfiled != 1 else ''} with no patient"
        return text

    @property
    def alarming(self) -> bool:
        """Pictures fell back to "no patient" in a run that files patients (or has identity problems)."""
        return self.unfiled > 0 and (self.filed > 0 or bool(self.problems))


def filing_summary(store: ReviewStore, results: Iterable[ScreeningResult], problems: Iterable[str]) -> FilingSummary:
    cases = [r for r in results if r.is_case and r.sha256]
    ids = identities_of(store, [r.sha256 for r in cases])  # type: ignore[misc]  # cases: sha256 is set
    filed = [r for r in cases if r.sha256 in ids]
    return FilingSummary(
        filed=len(filed),
        patients=len({ids[r.sha256].patient_id for r in filed}),  # type: ignore[index]  # cases: sha256 is set
        unfiled=len(cases) - len(filed),
        problems=tuple(str(p) for p in problems),
    )
