"""Text on the user's terminal: any stored or bundle text (file names, reviewer names, notes, patient
ids, bundle names) is shown with its control characters escaped, so it cannot recolour, move, clear
or retitle the terminal, nor forge lines of MelaScreen's own output."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def printable(text: object) -> str:
    """`text` with control characters and terminal escape sequences shown as \\x1b-style escapes (line
    breaks too: one stored value stays on one line)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def _escape_stream_text(text: str) -> str:
    """What the guard lets through: line breaks and carriage returns (progress lines use them), tabs;
    any other control character is escaped."""
    return "".join(ch if ch.isprintable() or ch in "\n\r\t" else ascii(ch)[1:-1] for ch in text)


class EscapingStream:
    """A text stream that escapes control characters before they reach the terminal: the safety net
    under every `print` of a command, including ones that forget `printable`."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_escape_stream_text(text))
        return len(text)

    def __getattr__(self, name: str):  # flush, isatty, encoding, fileno ...
        return getattr(self._stream, name)


@contextmanager
def escaped_output() -> Iterator[None]:
    """stdout and stderr escape control characters for the duration of one command."""
    saved = sys.stdout, sys.stderr
    # None (a GUI launch on Windows has no console): print() then writes nothing, and so must we
    sys.stdout, sys.stderr = (None if s is None else EscapingStream(s) for s in saved)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
