"""A patient's body map: the project's front/back figure (core.imaging.body_map, SVG drawn by QtSvg) with one
numbered pin per lesion, coloured by its latest outcome; a click on a pin opens that lesion.

Lesions whose body site is unknown or not recorded are never guessed onto the figure: they are listed
under it ("not on the map"), so that none is silently missing.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from core import VIEW_BOX, Decision, Pin, band, figure_svg, outcome, place_pins

PIN_RADIUS = 10  # screen pixels: big enough to hit with a mouse


class BodyFigure(QWidget):
    """The figure and its pins; `pin_clicked(key)` when a pin is clicked."""

    pin_clicked = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.renderer = QSvgRenderer(figure_svg().encode("utf-8"))
        self.pins: list[Pin] = []
        self.selected = None
        self.setMouseTracking(True)
        self.setMinimumSize(220, 235)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(330, 350)

    def set_pins(self, pins: Sequence[Pin], selected=None) -> None:
        self.pins = list(pins)
        self.selected = selected
        self.update()

    def _frame(self) -> QRectF:
        """Where the figure is drawn: as large as fits, its proportions kept."""
        _, _, w, h = VIEW_BOX
        scale = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def pin_position(self, pin: Pin) -> QPointF:
        frame = self._frame()
        _, _, w, h = VIEW_BOX
        return QPointF(frame.x() + pin.x * frame.width() / w, frame.y() + pin.y * frame.height() / h)

    def pin_at(self, point: QPointF) -> Pin | None:
        best, best_d = None, float(PIN_RADIUS + 3) ** 2
        for pin in self.pins:
            c = self.pin_position(pin)
            d = (c.x() - point.x()) ** 2 + (c.y() - point.y()) ** 2
            if d <= best_d:
                best, best_d = pin, d
        return best

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.renderer.render(painter, self._frame())
        font = QFont(self.font())
        font.setBold(True)
        font.setPixelSize(11)
        painter.setFont(font)
        # the selected lesion's pins last, so they are on top
        for pin in sorted(self.pins, key=lambda p: p.key == self.selected):
            c = self.pin_position(pin)
            if pin.key == self.selected:
                painter.setPen(QPen(QColor("#0d47a1"), 3))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(c, PIN_RADIUS + 4, PIN_RADIUS + 4)
            painter.setPen(QPen(QColor("#ffffff"), 2))
            painter.setBrush(QColor(pin.colour))
            painter.drawEllipse(c, PIN_RADIUS, PIN_RADIUS)
            painter.setPen(QColor(text_colour_on(pin.colour)))
            painter.drawText(
                QRectF(c.x() - PIN_RADIUS, c.y() - PIN_RADIUS, 2 * PIN_RADIUS, 2 * PIN_RADIUS),
                Qt.AlignmentFlag.AlignCenter,
                str(pin.number),
            )
        painter.end()

    def mouseMoveEvent(self, event) -> None:
        pin = self.pin_at(event.position())
        self.setCursor(Qt.CursorShape.PointingHandCursor if pin else Qt.CursorShape.ArrowCursor)
        if pin is not None:
            QToolTip.showText(event.globalPosition().toPoint(), pin.label, self)
        else:
            QToolTip.hideText()

    def mousePressEvent(self, event) -> None:
        pin = self.pin_at(event.position())
        if pin is not None and event.button() == Qt.MouseButton.LeftButton:
            self.pin_clicked.emit(pin.key)


def text_colour_on(background: str) -> str:
    """Black on light badges (the yellow bands), white on dark ones."""
    c = QColor(background)
    luminance = 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue()
    return "#000000" if luminance > 150 else "#ffffff"


def pin_colour(lesion) -> str:
    """The colour of the lesion's latest outcome, as the tables show it (a review's band has its own)."""
    latest = lesion.latest
    if latest is not None and latest.band and outcome(latest.decision).code == Decision.REVIEW.value:
        return band(latest.band).colour
    return outcome(lesion.latest_decision).colour


class BodyMapView(QWidget):
    """The body map of one patient's lesions (core.records.patients.LesionSummary), with the list of those that
    cannot be placed. `lesion_clicked(lesion_key)` when a pin is clicked."""

    lesion_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.figure = BodyFigure()
        self.title = QLabel("Body map")
        self.title.setStyleSheet("font-weight:bold;")
        self.off_map = QLabel()
        self.off_map.setWordWrap(True)
        self.off_map.setStyleSheet("color:#8d6e63;")
        self.off_map.hide()
        self.lesions: list = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.figure, 1)
        lay.addWidget(self.off_map)
        self.figure.pin_clicked.connect(lambda key: self.lesion_clicked.emit(int(key)))

    def show_lesions(self, patient_id: str, lesions: Sequence, selected: int | None = None) -> None:
        """Pin each lesion (numbered in the order given, as the lesion table lists them)."""
        self.lesions = list(lesions)
        items = []
        for le in self.lesions:
            name = le.label if le.labelled else "without a lesion id"
            words = le.latest.words if (le.latest is not None and le.latest.decision is not None) else "not screened"
            items.append((le.body_site, pin_colour(le), le.lesion_key, f"Lesion {name}: {words}"))
        pins, off = place_pins(items)
        self.figure.set_pins(pins, selected)
        placed = len(self.lesions) - len(off)
        self.title.setText(
            f"Body map of patient {patient_id}: {placed} of {len(self.lesions)} lesion(s) placed; click a pin"
        )
        if off:
            parts = []
            for n in off:
                le = self.lesions[n - 1]
                site = f"'{le.body_site}' is not a known body site" if le.body_site else "no body site recorded"
                parts.append(f"{n}. lesion {le.label if le.labelled else '(no id)'}: {site}")
            self.off_map.setText("Not on the map: " + "; ".join(parts))
        self.off_map.setVisible(bool(off))

    def select(self, lesion_key: int | None) -> None:
        self.figure.set_pins(self.figure.pins, lesion_key)

    def clear(self) -> None:
        self.lesions = []
        self.figure.set_pins([])
        self.title.setText("Body map")
        self.off_map.hide()
