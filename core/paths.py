"""Where MelaScreen keeps its files on each platform. MELASCREEN_HOME overrides them all."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _home_override() -> Path | None:
    home = os.environ.get("MELASCREEN_HOME")
    return Path(home) if home else None


def user_data_dir() -> Path:
    if (home := _home_override()) is not None:
        return home / "data"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "MelaScreen"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "MelaScreen"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "melascreen"


def user_config_dir() -> Path:
    if (home := _home_override()) is not None:
        return home / "config"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "MelaScreen"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Preferences" / "MelaScreen"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "melascreen"


def default_database_path() -> Path:
    return user_data_dir() / "melascreen.sqlite"
