"""The progress of a screening run on the terminal."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """A one-line progress bar on stderr; plain periodic lines when stderr is not a terminal."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = sys.stderr if stream is None else stream  # looked up now, not at import
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, progress) -> None:
        if self.stream is None:  # no console (pythonw)
            return
        now = time.monotonic()
        final = progress.done == progress.total
        if not final and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        filled = int(self.width * progress.done / max(progress.total, 1))
        eta = progress.eta_s
        text = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {progress.done}/{progress.total}"
            + (f" {progress.rate:.1f} img/s" if progress.rate is not None else "")
            + (f", {eta:.0f}s left" if eta is not None and not final else "")
        )
        self.stream.write(("\r" + text) if self.tty else (text + "\n"))
        if final and self.tty:
            self.stream.write("\n")
        self.stream.flush()
