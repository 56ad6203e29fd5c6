"""The clinic's name, address and phone: printed at the top of every page of a patient report.

A small JSON file in the user's config folder, shared by the app's Settings and the command line,
so a report says the same clinic whichever of them wrote it. Missing or damaged: no clinic (the
report then says "clinic not set"), never an error that stops a report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from core.common.paths import atomic_target, user_config_dir

CLINIC_FILE = "clinic.json"
FIELD_LIMIT = 200  # characters per field; a header line, not a letter


@dataclass(frozen=True)
class Clinic:
    name: str = ""
    address: str = ""  # may hold line breaks; printed on one line, separated by commas
    phone: str = ""

    @property
    def is_set(self) -> bool:
        return bool(self.name.strip())

    def header_line(self) -> str:
        """ "Example Skin Clinic · 1 High Street, Town · tel. 0123 456"; "clinic not set" when empty."""
        if not (self.name.strip() or self.address.strip() or self.phone.strip()):
            return "clinic not set (Settings, Clinic)"
        address = ", ".join(p.strip() for p in self.address.splitlines() if p.strip())
        parts = [self.name.strip(), address, f"tel. {self.phone.strip()}" if self.phone.strip() else ""]
        return " · ".join(p for p in parts if p)

    def checked(self) -> Clinic:
        """Plain text, each field within FIELD_LIMIT, control characters (but line breaks) removed."""

        def clean(text, keep_lines: bool) -> str:
            text = str(text or "")
            kept = "".join(c for c in text if c.isprintable() or (keep_lines and c == "\n"))
            return kept.strip()[:FIELD_LIMIT]

        return Clinic(clean(self.name, False), clean(self.address, True), clean(self.phone, False))


def clinic_path() -> Path:
    return user_config_dir() / CLINIC_FILE


def load_clinic(path: str | Path | None = None) -> Clinic:
    """The saved clinic, or an empty one when there is none or the file cannot be read."""
    path = Path(path) if path is not None else clinic_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return Clinic()
    if not isinstance(data, dict):
        return Clinic()
    return Clinic(**{k: str(data.get(k) or "") for k in ("name", "address", "phone")}).checked()


def save_clinic(clinic: Clinic, path: str | Path | None = None) -> Path:
    """Write the clinic atomically (a crash leaves the old file or the new one, never half of one)."""
    path = Path(path) if path is not None else clinic_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(asdict(clinic.checked()), indent=2, ensure_ascii=False) + "\n"
    with atomic_target(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path
