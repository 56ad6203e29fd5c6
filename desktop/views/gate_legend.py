"""Above the results table: what the outcomes mean at the gate of the results on screen, and the confidence they
were decided at (the clinic's standard, or another one to try: decided again in memory, nothing recorded)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from core import MALIGNANCY, RiskScope, Thresholds

from .run_words import legend_html


class GateLegend(QWidget):
    confidence_chosen = Signal(object)  # a trial confidence (float), or None: the clinic's standard

    def __init__(self, parent=None):
        super().__init__(parent)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color:#37474f;")
        # Trying another confidence re-applies the gate to the stored results (seconds, no model run); the
        # clinic's standard (Settings) stays what the record shows.
        self.confidence_combo = QComboBox()
        self.confidence_combo.setToolTip(
            "See this run at another confidence: the gate is applied again to the stored results (no model "
            "runs). A trial is not recorded; the clinic's standard confidence is set in Settings."
        )
        self.confidence_combo.activated.connect(self._on_confidence_chosen)
        self.confidence_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.legend, 1)
        row.addWidget(QLabel("Confidence:"))
        row.addWidget(self.confidence_combo)
        self._standard: float | None = None

    def set_legend(
        self,
        thresholds: Thresholds | None,
        scope: RiskScope = MALIGNANCY,
        confidence: float | None = None,
        trial: bool = False,
    ) -> None:
        self.legend.setText(legend_html(thresholds, scope, confidence, trial))
        self.legend.setVisible(thresholds is not None)

    def set_confidences(self, levels: list[float], standard: float, shown: float) -> None:
        """The levels the bundle fitted (and the clinic's standard); `shown`: the results' confidence now."""
        combo = self.confidence_combo
        combo.blockSignals(True)
        combo.clear()
        for c in sorted({*levels, standard}, reverse=True):
            label = f"{c:g} (clinic standard)" if abs(c - standard) < 1e-9 else f"{c:g} (trial)"
            combo.addItem(label, float(c))
        i = next((k for k in range(combo.count()) if abs(combo.itemData(k) - shown) < 1e-9), -1)
        if i >= 0:
            combo.setCurrentIndex(i)
        combo.blockSignals(False)
        self._standard = standard

    def _on_confidence_chosen(self, index: int) -> None:
        c = self.confidence_combo.itemData(index)
        if c is None:
            return
        standard = self._standard
        self.confidence_chosen.emit(None if standard is not None and abs(c - standard) < 1e-9 else float(c))
