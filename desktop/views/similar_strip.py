"""The case view's "Similar training images" strip: 6 thumbnails from the bundle's signed index.

The neighbours are computed on a worker (core.inference.similar); the strip shows only when the bundle has an index.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from core import LICENCE, NEIGHBOURS, class_name

THUMB_PX = 80


class SimilarStrip(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("<b>Similar training images</b> (what the models compare this lesion to)")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.cells: list[tuple[QLabel, QLabel]] = []
        for _ in range(NEIGHBOURS):
            picture, words = QLabel(), QLabel()
            picture.setFixedSize(THUMB_PX, THUMB_PX)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            words.setWordWrap(True)
            words.setFixedWidth(THUMB_PX + 20)
            words.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            cell = QVBoxLayout()
            cell.addWidget(picture, alignment=Qt.AlignmentFlag.AlignHCenter)
            cell.addWidget(words)
            row.addLayout(cell)
            self.cells.append((picture, words))
        row.addStretch(1)
        self.licence = QLabel(LICENCE)
        self.licence.setStyleSheet("color: gray;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.title)
        lay.addLayout(row)
        lay.addWidget(self.licence)
        self.hide()

    def show_neighbours(self, neighbours) -> None:
        """core.inference.similar.Neighbour items, nearest first; none: the strip hides."""
        if not neighbours:
            self.clear()
            return
        for (picture, words), n in zip(self.cells, list(neighbours) + [None] * NEIGHBOURS, strict=False):
            if n is None:
                picture.clear()
                words.setText("")
                continue
            pix = QPixmap()
            pix.loadFromData(n.thumbnail, "JPEG")
            picture.setPixmap(pix.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio))
            words.setText(class_name(n.diagnosis))
            words.setToolTip(f"{n.image_id}, similarity {n.similarity:.2f}")
            picture.setToolTip(words.toolTip())
        self.show()

    def clear(self) -> None:
        for picture, words in self.cells:
            picture.clear()
            words.setText("")
        self.hide()
