"""Auto-clearing: on, or off until the clinic's camera is validated.

On an unknown camera "no cancer suspected" cannot be trusted (issue 25: on another hospital's 200
images the default bundle cleared 5, 2 of them melanomas). With auto-clearing off, an image the
gate would clear is "review (low risk)" instead, with the reason (core/screening/holding.py), and the
audit can count what would have been cleared. A run turns it off by itself when the camera
check (core/screening/camera_check.py) fires, unless this clinic has validated its camera with this bundle:
at least VALIDATION_MIN_CASES confirmed cases, VALIDATION_MIN_MALIGNANT of them malignant, and no
confirmed malignancy cleared or held back from clearing. Why these numbers: with none of 30
malignancies cleared, the share of cancers the gate clears on this camera is below 10% with 95%
confidence (rule of three: 3 / 30); fewer cases could not tell a safe camera from a dangerous one.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.screening.audit import run_audit
from core.screening.camera_check import CameraCheck, check_files
from core.screening.holding import OFF_SETTING

VALIDATION_MIN_CASES = 200
VALIDATION_MIN_MALIGNANT = 30


@dataclass(frozen=True)
class CameraValidation:
    n_cases: int
    n_malignant: int
    malignant_cleared: int  # cleared, or held back from clearing by auto-clearing off

    @property
    def validated(self) -> bool:
        return (
            self.n_cases >= VALIDATION_MIN_CASES
            and self.n_malignant >= VALIDATION_MIN_MALIGNANT
            and self.malignant_cleared == 0
        )

    @property
    def words(self) -> str:
        if self.validated:
            return f"camera validated: {self.n_cases} confirmed cases, {self.n_malignant} malignant, none cleared"
        if self.malignant_cleared:
            return (
                f"camera not validated: {self.malignant_cleared} confirmed malignancies would have been cleared "
                f"({self.n_cases} confirmed cases)"
            )
        return (
            f"camera not validated: {self.n_cases} confirmed cases, {self.n_malignant} malignant; validation needs "
            f"{VALIDATION_MIN_CASES} with {VALIDATION_MIN_MALIGNANT} malignant and none cleared"
        )


def camera_validation(store, bundle) -> CameraValidation:
    """What this clinic's confirmed cases say about this bundle (any confidence) on its camera."""
    name = f"{bundle.manifest.name} {bundle.manifest.version}"
    groups = [g for g in run_audit(store, None, n_bootstrap=0).groups if g.bundle == name]
    seen: dict[str, tuple[bool, bool]] = {}  # one image counts once, whatever its confidences
    for g in groups:
        for c in g.cases:
            was = seen.get(c.result.sha256, (False, False))  # type: ignore[arg-type]  # audit cases are selected by sha256: it is set
            seen[c.result.sha256] = (c.malignant, was[1] or (c.malignant and (c.cleared or c.held)))  # type: ignore[index]  # audit cases are selected by sha256: it is set
    return CameraValidation(len(seen), sum(m for m, _ in seen.values()), sum(x for _, x in seen.values()))


@dataclass(frozen=True)
class RunClearing:
    """Whether a run may clear images, and why, in words (for the run summary, the CLI and the PDF)."""

    allowed: bool
    why: str  # the reason put on each held image ("" when allowed)
    camera: CameraCheck | None
    validation: CameraValidation | None = None

    @property
    def words(self) -> str:
        parts = []
        if self.camera is not None:
            parts.append(self.camera.words)
        if not self.allowed:
            parts.append(f"AUTO-CLEARING OFF for this run: no image is 'no cancer suspected' ({self.why})")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "auto_clearing": "on" if self.allowed else "off",
            "why": self.why,
            "words": self.words,
            **({"camera_check": self.camera.to_dict()} if self.camera is not None else {}),
            **({"validation": self.validation.words} if self.validation is not None else {}),
        }


def run_clearing(bundle, paths, setting_on: bool, store=None) -> RunClearing:
    """The camera check on the run's pictures and what it means for clearing in this run."""
    camera = check_files(paths, bundle.manifest.ood)
    if not setting_on:
        return RunClearing(False, OFF_SETTING, camera)
    if camera is None or not camera.fired:
        return RunClearing(True, "", camera)
    validation = camera_validation(store, bundle) if store is not None else None
    if validation is not None and validation.validated:
        return RunClearing(True, "", camera, validation)
    why = "the pictures differ from the training images and this camera is " + (
        "not validated"
        if validation is None
        else f"not validated: {validation.words.removeprefix('camera not validated: ')}"
    )
    return RunClearing(False, why, camera, validation)
