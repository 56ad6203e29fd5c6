"""One case: the image with its Grad-CAM heat map (zoom, pan, opacity) and everything the models said."""

from __future__ import annotations

import html
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.decision.results import ScreeningResult
from core.decision.vocabulary import class_name, percent, review_choice
from core.files.images import resize_longest_side
from core.imaging.cam import HEATMAP_MODES, compose
from core.imaging.pictures import case_picture
from core.records.store import local_time

from ..style import DECISION_LOOKS, badge_css, decision_key, result_words
from .image_view import ImageView, rgb_to_pixmap


@dataclass(frozen=True)
class CaseData:
    """What the case view shows; built by `load_case` on a worker thread."""

    result_id: int | None
    result: ScreeningResult  # with its heat map when one is stored
    rgb: np.ndarray | None  # the picture, upright; the stored thumbnail when the file is gone
    image_note: str = ""  # why the picture is not the original file, if it is not
    identity: object | None = None  # core.records.patients.AttachedIdentity: whose lesion, where, which visit
    visits: tuple = ()  # core.records.patients.TimelineEntry of the lesion's pictures (this one included)
    # sha256 -> core.records.evidence.ConfirmedDiagnosis that applies to this picture and the lesion's others
    confirmed: dict = field(default_factory=dict)


def load_case(store, result_id: int | None, shown: ScreeningResult) -> CaseData:
    """Read the stored result (with heat map) and the picture (core.imaging.pictures: the file if it is
    still the screened image, else the stored thumbnail, saying so)."""
    result = shown
    if store is not None and result_id is not None:
        stored = store.get_result(result_id)
        if stored is not None:
            # A trial's decision (shown) stays what the case says; the stored row brings the heat map.
            keep = (
                dict(decision=shown.decision, reason=shown.reason, band=shown.band, details=shown.details)
                if shown.trial
                else {}
            )
            result = replace(
                stored,
                path=shown.path,
                from_store=shown.from_store,
                confidence=shown.confidence,
                trial=shown.trial,
                **keep,
            )
    if not result.ok:
        return CaseData(result_id, result, None, "")
    identity, visits = _filed(store, result.sha256)
    confirmed = _confirmed(store, [result.sha256, *(e.sha256 for e in visits)])
    thumb = store.thumbnail(result_id) if (store is not None and result_id is not None) else None
    pic = case_picture(result.path, result.sha256, thumb)
    if pic.rgb is None or pic.from_thumbnail:
        return CaseData(result_id, result, pic.rgb, pic.note, identity, visits, confirmed)
    rgb, note = _display_size(pic.rgb)
    return CaseData(result_id, result, rgb, note, identity, visits, confirmed)


def _confirmed(store, sha256s: list) -> dict:
    """The confirmed diagnoses (core.records.evidence) that apply to these pictures, by sha256."""
    if store is None:
        return {}
    from core.records.evidence import confirmed_for_images

    return confirmed_for_images(store, [s for s in sha256s if s])


def _filed(store, sha256: str | None) -> tuple[object | None, tuple]:
    """Whose picture it is, and the lesion's pictures (for the earlier visits beside it)."""
    if store is None or not sha256:
        return None, ()
    from core.records.patients import identity_of, lesion_timeline

    a = identity_of(store, sha256)
    return (a, tuple(lesion_timeline(store, a.lesion_key))) if a is not None else (None, ())


def identity_html(a) -> str:
    """ "Patient P001 · 54 y · F" over "Lesion L1 · back · visit 2026-06-02": the patient before the file."""
    if a is None:
        return (
            "<span style='color:#757575'>No patient: not filed under a patient "
            "(no sidecar row, patient folder or DICOM id)</span>"
        )
    who = [f"Patient <b>{html.escape(a.patient_id)}</b>"]
    if a.age is not None:
        who.append(f"{a.age} y")
    if a.sex:
        who.append(html.escape(a.sex))
    where = [f"Lesion <b>{html.escape(a.lesion_label)}</b>"]
    if a.body_site:
        where.append(html.escape(a.body_site))
    where.append(f"visit {a.visit_date.isoformat()}" if a.visit_date else "visit date unknown")
    note = f"<br><span style='color:#546e7a'>Note: {html.escape(a.note)}</span>" if a.note else ""
    return f"<span style='font-size:15px'>{' · '.join(who)}</span><br>{' · '.join(where)}{note}"


DISPLAY_MAX_SIDE = 2400  # keeps redrawing the heat map quick; dermoscopy detail survives


def _display_size(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    h, w = rgb.shape[:2]
    if max(h, w) <= DISPLAY_MAX_SIDE:
        return rgb, ""
    small = resize_longest_side(rgb, DISPLAY_MAX_SIDE, enlarge=False)
    return small, f"Shown at {small.shape[1]} × {small.shape[0]} px (the file is {w} × {h})."


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setStyleSheet("font-weight:bold; margin-top:8px; color:#37474f;")
    return label


class CaseDetails(QWidget):
    """The right-hand panel: the clinician's decision, the outcome in words, the most likely class and
    the reason; the numbers (probabilities, members, quality, gate thresholds) one click away."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self.identity_label = QLabel()
        self.identity_label.setWordWrap(True)
        self.identity_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label = QLabel()
        self.file_label.setWordWrap(True)
        self.file_label.setStyleSheet("color:#455a64;")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.badge = QLabel()
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.review_label = QLabel()
        self.review_label.setWordWrap(True)
        # What the lesion turned out to be (core.records.evidence), above the models' outcome: it outranks it.
        self.confirmed_label = QLabel()
        self.confirmed_label.setWordWrap(True)
        self.confirmed_label.setStyleSheet("color:#4a148c; font-weight:bold; font-size:14px;")
        self.confirmed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.confirmed_label.hide()
        self.likely = QLabel()
        self.likely.setStyleSheet("font-size:15px;")
        self.likely.setWordWrap(True)
        self.p_label = QLabel()
        self.p_label.setWordWrap(True)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.identity_label)
        lay.addWidget(self.file_label)
        lay.addWidget(self.confirmed_label)
        lay.addWidget(self.review_label)
        row = QHBoxLayout()
        row.addWidget(self.badge)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addWidget(self.likely)
        lay.addWidget(self.hint)
        lay.addWidget(_section("Why"))
        lay.addWidget(self.reason)
        self.classes_title = _section("Class probabilities (ensemble mean)")
        lay.addWidget(self.classes_title)
        self.class_grid = QGridLayout()
        self.class_grid.setHorizontalSpacing(6)
        self.class_grid.setVerticalSpacing(2)
        self.class_grid.setColumnStretch(1, 1)
        lay.addLayout(self.class_grid)
        # The numbers, one click away.
        self.details_toggle = QToolButton()
        self.details_toggle.setCheckable(True)
        self.details_toggle.setText("Details (numbers) ▸")
        self.details_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.details_toggle.setStyleSheet("QToolButton { border:none; color:#1565c0; margin-top:8px; }")
        lay.addWidget(self.details_toggle)
        self.details_box = QWidget()
        dlay = QVBoxLayout(self.details_box)
        dlay.setContentsMargins(0, 0, 0, 0)
        dlay.addWidget(self.p_label)
        self.gate_numbers = QLabel()
        self.gate_numbers.setWordWrap(True)
        self.gate_numbers.setStyleSheet("color:#455a64;")
        self.gate_numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dlay.addWidget(self.gate_numbers)
        dlay.addWidget(_section("Ensemble members: p(melanoma)"))
        self.members = QLabel()
        self.members.setWordWrap(True)
        dlay.addWidget(self.members)
        dlay.addWidget(_section("Image quality"))
        self.quality = QLabel()
        self.quality.setWordWrap(True)
        dlay.addWidget(self.quality)
        self.details_box.hide()
        self.details_toggle.toggled.connect(self._toggle_details)
        lay.addWidget(self.details_box)
        lay.addWidget(_section("Image"))
        self.image_info = QLabel()
        self.image_info.setWordWrap(True)
        self.image_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.image_info)
        lay.addStretch(1)

    def set_identity(self, identity) -> None:
        self.identity_label.setText(identity_html(identity))

    def _toggle_details(self, shown: bool) -> None:
        self.details_box.setVisible(shown)
        self.details_toggle.setText("Details (numbers) ▾" if shown else "Details (numbers) ▸")

    def set_confirmed(self, confirmed) -> None:
        """The confirmed diagnosis that applies to the picture (core.records.evidence.ConfirmedDiagnosis) or None."""
        self.confirmed_label.setText(confirmed.shown if confirmed is not None else "")
        self.confirmed_label.setToolTip(confirmed.note if confirmed is not None and confirmed.note else "")
        self.confirmed_label.setVisible(confirmed is not None)

    def set_review(self, review) -> None:
        """The clinician's latest decision, shown above the machine's outcome (None: not reviewed)."""
        if review is None:
            self.review_label.setText("<span style='color:#546e7a'>Not reviewed yet</span>")
            return
        choice = review_choice(review.decision)
        note = f" — “{html.escape(review.note)}”" if review.note else ""
        self.review_label.setText(
            f"<span style='font-size:15px'>Clinician: <b style='color:{choice.colour}'>{html.escape(review.words)}"
            f"</b></span><br><span style='color:#546e7a'>{html.escape(review.reviewer)}, "
            f"{html.escape(local_time(review.created))}{note}</span>"
        )

    def _clear_classes(self) -> None:
        while self.class_grid.count():
            w = self.class_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()

    def show_result(self, r: ScreeningResult | None, note: str = "") -> None:
        self._clear_classes()
        if r is None:
            for w in (
                self.identity_label,
                self.file_label,
                self.badge,
                self.hint,
                self.p_label,
                self.reason,
                self.members,
                self.quality,
                self.image_info,
                self.review_label,
                self.likely,
                self.gate_numbers,
            ):
                w.setText("")
            self.badge.setStyleSheet("")
            self.confirmed_label.hide()
            return
        key = decision_key(r)
        look = DECISION_LOOKS[key]
        case = r.is_case or not r.ok
        self.file_label.setText(f"File: {html.escape(Path(r.path).name)}")
        self.file_label.setToolTip(r.path)
        self.badge.setText(result_words(r))
        made = "" if r.confidence is None else f" at confidence {r.confidence:g}" + (" (trial)" if r.trial else "")
        self.badge.setToolTip(f"MelaScreen's outcome{made}")
        self.badge.setStyleSheet(badge_css(key, r.band))
        self.hint.setText(look.hint + (f" · decided{made}" if made else ""))
        self.classes_title.setVisible(case)
        if not case:
            # Not dermoscopy: no class, no probability, no band (the numbers stay in the details).
            self.likely.setText("")
            self.p_label.setText("")
            self.gate_numbers.setText(html.escape(r.details) if r.details else "")
            self.reason.setText(html.escape(r.reason) if r.reason else "—")
            self.members.setText("—")
            self.quality.setText("—")
            self.image_info.setText(html.escape(r.path))
            return
        if r.likely_class and r.intake == "unfamiliar":  # the diagnosis only as secondary detail
            self.likely.setText(
                f"<span style='color:#546e7a'>(Secondary: the models' most likely class, on a picture unlike "
                f"their training images: {html.escape(class_name(r.likely_class))})</span>"
            )
        elif r.likely_class:
            p_likely = r.class_probs.get(r.likely_class)
            self.likely.setText(
                f"Most likely: <b>{html.escape(class_name(r.likely_class))}</b>"
                + ("" if p_likely is None else f" ({percent(p_likely)})")
            )
        else:
            self.likely.setText("")
        numbers = []
        if r.p_malignant is not None:
            numbers.append(f"p(malignant) = <b>{r.p_malignant:.3f}</b>")
        if r.p_melanoma is not None:
            numbers.append(f"p(melanoma) = {r.p_melanoma:.3f}")
        if r.band:
            numbers.append(f"review band: {r.band}")
        self.p_label.setText(" · ".join(numbers))
        self.gate_numbers.setText(html.escape(r.details) if r.details else "")
        self.reason.setText(html.escape(r.reason) if r.reason else "—")
        probs = sorted(r.class_probs.items(), key=lambda kv: -kv[1])
        for i, (name, p) in enumerate(probs):
            words = class_name(name)
            label = QLabel(words)
            label.setToolTip(name)
            label.setWordWrap(True)
            if name == r.likely_class:
                label.setStyleSheet("font-weight:bold;")
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(p * 1000))
            bar.setTextVisible(False)
            bar.setFixedHeight(10)
            bar.setMinimumWidth(40)
            value = QLabel(f"{p * 100:.1f} %")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_grid.addWidget(label, i, 0)
            self.class_grid.addWidget(bar, i, 1)
            self.class_grid.addWidget(value, i, 2)
        if r.member_p:
            ps = ", ".join(f"{p:.3f}" for p in r.member_p)
            spread = "" if r.spread is None else f"<br>spread (standard deviation): <b>{r.spread:.3f}</b>"
            self.members.setText(f"{len(r.member_p)} models: {ps}{spread}")
        else:
            self.members.setText("—")
        q = r.quality
        if q is None:
            self.quality.setText("—")
        else:
            flags = ", ".join(q.flags) if q.flags else "no problems found"
            colour = "#c62828" if q.flags else "#2e7d32"
            self.quality.setText(
                f"<span style='color:{colour}; font-weight:bold'>{flags}</span><br>"
                f"sharpness {q.sharpness:.1f} · brightness {q.brightness:.0f}<br>"
                f"very dark pixels {q.dark_fraction * 100:.1f} % · very bright {q.bright_fraction * 100:.1f} %"
            )
        info = []
        if r.width and r.height:
            info.append(f"{r.width} × {r.height} px")
        if r.sha256:
            info.append(f"SHA-256 {r.sha256[:12]}…")
        info.append("result from an earlier run (same image, same models)" if r.from_store else "screened in this run")
        if note:
            info.append(f"<span style='color:#e65100'>{note}</span>")
        breakable = html.escape(r.path).replace("/", "/\u200b").replace("\\", "\\\u200b")  # long paths wrap
        info.append(f"<span style='color:#546e7a'>{breakable}</span>")
        self.image_info.setText("<br>".join(info))


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
        self.heat_toggle.toggled.connect(lambda _: self._render(keep_view=True))
        self.heat_mode.currentTextChanged.connect(lambda _: self._render(keep_view=False))
        self.heat_class.activated.connect(lambda _: self._class_chosen())
        self.opacity.valueChanged.connect(self._on_opacity)
        self.view.zoomed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f} %"))
        self._on_opacity(self.opacity.value(), emit=False)
        self.show_placeholder("Open a case from the results or the review queue.")

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
        from core.inference.class_cam import named_class

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
