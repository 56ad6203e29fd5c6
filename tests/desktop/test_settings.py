"""Settings: round trip, migration from the first version, damaged and newer files."""

from __future__ import annotations

import json

from desktop.settings import (
    SCHEMA_VERSION,
    AppSettings,
    load_settings,
    migrate_settings,
    save_settings,
    settings_path,
)


def test_settings_live_in_melascreen_home(melascreen_home):
    assert settings_path() == melascreen_home / "config" / "settings.json"


def test_round_trip(tmp_path):
    s = AppSettings(
        bundle_path="/models/b1",
        provider="cpu",
        confidence=0.95,
        database_path=str(tmp_path / "r.sqlite"),
        reviewer="Dr. Ö. Müller",
        disclaimer_accepted=True,
        recursive=True,
        heatmap_opacity=0.3,
        last_folder="/x",
    )
    path = save_settings(s, tmp_path / "s.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    loaded = load_settings(path)
    assert loaded.warning == ""
    assert loaded.settings == s


def test_missing_file_gives_defaults(tmp_path):
    loaded = load_settings(tmp_path / "none.json")
    assert loaded.settings == AppSettings() and loaded.warning == ""
    assert not loaded.settings.disclaimer_accepted  # so the first-start dialog shows


def test_version_1_file_is_migrated(tmp_path):
    v1 = {
        "model_bundle": "/b",
        "db_path": "/d.sqlite",
        "reviewer_name": "AB",
        "threshold_percent": 97,
        "use_gpu": True,
        "disclaimer_accepted": True,
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(v1))
    s = load_settings(path).settings
    assert (s.bundle_path, s.database_path, s.reviewer, s.provider) == ("/b", "/d.sqlite", "AB", "cuda")
    assert abs(s.confidence - 0.97) < 1e-9 and s.disclaimer_accepted
    assert migrate_settings(v1)["schema_version"] == SCHEMA_VERSION


def test_damaged_file_is_kept_aside_with_a_warning(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{ not json")
    loaded = load_settings(path)
    assert loaded.settings == AppSettings()
    assert "could not be read" in loaded.warning
    assert (tmp_path / "s.json.damaged").read_text() == "{ not json"


def test_newer_file_uses_known_keys_and_warns(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 5, "reviewer": "X", "future_key": 1}))
    loaded = load_settings(path)
    assert loaded.settings.reviewer == "X"
    assert "newer MelaScreen" in loaded.warning


def test_out_of_range_values_are_made_safe(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"schema_version": 2, "provider": "tpu", "confidence": 1.5, "heatmap_opacity": 7}))
    s = load_settings(path).settings
    assert (s.provider, s.confidence, s.heatmap_opacity) == ("auto", None, 1.0)
