"""The Settings dialog: the model bundle and engines, the gate's confidence, the results file, the reviewer
and the clinic, auto-clearing, the cascade and who may read exported files."""

from __future__ import annotations

import html
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
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
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core import (
    CONFIDENCE_RANGE,
    DEFAULT_CONFIDENCE,
    ENGINES,
    PRECISIONS,
    PROVIDER_CHOICES,
    Clinic,
    available_providers,
    default_bundle_path,
    default_database_path,
    load_clinic,
    openvino_version,
    save_clinic,
)

from .settings import AppSettings
from .workers import Worker, WorkerPool

PROVIDER_WORDS = {"auto": "Automatic (GPU when available)", "cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)"}
ENGINE_WORDS = {
    "auto": "Automatic (OpenVINO when it gives the same results, else onnxruntime)",
    "onnxruntime": "onnxruntime (the reference)",
    "openvino": "OpenVINO (faster on the CPU)",
}
PRECISION_WORDS = {
    "exact": "Exact (checked against the reference at start)",
    "fast": "Fast (bf16 where the CPU supports it; small differences)",
}


def _path_row(edit: QLineEdit, *buttons: QPushButton) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    for button in buttons:
        lay.addWidget(button)
    return w


def _help(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color:#455a64;")
    return label


def _choices(words: dict[str, str], codes, current) -> QComboBox:
    box = QComboBox()
    for code in codes:
        box.addItem(words[code], code)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class SettingsDialog(QDialog):
    """`default_confidence`: the loaded bundle's default confidence (None: no bundle loaded).

    The clinic's file is read on a worker (`clinic_loaded` follows; its rows wait, disabled, until then) and
    saved on one when Save is pressed (the dialog closes once it is written)."""

    clinic_loaded = Signal(object)  # the Clinic read, once it is in its rows

    def __init__(
        self,
        settings: AppSettings,
        provider_in_use: str | None = None,
        bundle_message: str = "",
        parent=None,
        *,
        default_confidence: float | None = None,
        pool: WorkerPool | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("MelaScreen settings")
        self.setMinimumWidth(640)
        self._settings = settings
        self.pool = pool if pool is not None else WorkerPool(max_threads=1)
        self._clinic: Clinic | None = None  # as read from its file (None until it arrives)
        self._saving = False
        form = QFormLayout()
        self._bundle_rows(form, bundle_message)
        self._engine_rows(form, provider_in_use)
        self._gate_rows(form, default_confidence)
        self._people_rows(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)
        self._read_clinic()

    # -- the rows, top to bottom ----------------------------------------------------------------

    def _bundle_rows(self, form: QFormLayout, bundle_message: str) -> None:
        self.bundle = QLineEdit(self._settings.bundle_path)
        # The path is long: the placeholder stays short, the tooltip has it whole.
        self.bundle.setPlaceholderText("the bundle installed with MelaScreen")
        self.bundle.setToolTip(f"Empty: the bundle installed with MelaScreen ({default_bundle_path()})")
        folder_btn = QPushButton("Folder…")
        folder_btn.clicked.connect(self._choose_bundle_folder)
        zip_btn = QPushButton("Zip…")
        zip_btn.clicked.connect(self._choose_bundle_zip)
        self.bundle_message = QLabel(bundle_message)
        self.bundle_message.setWordWrap(True)
        self.bundle_message.setStyleSheet("color:#c62828;")
        self.bundle_message.setVisible(bool(bundle_message))
        form.addRow("Model bundle:", _path_row(self.bundle, folder_btn, zip_btn))
        form.addRow("", self.bundle_message)

    def _engine_rows(self, form: QFormLayout, provider_in_use: str | None) -> None:
        s = self._settings
        self.provider = _choices(PROVIDER_WORDS, PROVIDER_CHOICES, s.provider)
        # Only what this offline app can use: cloud providers (e.g. Azure) are never offered.
        avail = ", ".join(p for p in available_providers() if p in ("CPUExecutionProvider", "CUDAExecutionProvider"))
        in_use = provider_in_use or "models not loaded"
        ov = openvino_version()
        engines = f"onnxruntime, OpenVINO {ov}" if ov else "onnxruntime (OpenVINO is not installed)"
        self.provider_info = QLabel(
            f"In use now: <b>{in_use}</b><br>Available in this installation: {avail}; engines: {engines}"
        )
        self.provider_info.setWordWrap(True)
        self.engine = _choices(ENGINE_WORDS, ENGINES, s.engine)
        self.precision = _choices(PRECISION_WORDS, PRECISIONS, s.precision)
        form.addRow("Inference on:", self.provider)
        form.addRow("Engine:", self.engine)
        form.addRow("Precision:", self.precision)
        form.addRow("", self.provider_info)

    def _gate_rows(self, form: QFormLayout, default_confidence: float | None) -> None:
        s = self._settings
        said = f" ({default_confidence:g})" if default_confidence is not None else ""
        self.use_default_confidence = QCheckBox(f"Use the bundle's default{said}")
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(CONFIDENCE_RANGE[0], 0.999)  # [0.5, 1) at the spin box's 3 decimals
        self.confidence.setDecimals(3)
        self.confidence.setSingleStep(0.01)
        fallback = default_confidence if default_confidence is not None else DEFAULT_CONFIDENCE
        self.confidence.setValue(s.confidence if s.confidence is not None else fallback)
        self.use_default_confidence.setChecked(s.confidence is None)
        self.use_default_confidence.toggled.connect(lambda on: self.confidence.setEnabled(not on))
        self.confidence.setEnabled(s.confidence is not None)
        conf_row = QWidget()
        cl = QHBoxLayout(conf_row)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.confidence)
        cl.addWidget(self.use_default_confidence, 1)
        # The same switch as the Evidence tab's (screening/auto_clearing.py): off, no image is "no cancer suspected".
        self.auto_clearing = QComboBox()
        self.auto_clearing.addItem("on", True)
        self.auto_clearing.addItem("off until this camera is validated", False)
        self.auto_clearing.setCurrentIndex(0 if s.auto_clearing else 1)
        self.cascade = QComboBox()
        self.cascade.addItem("on: part of the ensemble settles the clear cases (faster)", True)
        self.cascade.addItem("off: the whole ensemble screens every image", False)
        self.cascade.setCurrentIndex(0 if s.cascade else 1)
        self.cascade.setToolTip(
            "Used only when the model bundle carries cascade margins (fitted so that the outcome equals the whole "
            "ensemble's); each result's details say when the first stage decided."
        )
        self.confidence_help = _help(
            "A result is called “no cancer suspected” or “suspicious” only when the models are at least this "
            "confident; everything else goes to the review queue, in risk bands."
        )
        form.addRow("Confidence:", conf_row)
        form.addRow("", self.confidence_help)
        form.addRow("Auto-clearing:", self.auto_clearing)
        form.addRow(
            "",
            _help(
                "Off: no image is “no cancer suspected”; each is “review (low risk)” with the reason. A run turns it "
                "off by itself when its pictures differ from the training images (camera check), unless this "
                "camera is validated (Evidence tab)."
            ),
        )
        form.addRow("Cascade:", self.cascade)

    def _people_rows(self, form: QFormLayout) -> None:
        s = self._settings
        self.database = QLineEdit(s.database_path)
        self.database.setPlaceholderText("the default results file (see tooltip)")
        self.database.setToolTip(f"Empty: {default_database_path()}")
        db_btn = QPushButton("Choose…")
        db_btn.clicked.connect(self._choose_database)
        self.reviewer = QLineEdit(s.reviewer)
        self.reviewer.setPlaceholderText("your name or initials, stored with every review")
        # The clinic printed at the top of every page of a patient report (core.records.clinic: the command line
        # reads the same file); filled in when it has been read.
        self.clinic_name = QLineEdit()
        self.clinic_name.setPlaceholderText("printed at the top of patient reports")
        self.clinic_address = QPlainTextEdit()
        self.clinic_address.setPlaceholderText("street, town (one or two lines)")
        self.clinic_address.setFixedHeight(52)
        self.clinic_phone = QLineEdit()
        for row in self._clinic_rows():
            row.setEnabled(False)
        self.share_exports = QCheckBox("Share exported files with other users of this computer")
        self.share_exports.setChecked(s.share_exports)
        self.share_exports.setToolTip(
            "Off (recommended): reports, CSV files and heat maps you export hold patient data and are readable "
            "by you only. On: other users of this computer may read them (as your system's defaults allow)."
        )
        form.addRow("Results file:", _path_row(self.database, db_btn))
        form.addRow("Reviewer name:", self.reviewer)
        form.addRow("Clinic name:", self.clinic_name)
        form.addRow("Clinic address:", self.clinic_address)
        form.addRow("Clinic phone:", self.clinic_phone)
        form.addRow("Exported files:", self.share_exports)

    def explain_confidences(self, meanings) -> None:
        """Under the confidence setting: what each level did on the bundle's validation images
        (core.decision.confidence_meanings; nothing is added when the bundle says nothing)."""
        if not meanings:
            return
        label = self.confidence_help
        items = "".join(f"<li>{html.escape(m.words)}</li>" for m in meanings)
        label.setText(
            f"{html.escape(label.text())}<br><b>What each level did on the bundle's validation images</b> "
            f"(cleared = called “no cancer suspected”; your clinic's own figures may differ):<ul>{items}</ul>"
            "A change here decides the shown run again at once (no model run) and records it."
        )
        label.setTextFormat(Qt.TextFormat.RichText)

    # -- the clinic's file, read and saved on a worker ------------------------------------------------

    def _clinic_rows(self) -> tuple[QWidget, ...]:
        return self.clinic_name, self.clinic_address, self.clinic_phone

    def _read_clinic(self) -> Worker:
        worker = Worker(lambda report, should_stop: load_clinic(), name="read the clinic")
        worker.signals.result.connect(self._clinic_read)  # a bound method: dropped if the dialog is gone
        return self.pool.start(worker)

    def _clinic_read(self, clinic: Clinic) -> None:
        self._clinic = clinic
        self.clinic_name.setText(clinic.name)
        self.clinic_address.setPlainText(clinic.address)
        self.clinic_phone.setText(clinic.phone)
        for row in self._clinic_rows():
            row.setEnabled(True)
        self.clinic_loaded.emit(clinic)

    # -- answers ------------------------------------------------------------------------------------

    def clinic(self) -> Clinic:
        return Clinic(self.clinic_name.text(), self.clinic_address.toPlainText(), self.clinic_phone.text()).checked()

    def accept(self) -> None:
        """Save the clinic (its own small file, shared with the command line) on a worker, then close; the app
        saves the rest. A clinic not read yet was not shown, so it is not saved either."""
        if self._saving:
            return
        if self._clinic is None or self.clinic() == self._clinic:
            super().accept()
            return
        self._saving = True
        clinic = self.clinic()
        worker = Worker(lambda report, should_stop: save_clinic(clinic), name="save the clinic")
        worker.signals.result.connect(self._clinic_saved)  # bound methods: dropped if the dialog is gone
        worker.signals.failed.connect(self._clinic_not_saved)
        self.pool.start(worker)

    def _clinic_saved(self, _path) -> None:
        self._saving = False
        super().accept()

    def _clinic_not_saved(self, exc: BaseException) -> None:
        self._saving = False
        QMessageBox.warning(self, "Clinic not saved", f"The clinic's details could not be saved:\n{exc}")

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
