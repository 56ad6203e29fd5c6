"""Dialogs: first start (disclaimer and reviewer name) and about (Settings: desktop/settings_dialog.py)."""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
)

import core
from core import DISCLAIMER, Bundle, clinician_page
from core import LICENCE as SIMILAR_LICENCE
from core import has_index as has_similar_index

NOTICE_NAMES = ("NOTICES", "NOTICES.txt", "NOTICES.md", "THIRD_PARTY_NOTICES", "THIRD_PARTY_NOTICES.txt")
NO_NOTICES = (
    "No NOTICES file was found next to the application or in its installation folder.\n"
    "MelaScreen uses Qt for Python (PySide6, LGPLv3), ONNX Runtime (MIT), OpenCV (Apache 2.0) and "
    "NumPy (BSD); their licence texts ship with those packages."
)


def notice_folders() -> list[Path]:
    """Where a NOTICES file may be: beside the app (frozen or script), inside a bundled app, the repo root."""
    folders = []
    if getattr(sys, "frozen", False):
        folders.append(Path(sys.executable).resolve().parent)
        if hasattr(sys, "_MEIPASS"):
            folders.append(Path(sys._MEIPASS))  # noqa: SLF001 - PyInstaller's unpack folder
    if sys.argv and sys.argv[0]:
        folders.append(Path(sys.argv[0]).resolve().parent)
    here = Path(__file__).resolve().parent
    folders += [here, here.parent]  # desktop/ and the repo (or site-packages) root
    seen, out = set(), []
    for f in folders:
        if f not in seen:
            seen.add(f)
            out.append(f)
    return out


def find_notices(folders: list[Path] | None = None) -> Path | None:
    for folder in folders if folders is not None else notice_folders():
        for name in NOTICE_NAMES:
            p = folder / name
            if p.is_file():
                return p
    return None


@dataclass(frozen=True)
class Notices:
    """The third-party notices as the About box shows them: the file found (None: none) and its text."""

    path: Path | None = None
    text: str = NO_NOTICES


def read_notices(folders: list[Path] | None = None) -> Notices:
    """Find and read the NOTICES file (a worker does this before the About box opens); a file that cannot be
    read says so in its place."""
    path = find_notices(folders)
    if path is None:
        return Notices()
    try:
        return Notices(path, path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        return Notices(path, f"{path} could not be read: {exc}")


class FirstStartDialog(QDialog):
    """Shown until the disclaimer is accepted: what MelaScreen is not, and who is reviewing."""

    def __init__(self, reviewer: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Welcome to MelaScreen")
        self.setMinimumWidth(560)
        title = QLabel("<h2>MelaScreen</h2>")
        text = QLabel(
            "<p style='font-size:13px'><b>Please read this before you start.</b></p>"
            f"<p style='font-size:13px'>{DISCLAIMER}</p>"
            "<p>MelaScreen sorts dermoscopy images into <b>no cancer suspected</b>, <b>review</b> (with a high, "
            "moderate or low risk band) and <b>suspicious for</b> a named skin cancer, to help you decide which "
            "ones to look at first. Review and suspicious images go to a review queue, highest risk first, where "
            "a clinician records a decision (no action, monitor, excise, refer, retake). Every review is stored "
            "with the reviewer's name and cannot be changed afterwards.</p>"
        )
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        self.name = QLineEdit(reviewer)
        self.name.setPlaceholderText("e.g. Dr A. Example or your initials")
        self.accept_box = QCheckBox("I understand that MelaScreen is a research tool and does not make a diagnosis.")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Reviewer name:", self.name)
        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(text)
        lay.addLayout(form)
        lay.addWidget(self.accept_box)
        lay.addWidget(self.buttons)
        self.name.textChanged.connect(self._update)
        self.accept_box.toggled.connect(self._update)
        self._update()

    def _update(self) -> None:
        ok = self.accept_box.isChecked() and bool(self.name.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def reviewer(self) -> str:
        return self.name.text().strip()


def _validation_html(m) -> str:
    """The ensemble's validation AUC: per source where the gate was re-fitted on several (export.refit),
    else on the one split it was packaged with."""
    per_set = m.provenance.get("gate_refit", {}).get("ensemble_validation")
    packaged = m.provenance.get("calibration", {}).get("ensemble_validation")
    if not per_set and packaged:
        per_set = {"the validation split": packaged}
    if not per_set:
        return "<p>"
    parts = "; ".join(
        f"{_auc_text(v.get('mel_auc'))} on {html.escape(name)} ({v.get('n', '?')} images, "
        f"{v.get('n_melanoma', '?')} melanomas)"
        for name, v in per_set.items()
    )
    return (
        f"<p><b>Validation</b> (the images temperatures and thresholds were fitted on): ensemble melanoma AUC {parts}. "
    )


def bundle_html(bundle: Bundle | None, verified: bool, provider_in_use: str | None, load_message: str = "") -> str:
    if bundle is None:
        return f"<p><b>No model bundle is loaded.</b></p><p>{load_message}</p>"
    m = bundle.manifest
    rows = "".join(
        f"<tr><td>{mem.file}</td><td>{mem.arch}</td><td>{mem.seed}</td><td>{mem.temperature:.3g}</td>"
        f"<td>{_auc_text(mem.val_metrics.get('tta_val_mel_auc', mem.val_metrics.get('val_mel_auc')))}</td>"
        f"<td><code>{mem.sha256[:16]}…</code></td></tr>"
        for mem in m.members
    )
    metrics = (
        _validation_html(m)
        + "The figures on unseen test lesions, over all melanomas, are in the <i>Model card</i> tab.</p>"
    )
    check = "all member checksums verified when loaded" if verified else "checksums NOT verified"
    return (
        f"<h3>{m.name} <small>version {m.version}</small></h3>"
        f"<p>Created {m.created or 'unknown'} · task {m.task} · input {m.input_size}×{m.input_size} px · "
        f"{len(m.tta_views)} test-time views · identity <code>{bundle.identity[:16]}</code><br>"
        f"Loaded from {bundle.source or bundle.root}<br>"
        f"<b>{check}</b> · {html.escape(bundle.trust_text)} · running on {provider_in_use or '—'}</p>"
        f"{_trust_warnings_html(bundle.trust_warnings)}"
        "<table border='1' cellspacing='0' cellpadding='3'><tr><th>member</th><th>architecture</th><th>seed</th>"
        f"<th>temperature</th><th>val. AUC</th><th>SHA-256</th></tr>{rows}</table>"
        f"<p>Classes: {', '.join(m.class_names)} (p(melanoma) = {m.positive_class}; "
        + (
            f"{m.risk_scope.note})</p>"
            if m.risk_scope.note  # a bundle written before malignancy triage says what its gate works on
            else f"the gate works on p(malignant) = {' + '.join(m.malignant_classes)})</p>"
        )
        + f"{metrics}"
    )


def _trust_warnings_html(warnings) -> str:
    """Key files or folders passed over when the trusted keys were read, in red (empty when none)."""
    if not warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f"<p style='color:#c62828'><b>Trusted keys passed over:</b></p><ul style='color:#c62828'>{items}</ul>"


def _auc_text(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "—"


class AboutDialog(QDialog):
    def __init__(
        self,
        bundle: Bundle | None,
        verified: bool,
        provider_in_use: str | None,
        load_message: str = "",
        notices: Notices | None = None,
        parent=None,
    ):
        """`notices`: read before the box opens (read_notices, on a worker), never here on the GUI thread;
        None: none was found."""
        super().__init__(parent)
        self.setWindowTitle("About MelaScreen")
        similar = bundle is not None and has_similar_index(bundle)
        self.resize(780, 860)
        head = QLabel(
            f"<h2>MelaScreen {core.__version__}</h2>"
            f"<p style='color:#c62828'><b>{(bundle.manifest.disclaimer if bundle else DISCLAIMER)}</b></p>"
            + (f"<p>Similar training images in the case view: {SIMILAR_LICENCE} (see NOTICES).</p>" if similar else "")
        )
        head.setWordWrap(True)
        self.head = head
        # At the top, in plain words for clinicians: from the bundle's own figures (core.records.clinician_page).
        self.clinician = QTextBrowser()
        self.clinician.setStyleSheet("QTextBrowser { background: #f5f9fc; }")
        if bundle is not None:
            self.clinician.setHtml(clinician_page(bundle.manifest, bundle.model_card).html())
        else:
            self.clinician.setHtml(f"<p><b>No model bundle is loaded.</b></p><p>{html.escape(load_message)}</p>")
        # as tall as its half page of text at the dialog's width, so the tabs below keep the rest
        page = self.clinician.document().clone()
        page.setTextWidth(740)
        self.clinician.setMinimumHeight(min(440, int(page.size().height()) + 16))
        tabs = QTabWidget()
        self.tabs = tabs
        model = QTextBrowser()
        model.setHtml(bundle_html(bundle, verified, provider_in_use, load_message))
        tabs.addTab(model, "Model bundle")
        card = QTextBrowser()
        if bundle is not None and bundle.model_card:
            card.setMarkdown(bundle.model_card)
        else:
            card.setPlainText("No model card (model_card.md) in this bundle.")
        tabs.addTab(card, "Model card")
        notices = notices if notices is not None else Notices()
        self.notices_path = notices.path
        notice_view = QPlainTextEdit()
        notice_view.setReadOnly(True)
        notice_view.setPlainText(notices.text)
        self.notices_text = notice_view
        tabs.addTab(notice_view, "Third-party notices")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.clinician)
        lay.addWidget(tabs, 1)
        lay.addWidget(buttons)
