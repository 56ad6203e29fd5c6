"""A run: files through the models to stored outcomes, auto-clearing and the camera check, deciding
stored results again (re-gating) and the clinic's audit.

The room's modules, in the order they import one another (each only those above it):
settings (gate choice, run settings, result key), summary (progress, run summary), holding (auto-clearing's
hold), deciding (the app's gate path, shared with the evaluation), preparing (one file made ready),
pipeline (read-ahead), screener (the engines and a batch), regate, audit, audit_report, camera_check,
auto_clearing, folder (a folder as one stored run). What the app and the command line use is named here.
"""

from core.screening.audit import Audit, run_audit
from core.screening.audit_report import audit_html, write_audit_csv
from core.screening.folder import screen_folder
from core.screening.regate import RegateError, regate_run, run_confidence
from core.screening.screener import Screener
from core.screening.settings import GateChoice, RunSettings, cascade_margins, cascade_status, result_key
from core.screening.summary import Progress, RunSummary

__all__ = [
    "Audit",
    "GateChoice",
    "Progress",
    "RegateError",
    "RunSettings",
    "RunSummary",
    "Screener",
    "audit_html",
    "cascade_margins",
    "cascade_status",
    "regate_run",
    "result_key",
    "run_audit",
    "run_confidence",
    "screen_folder",
    "write_audit_csv",
]
