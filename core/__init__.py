"""MelaScreen's screening engine: files -> decision -> store, in rooms along the flow.

No torch, no Qt: this package is all the installed app needs to screen. Its rooms, lowest first:
common < decision < files < imaging < inference < records < screening (a room imports only rooms below
it: the layers contract in pyproject.toml). This module is the front door: the names the app (desktop/)
and the command line (cli/) use, loaded when first asked for, so `import core` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from core.common.offline import keep_offline

__version__ = "0.1.0"

# Before any core module imports onnxruntime, which reads its telemetry opt-out once, at import.
keep_offline()

if TYPE_CHECKING:  # what the type checker sees; at run time the names load on first use (__getattr__)
    from core.common.errors import BundleError, EngineError, ImageReadError, MelaScreenError, ProviderError, StoreError
    from core.common.paths import (
        OutputPathError,
        atomic_target,
        check_output_file,
        check_output_folder,
        default_database_path,
        make_private_folder,
        user_config_dir,
        write_file_atomically,
    )
    from core.common.png_text import png_with_text
    from core.common.resizing import resize_longest_side
    from core.decision.confidence_meanings import confidence_meanings
    from core.decision.gate import (
        CONFIDENCE_RANGE,
        DEFAULT_CONFIDENCE,
        MALIGNANCY,
        RiskScope,
        Thresholds,
        check_confidence,
    )
    from core.decision.results import Decision, ScreeningResult, named_class, risk_probability
    from core.decision.vocabulary import (
        ALL_OUTCOMES,
        BAND_CODES,
        BANDS,
        DEFAULT_FOLLOW_UP_MONTHS,
        MAX_FOLLOW_UP_MONTHS,
        NO_INTAKE_CHECK,
        NOT_DERMOSCOPY,
        NOT_SCREENED,
        REVIEW_CHOICES,
        REVIEW_CODES,
        Outcome,
        band,
        class_name,
        outcome,
        outcome_label,
        outcome_words,
        percent,
        review_choice,
        review_words,
        risk_order,
    )
    from core.files.identity import LAYOUTS, IdentitySettings
    from core.files.images import read_image
    from core.files.scan import scan_candidates, visible_subfolders
    from core.files.sidecar import SIDECAR_NAME
    from core.imaging.body_map import VIEW_BOX, Pin, figure_svg, place_pins
    from core.imaging.cam import HEATMAP_MODES, compose, overlay
    from core.imaging.model_input import InputSpec, model_input
    from core.imaging.pictures import case_picture, decode_thumbnail
    from core.inference.bundle import Bundle, default_bundle_path, load_bundle
    from core.inference.class_cam import class_heat_map
    from core.inference.engine_choices import ENGINES, PRECISIONS, PROVIDER_CHOICES
    from core.inference.engines import available_providers, openvino_version
    from core.inference.ensemble import Ensemble, EnsembleSettings
    from core.inference.manifest import DISCLAIMER
    from core.inference.signing import Trust
    from core.inference.similar import LICENCE, NEIGHBOURS, SimilarCases, has_index
    from core.records.clinic import Clinic, load_clinic, save_clinic
    from core.records.clinician_page import clinician_page
    from core.records.evidence import (
        DIAGNOSES,
        METHODS,
        ConfirmedDiagnosis,
        EvidenceError,
        add_confirmed,
        confirmed_for_images,
        diagnosis_words,
        image_of_file,
        import_csv,
        lesion_key,
    )
    from core.records.followup import FollowUp, due_follow_ups, end_of_month, write_follow_up_csv
    from core.records.paged import REPORT_CSS
    from core.records.patient_pages import paged_report
    from core.records.patient_record import build_patient_report
    from core.records.patient_report import write_patient_report
    from core.records.patients import (
        AttachedIdentity,
        FilingSummary,
        LesionSummary,
        PatientSummary,
        TimelineEntry,
        filing_summary,
        identities_of,
        identity_of,
        lesion_timeline,
        patient_lesions,
        patient_queue,
        queue_by_patient,
        worklist,
    )
    from core.records.provenance import Provenance, provenance_of_bundle, provenance_of_run
    from core.records.report import result_words, write_run_csv
    from core.records.run_report import run_report, write_run_report_html
    from core.records.runs import shown_status
    from core.records.store import QueueItem, Review, ReviewStore, RunInfo
    from core.records.store.clock import local_time
    from core.screening import (
        GateChoice,
        Progress,
        RunSettings,
        RunSummary,
        Screener,
        audit_html,
        cascade_margins,
        cascade_status,
        run_audit,
        screen_folder,
        write_audit_csv,
    )
    from core.screening.regate import regate_run, run_confidence

# name -> the module that defines it
_PUBLIC: dict[str, str] = {
    "BundleError": "core.common.errors",
    "EngineError": "core.common.errors",
    "ImageReadError": "core.common.errors",
    "MelaScreenError": "core.common.errors",
    "ProviderError": "core.common.errors",
    "StoreError": "core.common.errors",
    "OutputPathError": "core.common.paths",
    "atomic_target": "core.common.paths",
    "check_output_file": "core.common.paths",
    "check_output_folder": "core.common.paths",
    "default_database_path": "core.common.paths",
    "make_private_folder": "core.common.paths",
    "user_config_dir": "core.common.paths",
    "write_file_atomically": "core.common.paths",
    "png_with_text": "core.common.png_text",
    "resize_longest_side": "core.common.resizing",
    "confidence_meanings": "core.decision.confidence_meanings",
    "CONFIDENCE_RANGE": "core.decision.gate",
    "DEFAULT_CONFIDENCE": "core.decision.gate",
    "MALIGNANCY": "core.decision.gate",
    "RiskScope": "core.decision.gate",
    "Thresholds": "core.decision.gate",
    "check_confidence": "core.decision.gate",
    "Decision": "core.decision.results",
    "ScreeningResult": "core.decision.results",
    "named_class": "core.decision.results",
    "risk_probability": "core.decision.results",
    "ALL_OUTCOMES": "core.decision.vocabulary",
    "BANDS": "core.decision.vocabulary",
    "BAND_CODES": "core.decision.vocabulary",
    "DEFAULT_FOLLOW_UP_MONTHS": "core.decision.vocabulary",
    "MAX_FOLLOW_UP_MONTHS": "core.decision.vocabulary",
    "NOT_DERMOSCOPY": "core.decision.vocabulary",
    "NOT_SCREENED": "core.decision.vocabulary",
    "NO_INTAKE_CHECK": "core.decision.vocabulary",
    "Outcome": "core.decision.vocabulary",
    "REVIEW_CHOICES": "core.decision.vocabulary",
    "REVIEW_CODES": "core.decision.vocabulary",
    "band": "core.decision.vocabulary",
    "class_name": "core.decision.vocabulary",
    "outcome": "core.decision.vocabulary",
    "outcome_label": "core.decision.vocabulary",
    "outcome_words": "core.decision.vocabulary",
    "percent": "core.decision.vocabulary",
    "review_choice": "core.decision.vocabulary",
    "review_words": "core.decision.vocabulary",
    "risk_order": "core.decision.vocabulary",
    "IdentitySettings": "core.files.identity",
    "LAYOUTS": "core.files.identity",
    "read_image": "core.files.images",
    "scan_candidates": "core.files.scan",
    "visible_subfolders": "core.files.scan",
    "SIDECAR_NAME": "core.files.sidecar",
    "Pin": "core.imaging.body_map",
    "VIEW_BOX": "core.imaging.body_map",
    "figure_svg": "core.imaging.body_map",
    "place_pins": "core.imaging.body_map",
    "HEATMAP_MODES": "core.imaging.cam",
    "compose": "core.imaging.cam",
    "overlay": "core.imaging.cam",
    "InputSpec": "core.imaging.model_input",
    "model_input": "core.imaging.model_input",
    "case_picture": "core.imaging.pictures",
    "decode_thumbnail": "core.imaging.pictures",
    "Bundle": "core.inference.bundle",
    "default_bundle_path": "core.inference.bundle",
    "load_bundle": "core.inference.bundle",
    "class_heat_map": "core.inference.class_cam",
    "ENGINES": "core.inference.engine_choices",
    "PRECISIONS": "core.inference.engine_choices",
    "PROVIDER_CHOICES": "core.inference.engine_choices",
    "available_providers": "core.inference.engines",
    "openvino_version": "core.inference.engines",
    "Ensemble": "core.inference.ensemble",
    "EnsembleSettings": "core.inference.ensemble",
    "DISCLAIMER": "core.inference.manifest",
    "Trust": "core.inference.signing",
    "LICENCE": "core.inference.similar",
    "NEIGHBOURS": "core.inference.similar",
    "SimilarCases": "core.inference.similar",
    "has_index": "core.inference.similar",
    "Clinic": "core.records.clinic",
    "load_clinic": "core.records.clinic",
    "save_clinic": "core.records.clinic",
    "clinician_page": "core.records.clinician_page",
    "ConfirmedDiagnosis": "core.records.evidence",
    "DIAGNOSES": "core.records.evidence",
    "EvidenceError": "core.records.evidence",
    "METHODS": "core.records.evidence",
    "add_confirmed": "core.records.evidence",
    "confirmed_for_images": "core.records.evidence",
    "diagnosis_words": "core.records.evidence",
    "image_of_file": "core.records.evidence",
    "import_csv": "core.records.evidence",
    "lesion_key": "core.records.evidence",
    "FollowUp": "core.records.followup",
    "due_follow_ups": "core.records.followup",
    "end_of_month": "core.records.followup",
    "write_follow_up_csv": "core.records.followup",
    "REPORT_CSS": "core.records.paged",
    "paged_report": "core.records.patient_pages",
    "build_patient_report": "core.records.patient_record",
    "write_patient_report": "core.records.patient_report",
    "AttachedIdentity": "core.records.patients",
    "FilingSummary": "core.records.patients",
    "LesionSummary": "core.records.patients",
    "PatientSummary": "core.records.patients",
    "TimelineEntry": "core.records.patients",
    "filing_summary": "core.records.patients",
    "identities_of": "core.records.patients",
    "identity_of": "core.records.patients",
    "lesion_timeline": "core.records.patients",
    "patient_lesions": "core.records.patients",
    "patient_queue": "core.records.patients",
    "queue_by_patient": "core.records.patients",
    "worklist": "core.records.patients",
    "Provenance": "core.records.provenance",
    "provenance_of_bundle": "core.records.provenance",
    "provenance_of_run": "core.records.provenance",
    "result_words": "core.records.report",
    "write_run_csv": "core.records.report",
    "run_report": "core.records.run_report",
    "write_run_report_html": "core.records.run_report",
    "shown_status": "core.records.runs",
    "QueueItem": "core.records.store",
    "Review": "core.records.store",
    "ReviewStore": "core.records.store",
    "RunInfo": "core.records.store",
    "local_time": "core.records.store.clock",
    "GateChoice": "core.screening",
    "Progress": "core.screening",
    "RunSettings": "core.screening",
    "RunSummary": "core.screening",
    "Screener": "core.screening",
    "audit_html": "core.screening",
    "cascade_margins": "core.screening",
    "cascade_status": "core.screening",
    "run_audit": "core.screening",
    "screen_folder": "core.screening",
    "write_audit_csv": "core.screening",
    "regate_run": "core.screening.regate",
    "run_confidence": "core.screening.regate",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """`from core import X`: the module that defines X is imported the first time X is asked for."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
