"""One case: the image with its Grad-CAM heat map (zoom, pan, opacity) and everything the models said (the
details panel: case_details.py; the case read on a worker: case_data.py)."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core import HEATMAP_MODES, ScreeningResult, class_name, compose, named_class

from .case_data import CaseData
from .case_details import CaseDetails
from .image_view import ImageView, rgb_to_pixmap


class CaseView(QWidget):
    """Image + heat map on the left, details on the right."""

    opacity_changed = Signal(float)
    heat_class_wanted = Signal(str)  # a class whose heat map is not here yet: the panel computes it

    def __init__(self, opacity: float = 0.45, parent=None):
        super().__init__(parent)
        self.case: CaseData | None = None
        self.cams: dict[str, np.ndarray] = {}  # class -> heat map of this case (stored: positive and named class)
        self.positive_class = "mel"  # the class whose map screening stores (the bundle's positive class)
        self._chosen: dict[str, str] = {}  # the class the user chose for the case on screen (by image)
        self.view = ImageView()
        bar = self._toolbar(opacity)
        self.legend = QLabel(
            "Heat map: <span style='color:#d32f2f'><b>red</b></span> = regions that raised p(melanoma) most, "
            "<span style='color:#1565c0'><b>blue</b></span>/clear = little. Colours are scaled per image: even a "
            "case at low p shows a red spot, so read the map together with the outcome. Drag to pan, wheel to zoom."
        )
        self.legend.setStyleSheet("color:#455a64;")
        self.legend.setWordWrap(True)
        self.message = QLabel()
        self.message.setStyleSheet("color:#e65100;")
        self.message.setWordWrap(True)
        self.message.hide()
        self._layout(bar)
        self.heat_toggle.toggled.connect(lambda _: self._render(keep_view=True))
        self.heat_mode.currentTextChanged.connect(lambda _: self._render(keep_view=False))
        self.heat_class.activated.connect(lambda _: self._class_chosen())
        self.opacity.valueChanged.connect(self._on_opacity)
        self.view.zoomed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f} %"))
        self._on_opacity(self.opacity.value(), emit=False)
        self.show_placeholder("Open a case from the results or the review queue.")

    def _toolbar(self, opacity: float) -> QHBoxLayout:
        """Above the picture: the heat map (on/off, of which class, how drawn, opacity) and the zoom."""
        self.heat_toggle = QCheckBox("Heat map (H)")
        self.heat_toggle.setChecked(True)
        self.heat_toggle.setToolTip(
            "Grad-CAM: where the models looked when scoring melanoma (red = most). Not an outline of the lesion."
        )
        self.heat_class = QComboBox()
        self.heat_class.setToolTip(
            "Which class the heat map shows: the class the outcome names by default; any class on request "
            "(computed from the models in a second)"
        )
        # Narrow: the longest class name would widen the whole window; the list shows names whole.
        self.heat_class.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.heat_class.setMinimumContentsLength(9)
        self.heat_mode = QComboBox()
        self.heat_mode.addItems(HEATMAP_MODES)
        self.heat_mode.setToolTip("Overlay on the image, the map beside the image, or its outlines on the image")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(opacity * 100))
        self.opacity.setFixedWidth(80)
        self.opacity.setToolTip("Heat map opacity")
        self.opacity_value = QLabel()
        self.zoom_label = QLabel()
        buttons = []
        for text, tip, slot in (
            ("−", "Zoom out (−)", lambda: self.view.zoom(0.8)),
            ("+", "Zoom in (+)", lambda: self.view.zoom(1.25)),
            ("Fit", "Fit to window (0)", self.view.fit),
            ("1:1", "Actual pixels", self.view.actual_size),
        ):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.append(b)
        bar = QHBoxLayout()
        bar.addWidget(self.heat_toggle)
        bar.addWidget(QLabel("of"))
        bar.addWidget(self.heat_class)
        bar.addWidget(self.heat_mode)
        bar.addWidget(self.opacity)
        bar.addWidget(self.opacity_value)
        bar.addStretch(1)
        for b in buttons:
            bar.addWidget(b)
        bar.addWidget(self.zoom_label)
        return bar

    def _layout(self, bar: QHBoxLayout) -> None:
        """The picture with its bar, legend and message on the left; the details, scrolling, on the right."""
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addLayout(bar)
        left.addWidget(self.view, 1)
        left.addWidget(self.legend)
        left.addWidget(self.message)
        left_w = QWidget()
        left_w.setLayout(left)
        self.details = CaseDetails()
        scroll = QScrollArea()
        scroll.setWidget(self.details)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(260)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.details_scroll = scroll
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(left_w, 3)
        lay.addWidget(scroll, 2)

    def _on_opacity(self, value: int, emit: bool = True) -> None:
        self.opacity_value.setText(f"{value} %")
        self._render(keep_view=True)
        if emit:
            self.opacity_changed.emit(value / 100.0)

    def show_placeholder(self, text: str) -> None:
        self.case = None
        self.view.set_pixmap(None)
        self.details.show_result(None)
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.heat_toggle.setEnabled(False)
        self.heat_mode.setEnabled(False)
        self.heat_class.setEnabled(False)
        self.opacity.setEnabled(False)

    def show_case(self, case: CaseData, review=None) -> None:
        """Show a case; `review` is the image's latest review (None: not reviewed)."""
        same_image = self.case is not None and self.case.result.sha256 == case.result.sha256
        kept = dict(self.cams) if same_image else {}  # heat maps already computed for this picture
        self.case = case
        self.details.show_result(case.result, case.image_note)
        if case.result.is_case:
            self.details.set_identity(case.identity)
        else:  # a file to check is nobody's case
            self.details.identity_label.setText("")
        self.details.set_review(review)
        self.details.set_confirmed(case.confirmed.get(case.result.sha256 or ""))
        self.cams = {**kept, self.positive_class: case.result.cam} if case.result.cam is not None else {}
        if self.cams and case.result.named_cam is not None and case.result.named_cam_class:
            self.cams[case.result.named_cam_class] = case.result.named_cam  # kept by screening: no model run
        has_cam = case.result.cam is not None and case.rgb is not None
        self.heat_toggle.setEnabled(has_cam)
        self.heat_mode.setEnabled(has_cam)
        self.opacity.setEnabled(has_cam)
        self._fill_classes(case.result if has_cam and case.result.is_case else None)
        messages = []
        if case.rgb is None:
            messages.append(
                "This file could not be screened: " + case.result.reason
                if not case.result.ok
                else "No picture available."
            )
        elif case.result.cam is None:
            messages.append("No heat map is stored for this result.")
        if case.image_note:
            messages.append(case.image_note)
        self.message.setText(" ".join(messages))
        self.message.setVisible(bool(messages))
        self._render(keep_view=False)

    # -- which class the heat map shows ------------------------------------------------------------

    def _fill_classes(self, result: ScreeningResult | None) -> None:
        self.heat_class.blockSignals(True)
        self.heat_class.clear()
        if result is not None:
            named = named_class(result, self.positive_class)
            chosen = self._chosen.get(result.sha256 or "")
            named = chosen or named  # the same case opened again keeps the class the user chose
            for code in sorted(result.class_probs, key=lambda c: -result.class_probs[c]):
                self.heat_class.addItem(class_name(code), code)
            i = self.heat_class.findData(named)
            self.heat_class.setCurrentIndex(max(i, 0))
        self.heat_class.setEnabled(result is not None)
        self.heat_class.blockSignals(False)
        self._class_chosen(render=False)

    def heat_class_code(self) -> str:
        return self.heat_class.currentData() or self.positive_class

    def _class_chosen(self, render: bool = True) -> None:
        code = self.heat_class_code()
        if render and self.case is not None and self.case.result.sha256:
            self._chosen = {self.case.result.sha256: code}
        words = class_name(code)
        self.legend.setText(
            f"Heat map of <b>{html.escape(words)}</b>: <span style='color:#d32f2f'><b>red</b></span> = regions that "
            f"raised p({html.escape(words)}) most, <span style='color:#1565c0'><b>blue</b></span>/clear = little. "
            "Colours are scaled per image: even a case at low p shows a red spot, so read the map together with "
            "the outcome. Drag to pan, wheel to zoom."
            + ("" if code in self.cams or not self.cams else " <i>(computing…)</i>")
        )
        if self.cams and code not in self.cams:
            self.heat_class_wanted.emit(code)
        if render:
            self._render(keep_view=True)

    def set_class_cam(self, code: str, cam: np.ndarray) -> None:
        """A computed heat map of `code` for the case on screen."""
        self.cams[code] = cam
        if code == self.heat_class_code():
            self._class_chosen(render=True)

    def shown_cam(self) -> np.ndarray | None:
        """The heat map drawn: the chosen class's once computed, the stored one meanwhile."""
        if self.case is None:
            return None
        return self.cams.get(self.heat_class_code(), self.case.result.cam)

    def heat_map_shown(self) -> bool:
        case = self.case
        return bool(case and case.rgb is not None and case.result.cam is not None and self.heat_toggle.isChecked())

    def composed_rgb(self) -> np.ndarray | None:
        """The picture as drawn: with the heat map blended in when it is switched on."""
        if self.case is None or self.case.rgb is None:
            return None
        if self.heat_map_shown():
            return compose(self.case.rgb, self.shown_cam(), self.heat_mode.currentText(), self.opacity.value() / 100.0)
        return self.case.rgb

    def _render(self, keep_view: bool) -> None:
        rgb = self.composed_rgb()
        self.view.set_pixmap(None if rgb is None else rgb_to_pixmap(rgb), keep_view=keep_view)

    def toggle_heat_map(self) -> None:
        if self.heat_toggle.isEnabled():
            self.heat_toggle.toggle()
