"""Render melascreen.svg to the PNG (Linux .desktop, About box) and ICO (Windows) icons.

Run once after editing the SVG: QT_QPA_PLATFORM=offscreen python packaging/icons/make_icons.py
The outputs are committed, so builds need neither Qt's SVG module nor this script.
"""

import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
ICO_SIZES = (16, 32, 48, 64, 128, 256)


def render(renderer: QSvgRenderer, size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(data)


def write_ico(path: Path, pngs: dict[int, bytes]) -> None:
    # ICO with PNG-compressed entries (valid since Windows Vista); 256 is written as 0.
    header = struct.pack("<HHH", 0, 1, len(pngs))
    entries, offset, blobs = b"", 6 + 16 * len(pngs), b""
    for size, png in pngs.items():
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(png), offset)
        offset += len(png)
        blobs += png
    path.write_bytes(header + entries + blobs)


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs an application
    renderer = QSvgRenderer(str(HERE / "melascreen.svg"))
    (HERE / "melascreen.png").write_bytes(render(renderer, 256))
    write_ico(HERE / "melascreen.ico", {s: render(renderer, s) for s in ICO_SIZES})
    return 0


if __name__ == "__main__":
    sys.exit(main())
