"""The store's timestamps: UTC ISO-8601 strings with milliseconds, e.g. "2026-11-25T20:46:42.123+00:00";
`local_time` shows them in the local time zone with its offset."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def local_time(stamp: str | None, seconds: bool = False) -> str:
    """A stored UTC stamp in the local time zone with its offset, e.g. "2026-11-25 21:46 +01:00"."""
    if not stamp:
        return ""
    try:
        t = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    t = t.astimezone()
    offset = t.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if len(offset) == 5 else offset
    return t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {offset}"
