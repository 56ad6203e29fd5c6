"""The app's settings: a small JSON file in the user's config folder, with a schema version.

Plain Python (no Qt), so the rules for reading, migrating and writing settings are testable on
their own. `MIGRATIONS[v]` turns a version-v dict into a version-(v+1) dict; append, never edit.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from core import (
    ENGINES,
    PRECISIONS,
    PROVIDER_CHOICES,
    EnsembleSettings,
    GateChoice,
    check_confidence,
    default_database_path,
    user_config_dir,
)

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class AppSettings:
    bundle_path: str = ""  # "" = the bundle that ships with the app
    provider: str = "auto"  # auto / cpu / cuda
    engine: str = "auto"  # auto / onnxruntime / openvino (core.inference.engines)
    precision: str = "exact"  # exact / fast
    confidence: float | None = None  # None = the loaded bundle's default
    database_path: str = ""  # "" = core.common.paths.default_database_path()
    reviewer: str = ""
    disclaimer_accepted: bool = False
    recursive: bool = False
    heatmap_opacity: float = 0.45
    last_folder: str = ""
    # Bundle publishers trusted besides the project's own (public key files or folders), and the research
    # switch that accepts unsigned bundles (every screen then says "unsigned bundle").
    trusted_keys: tuple[str, ...] = ()
    allow_unsigned_bundles: bool = False
    # False: "off until validated", no image is "no cancer suspected" (core/screening/auto_clearing.py, issue 25).
    auto_clearing: bool = True
    # True: the cascade (core/decision/cascade.py) settles the clear cases with part of the ensemble when the bundle has
    # cascade margins; False (default): the whole ensemble screens every image, so a stored run can be decided
    # again at another confidence without a model run (a cascade run's stage-1 stops hold only at its own).
    cascade: bool = False
    # False (default): exported files are the user's only (0600, new folders 0700); True: other users of
    # this computer may read them, as the umask allows (issue 26 item 7). The command line stays private.
    share_exports: bool = False

    def resolved_database_path(self) -> Path:
        return Path(self.database_path).expanduser() if self.database_path else default_database_path()

    def checked(self) -> AppSettings:
        """The same settings with out-of-range values replaced by safe ones (a hand-edited file)."""
        provider = self.provider if self.provider in PROVIDER_CHOICES else "auto"
        confidence = _confidence_or_none(self.confidence)
        opacity = min(max(float(self.heatmap_opacity), 0.0), 1.0)
        engine = self.engine if self.engine in ENGINES else "auto"
        precision = self.precision if self.precision in PRECISIONS else "exact"
        keys = self.trusted_keys if isinstance(self.trusted_keys, (list, tuple)) else ()
        return replace(
            self,
            provider=provider,
            engine=engine,
            precision=precision,
            confidence=confidence,
            heatmap_opacity=opacity,
            trusted_keys=tuple(str(k) for k in keys),
            allow_unsigned_bundles=self.allow_unsigned_bundles is True,
            auto_clearing=self.auto_clearing is not False,
            cascade=self.cascade is True,
            share_exports=self.share_exports is True,
        )

    def session(self) -> EnsembleSettings:
        """The settings the engines are built from: changing them reloads the models."""
        return EnsembleSettings(engine=self.engine, provider=self.provider, precision=self.precision)

    def models_from(self) -> tuple:
        """What the loaded models are built from (the bundle, its engines and its trust): a change reloads them."""
        return (self.bundle_path, self.session(), tuple(self.trusted_keys), self.allow_unsigned_bundles)

    def gate(self) -> GateChoice:
        """The gate settings: passed with each run, never a reason to reload the models."""
        return GateChoice(confidence=self.confidence, auto_clearing=self.auto_clearing, cascade=self.cascade)

    @property
    def private_exports(self) -> bool:
        """What the app's writers get as `private=`: owner-only unless the user chose to share."""
        return not self.share_exports


def _confidence_or_none(value) -> float | None:
    """A hand-edited confidence in the gate's range, else None (the bundle's default). Not a number at all:
    ValueError, and load_settings refuses the file with a warning."""
    if value is None:
        return None
    number = float(value)
    try:
        return check_confidence(number)
    except ValueError:
        return None


SCHEMA_VERSION = 2


def _v1_to_v2(d: dict) -> dict:
    # Version 1 (the first prototype) used other names and a threshold in percent.
    out = dict(d)
    renames = {"model_bundle": "bundle_path", "db_path": "database_path", "reviewer_name": "reviewer"}
    for old, new in renames.items():
        if old in out:
            out.setdefault(new, out.pop(old))
    if "threshold_percent" in out:
        pct = out.pop("threshold_percent")
        out["confidence"] = None if pct in (None, "") else float(pct) / 100.0
    if "use_gpu" in out:
        out["provider"] = "cuda" if out.pop("use_gpu") else "auto"
    out["schema_version"] = 2
    return out


MIGRATIONS = {1: _v1_to_v2}


def migrate_settings(data: dict) -> dict:
    """Bring a settings dict of any known version to SCHEMA_VERSION (a file without one is version 1)."""
    data = dict(data)
    version = int(data.get("schema_version", 1))
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version = int(data["schema_version"])
    return data


def settings_path() -> Path:
    return user_config_dir() / SETTINGS_FILE


@dataclass(frozen=True)
class LoadedSettings:
    settings: AppSettings
    warning: str = ""  # shown once to the user when the file could not be used as it was


def load_settings(path: str | Path | None = None) -> LoadedSettings:
    """Read the settings; a missing file gives defaults, a damaged one gives defaults and a warning
    (the damaged file is kept beside, as settings.json.damaged, for whoever wants to look)."""
    path = Path(path) if path is not None else settings_path()
    if not path.exists():
        return LoadedSettings(AppSettings())
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        backup = path.with_name(path.name + ".damaged")
        try:
            os.replace(path, backup)
        except OSError:
            backup = path
        return LoadedSettings(
            AppSettings(),
            f"The settings file {path} could not be read ({exc}); default settings are used. "
            f"The old file was kept as {backup}.",
        )
    warning = ""
    version = int(raw.get("schema_version", 1)) if str(raw.get("schema_version", 1)).isdigit() else 1
    if version > SCHEMA_VERSION:
        warning = (
            f"The settings file {path} was written by a newer MelaScreen (settings version {version}); "
            "only the settings this version knows are used."
        )
        data = raw
    else:
        data = migrate_settings(raw)
    known = {f.name for f in fields(AppSettings)}
    values = {k: v for k, v in data.items() if k in known}
    try:
        settings = AppSettings(**values).checked()
    except (TypeError, ValueError) as exc:
        return LoadedSettings(AppSettings(), f"The settings in {path} are invalid ({exc}); default settings are used.")
    return LoadedSettings(settings, warning)


def save_settings(settings: AppSettings, path: str | Path | None = None) -> Path:
    """Write atomically (temp file + replace) so a crash never leaves half a settings file."""
    path = Path(path) if path is not None else settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schema_version": SCHEMA_VERSION, **asdict(settings)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
