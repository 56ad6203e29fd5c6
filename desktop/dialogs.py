"""Dialogs: first start (disclaimer and reviewer name), settings, about."""

from __future__ import annotations

import html
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

import core
from core.common.paths import default_database_path
from core.decision.gate import MELANOMA_ONLY_NOTE
from core.inference.bundle import Bundle, default_bundle_path
from core.inference.engines import ENGINES, PRECISIONS, available_providers, openvino_version
from core.inference.manifest import DISCLAIMER
from core.inference.similar import LICENCE as SIMILAR_LICENCE
from core.inference.similar import has_index as has_similar_index
from core.records.clinic import Clinic, load_clinic, save_clinic
from core.records.clinician_page import clinician_page

from .settings import PROVIDERS, AppSettings

NOTICE_NAMES = ("NOTICES", "NOTICES.txt", "NOTICES.md", "THIRD_PARTY_NOTICES", "THIRD_PARTY_NOTICES.txt")


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


def _path_row(edit: QLineEdit, button: QPushButton) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    lay.addWidget(button)
    return w


class SettingsDialog(QDialog):
    def __init__(
        self, settings: AppSettings, provider_in_use: str | None = None, bundle_message: str = "", parent=None
    ):
        super().__init__(parent)
        self.setWindowTitle("MelaScreen settings")
        self.setMinimumWidth(640)
        self._settings = settings
        default = default_bundle_path()
        self.bundle = QLineEdit(settings.bundle_path)
        # The path is long: the placeholder stays short, the tooltip has it whole.
        self.bundle.setPlaceholderText("the bundle installed with MelaScreen")
        self.bundle.setToolTip(f"Empty: the bundle installed with MelaScreen ({default})")
        folder_btn = QPushButton("Folder…")
        folder_btn.clicked.connect(self._choose_bundle_folder)
        zip_btn = QPushButton("Zip…")
        zip_btn.clicked.connect(self._choose_bundle_zip)
        bundle_row = _path_row(self.bundle, folder_btn)
        bundle_row.layout().addWidget(zip_btn)
        self.bundle_message = QLabel(bundle_message)
        self.bundle_message.setWordWrap(True)
        self.bundle_message.setStyleSheet("color:#c62828;")
        self.bundle_message.setVisible(bool(bundle_message))

        self.provider = QComboBox()
        words = {"auto": "Automatic (GPU when available)", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)"}
        for p in PROVIDERS:
            self.provider.addItem(words[p], p)
        self.provider.setCurrentIndex(
            max(0, PROVIDERS.index(settings.provider) if settings.provider in PROVIDERS else 0)
        )
        # Only what this offline app can use: cloud providers (e.g. Azure) are never offered.
        avail = ", ".join(p for p in available_providers() if p in ("CPUExecutionProvider", "CUDAExecutionProvider"))
        in_use = provider_in_use or "models not loaded"
        ov = openvino_version()
        engines = f"onnxruntime, OpenVINO {ov}" if ov else "onnxruntime (OpenVINO is not installed)"
        self.provider_info = QLabel(
            f"In use now: <b>{in_use}</b><br>Available in this installation: {avail}; engines: {engines}"
        )
        self.provider_info.setWordWrap(True)

        self.engine = QComboBox()
        engine_words = {
            "auto": "Automatic (OpenVINO when it gives the same results, else onnxruntime)",
            "onnxruntime": "onnxruntime (the reference)",
            "openvino": "OpenVINO (faster on the CPU)",
        }
        for e in ENGINES:
            self.engine.addItem(engine_words[e], e)
        self.engine.setCurrentIndex(max(0, self.engine.findData(settings.engine)))
        self.precision = QComboBox()
        precision_words = {
            "exact": "Exact (checked against the reference at start)",
            "fast": "Fast (bf16 where the CPU supports it; small differences)",
        }
        for q in PRECISIONS:
            self.precision.addItem(precision_words[q], q)
        self.precision.setCurrentIndex(max(0, self.precision.findData(settings.precision)))

        self.use_default_confidence = QCheckBox("Use the bundle's default (0.99)")
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(0.5, 0.999)
        self.confidence.setDecimals(3)
        self.confidence.setSingleStep(0.01)
        self.confidence.setValue(settings.confidence if settings.confidence is not None else 0.99)
        self.use_default_confidence.setChecked(settings.confidence is None)
        self.use_default_confidence.toggled.connect(lambda on: self.confidence.setEnabled(not on))
        self.confidence.setEnabled(settings.confidence is not None)
        conf_row = QWidget()
        cl = QHBoxLayout(conf_row)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.confidence)
        cl.addWidget(self.use_default_confidence, 1)
        conf_help = QLabel(
            "A result is called “no cancer suspected” or “suspicious” only when the models are at least this "
            "confident; everything else goes to the review queue, in risk bands."
        )
        conf_help.setWordWrap(True)
        conf_help.setStyleSheet("color:#455a64;")

        self.database = QLineEdit(settings.database_path)
        self.database.setPlaceholderText("the default results file (see tooltip)")
        self.database.setToolTip(f"Empty: {default_database_path()}")
        db_btn = QPushButton("Choose…")
        db_btn.clicked.connect(self._choose_database)
        self.reviewer = QLineEdit(settings.reviewer)
        self.reviewer.setPlaceholderText("your name or initials, stored with every review")
        # The clinic printed at the top of every page of a patient report (core.records.clinic: the command line
        # reads the same file).
        clinic = load_clinic()
        self.clinic_name = QLineEdit(clinic.name)
        self.clinic_name.setPlaceholderText("printed at the top of patient reports")
        self.clinic_address = QPlainTextEdit(clinic.address)
        self.clinic_address.setPlaceholderText("street, town (one or two lines)")
        self.clinic_address.setFixedHeight(52)
        self.clinic_phone = QLineEdit(clinic.phone)
        # The same switch as the Evidence tab's (screening/auto_clearing.py): off, no image is "no cancer suspected".
        self.auto_clearing = QComboBox()
        self.auto_clearing.addItem("on", True)
        self.auto_clearing.addItem("off until this camera is validated", False)
        self.auto_clearing.setCurrentIndex(0 if settings.auto_clearing else 1)
        clearing_help = QLabel(
            "Off: no image is “no cancer suspected”; each is “review (low risk)” with the reason. A run turns it "
            "off by itself when its pictures differ from the training images (camera check), unless this camera "
            "is validated (Evidence tab)."
        )
        clearing_help.setWordWrap(True)
        clearing_help.setStyleSheet("color:#455a64;")
        self.cascade = QComboBox()
        self.cascade.addItem("on: part of the ensemble settles the clear cases (faster)", True)
        self.cascade.addItem("off: the whole ensemble screens every image", False)
        self.cascade.setCurrentIndex(0 if settings.cascade else 1)
        self.cascade.setToolTip(
            "Used only when the model bundle carries cascade margins (fitted so that the outcome equals the whole "
            "ensemble's); each result's details say when the first stage decided."
        )
        self.share_exports = QCheckBox("Share exported files with other users of this computer")
        self.share_exports.setChecked(settings.share_exports)
        self.share_exports.setToolTip(
            "Off (recommended): reports, CSV files and heat maps you export hold patient data and are readable "
            "by you only. On: other users of this computer may read them (as your system's defaults allow)."
        )

        form = QFormLayout()
        form.addRow("Model bundle:", bundle_row)
        form.addRow("", self.bundle_message)
        form.addRow("Inference on:", self.provider)
        form.addRow("Engine:", self.engine)
        form.addRow("Precision:", self.precision)
        form.addRow("", self.provider_info)
        form.addRow("Confidence:", conf_row)
        form.addRow("", conf_help)
        form.addRow("Auto-clearing:", self.auto_clearing)
        form.addRow("", clearing_help)
        form.addRow("Cascade:", self.cascade)
        form.addRow("Results file:", _path_row(self.database, db_btn))
        form.addRow("Reviewer name:", self.reviewer)
        form.addRow("Clinic name:", self.clinic_name)
        form.addRow("Clinic address:", self.clinic_address)
        form.addRow("Clinic phone:", self.clinic_phone)
        form.addRow("Exported files:", self.share_exports)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def clinic(self) -> Clinic:
        return Clinic(self.clinic_name.text(), self.clinic_address.toPlainText(), self.clinic_phone.text()).checked()

    def accept(self) -> None:
        """Save the clinic (its own small file, shared with the command line); the app saves the rest."""
        if self.clinic() != load_clinic():
            try:
                save_clinic(self.clinic())
            except OSError as exc:
                from PySide6.QtWidgets import QMessageBox

                QMessageBox.warning(self, "Clinic not saved", f"The clinic's details could not be saved:\n{exc}")
                return
        super().accept()

    def _choose_bundle_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model bundle folder", self.bundle.text())
        if path:
            self.bundle.setText(path)

    def _choose_bundle_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a model bundle (.zip)", self.bundle.text(), "Model bundle (*.zip)"
        )
        if path:
            self.bundle.setText(path)

    def _choose_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Results file",
            self.database.text() or str(default_database_path()),
            "MelaScreen results (*.sqlite)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.database.setText(path)

    def values(self) -> AppSettings:
        return replace(
            self._settings,
            bundle_path=self.bundle.text().strip(),
            provider=self.provider.currentData(),
            engine=self.engine.currentData(),
            precision=self.precision.currentData(),
            confidence=None if self.use_default_confidence.isChecked() else round(self.confidence.value(), 3),
            database_path=self.database.text().strip(),
            reviewer=self.reviewer.text().strip(),
            auto_clearing=bool(self.auto_clearing.currentData()),
            cascade=bool(self.cascade.currentData()),
            share_exports=self.share_exports.isChecked(),
        )


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
            f"{MELANOMA_ONLY_NOTE})</p>"
            if m.melanoma_only_gate
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
        notices: Path | None = None,
        parent=None,
    ):
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
        self.notices_path = notices
        notice_view = QPlainTextEdit()
        notice_view.setReadOnly(True)
        if notices is not None:
            try:
                notice_view.setPlainText(notices.read_text(encoding="utf-8", errors="replace"))
            except OSError as exc:
                notice_view.setPlainText(f"{notices} could not be read: {exc}")
        else:
            notice_view.setPlainText(
                "No NOTICES file was found next to the application or in its installation folder.\n"
                "MelaScreen uses Qt for Python (PySide6, LGPLv3), ONNX Runtime (MIT), OpenCV (Apache 2.0) and "
                "NumPy (BSD); their licence texts ship with those packages."
            )
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
