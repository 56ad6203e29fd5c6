"""The status bar: the disclaimer (always visible), short messages, the models in use and the results file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QStatusBar

from core import DISCLAIMER, GateChoice, cascade_margins, cascade_status

from .elided_label import ElidedLabel
from .style import DISCLAIMER_SHORT


class StatusBar(QObject):
    def __init__(self, bar: QStatusBar, parent=None):
        super().__init__(parent)
        self.disclaimer_label = QLabel(f"⚠ {DISCLAIMER_SHORT}")
        self.disclaimer_label.setToolTip(DISCLAIMER)
        self.disclaimer_label.setStyleSheet("color:#b71c1c; font-weight:bold; padding:0 6px;")
        self.message_label = ElidedLabel()  # long paths are elided in the middle; the tooltip has them whole
        self.message_label.setStyleSheet("color:#1b5e20; padding:0 6px;")
        self.model_label = QLabel()
        self.store_label = QLabel()
        # All permanent: QStatusBar.showMessage would hide the disclaimer, which must stay visible.
        bar.addPermanentWidget(self.disclaimer_label)
        bar.addPermanentWidget(self.message_label, 1)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.store_label)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.message_label.clear)

    def notify(self, text: str, ms: int = 0, error: bool = False, details: str | None = None) -> None:
        """A short message beside the disclaimer (never instead of it), for `ms` milliseconds (0: until the next);
        `details`: its tooltip (else the whole message)."""
        self.message_label.setStyleSheet(f"color:{'#c62828' if error else '#1b5e20'}; padding:0 6px;")
        self.message_label.setText(text)
        if details is not None:
            self.message_label.setToolTip(details)
        if ms:
            self._message_timer.start(ms)
        else:
            self._message_timer.stop()

    def show_store(self, path: Path | None) -> None:
        """The results file in use (its folder and name; the whole path in the tooltip), or that none is open."""
        if path is None:
            self.store_label.setText("Results file: not open")
            return
        self.store_label.setText(f"Results file: …/{Path(path).parent.name}/{Path(path).name}")
        self.store_label.setToolTip(str(path))

    def show_models(self, model, gate: GateChoice) -> None:
        """The models in use (a desktop.workers.LoadedModel, or None): name, version, engine, whether the cascade
        or the whole ensemble screens, and an unsigned bundle said loudly."""
        if model is None:
            self.model_label.setText("Models: not loaded")
            return
        m = model.bundle.manifest
        unsigned = " · UNSIGNED BUNDLE (research only)" if model.bundle.unsigned else ""
        # The cascade (core/decision/cascade.py) in a word; its status in full in the tooltip.
        run_by = "cascade" if cascade_margins(model.bundle, gate) is not None else "whole ensemble"
        self.model_label.setText(f"Models: {m.name} {m.version} · {model.screener.engine_in_use} · {run_by}{unsigned}")
        warnings = model.bundle.trust_warnings
        tip = [cascade_status(model.bundle, gate)]
        tip += ["Trusted keys passed over:", *warnings] if warnings else []
        self.model_label.setToolTip("\n".join(tip))
