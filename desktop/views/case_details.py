"""The case view's right-hand panel: whose lesion, the clinician's decision, the outcome in words, the most likely
class and the reason; the numbers (probabilities, members, quality, gate thresholds) one click away."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from core import ScreeningResult, class_name, local_time, percent, review_choice

from ..style import DECISION_LOOKS, badge_css, decision_key, result_words

SELECTABLE = Qt.TextInteractionFlag.TextSelectableByMouse


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


def _section(title: str) -> QLabel:
    label = QLabel(title)
    label.setStyleSheet("font-weight:bold; margin-top:8px; color:#37474f;")
    return label


def _label(style: str = "", selectable: bool = False, wrap: bool = True) -> QLabel:
    label = QLabel()
    label.setWordWrap(wrap)
    if style:
        label.setStyleSheet(style)
    if selectable:
        label.setTextInteractionFlags(SELECTABLE)
    return label


def _likely_html(r: ScreeningResult) -> str:
    """The most likely class; on a picture unlike the training images only as secondary detail."""
    if r.likely_class and r.intake == "unfamiliar":
        return (
            f"<span style='color:#546e7a'>(Secondary: the models' most likely class, on a picture unlike "
            f"their training images: {html.escape(class_name(r.likely_class))})</span>"
        )
    if r.likely_class:
        p_likely = r.class_probs.get(r.likely_class)
        return f"Most likely: <b>{html.escape(class_name(r.likely_class))}</b>" + (
            "" if p_likely is None else f" ({percent(p_likely)})"
        )
    return ""


def _numbers_html(r: ScreeningResult) -> str:
    numbers = []
    if r.p_malignant is not None:
        numbers.append(f"p(malignant) = <b>{r.p_malignant:.3f}</b>")
    if r.p_melanoma is not None:
        numbers.append(f"p(melanoma) = {r.p_melanoma:.3f}")
    if r.band:
        numbers.append(f"review band: {r.band}")
    return " · ".join(numbers)


def _members_html(r: ScreeningResult) -> str:
    if not r.member_p:
        return "—"
    ps = ", ".join(f"{p:.3f}" for p in r.member_p)
    spread = "" if r.spread is None else f"<br>spread (standard deviation): <b>{r.spread:.3f}</b>"
    return f"{len(r.member_p)} models: {ps}{spread}"


def _quality_html(r: ScreeningResult) -> str:
    q = r.quality
    if q is None:
        return "—"
    flags = ", ".join(q.flags) if q.flags else "no problems found"
    colour = "#c62828" if q.flags else "#2e7d32"
    return (
        f"<span style='color:{colour}; font-weight:bold'>{flags}</span><br>"
        f"sharpness {q.sharpness:.1f} · brightness {q.brightness:.0f}<br>"
        f"very dark pixels {q.dark_fraction * 100:.1f} % · very bright {q.bright_fraction * 100:.1f} %"
    )


def _image_html(r: ScreeningResult, note: str) -> str:
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
    return "<br>".join(info)


class CaseDetails(QWidget):
    """The right-hand panel: the clinician's decision, the outcome in words, the most likely class and
    the reason; the numbers (probabilities, members, quality, gate thresholds) one click away."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self._outcome_rows(lay)
        self._class_rows(lay)
        self._detail_rows(lay)
        lay.addWidget(_section("Image"))
        self.image_info = _label(selectable=True)
        lay.addWidget(self.image_info)
        lay.addStretch(1)

    def _outcome_rows(self, lay: QVBoxLayout) -> None:
        """Whose lesion, the file, what it turned out to be, the clinician's decision, the outcome, the reason."""
        self.identity_label = _label(selectable=True)
        self.file_label = _label("color:#455a64;", selectable=True)
        self.badge = QLabel()
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = _label()
        self.review_label = _label()
        # What the lesion turned out to be (core.records.evidence), above the models' outcome: it outranks it.
        self.confirmed_label = _label("color:#4a148c; font-weight:bold; font-size:14px;", selectable=True)
        self.confirmed_label.hide()
        self.likely = _label("font-size:15px;")
        self.p_label = _label()
        self.reason = _label(selectable=True)
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

    def _class_rows(self, lay: QVBoxLayout) -> None:
        self.classes_title = _section("Class probabilities (ensemble mean)")
        lay.addWidget(self.classes_title)
        self.class_grid = QGridLayout()
        self.class_grid.setHorizontalSpacing(6)
        self.class_grid.setVerticalSpacing(2)
        self.class_grid.setColumnStretch(1, 1)
        lay.addLayout(self.class_grid)

    def _detail_rows(self, lay: QVBoxLayout) -> None:
        """The numbers, one click away."""
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
        self.gate_numbers = _label("color:#455a64;", selectable=True)
        dlay.addWidget(self.gate_numbers)
        dlay.addWidget(_section("Ensemble members: p(melanoma)"))
        self.members = _label()
        dlay.addWidget(self.members)
        dlay.addWidget(_section("Image quality"))
        self.quality = _label()
        dlay.addWidget(self.quality)
        self.details_box.hide()
        self.details_toggle.toggled.connect(self._toggle_details)
        lay.addWidget(self.details_box)

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
            item = self.class_grid.takeAt(0)  # never None while count() says there is one
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()

    def _clear(self) -> None:
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

    def show_result(self, r: ScreeningResult | None, note: str = "") -> None:
        self._clear_classes()
        if r is None:
            self._clear()
            return
        key = decision_key(r)
        case = r.is_case or not r.ok
        self.file_label.setText(f"File: {html.escape(Path(r.path).name)}")
        self.file_label.setToolTip(r.path)
        self.badge.setText(result_words(r))
        made = "" if r.confidence is None else f" at confidence {r.confidence:g}" + (" (trial)" if r.trial else "")
        self.badge.setToolTip(f"MelaScreen's outcome{made}")
        self.badge.setStyleSheet(badge_css(key, r.band))
        self.hint.setText(DECISION_LOOKS[key].hint + (f" · decided{made}" if made else ""))
        self.classes_title.setVisible(case)
        self.gate_numbers.setText(html.escape(r.details) if r.details else "")
        self.reason.setText(html.escape(r.reason) if r.reason else "—")
        if not case:
            # Not dermoscopy: no class, no probability, no band (the numbers stay in the details).
            self.likely.setText("")
            self.p_label.setText("")
            self.members.setText("—")
            self.quality.setText("—")
            self.image_info.setText(html.escape(r.path))
            return
        self.likely.setText(_likely_html(r))
        self.p_label.setText(_numbers_html(r))
        self._show_classes(r)
        self.members.setText(_members_html(r))
        self.quality.setText(_quality_html(r))
        self.image_info.setText(_image_html(r, note))

    def _show_classes(self, r: ScreeningResult) -> None:
        """Every class's probability as a bar, the most likely in bold."""
        for i, (name, p) in enumerate(sorted(r.class_probs.items(), key=lambda kv: -kv[1])):
            label = QLabel(class_name(name))
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
