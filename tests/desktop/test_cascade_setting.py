"""The cascade setting (core/decision/cascade.py, issue 28): one switch in Settings, saved, passed with each run, and
the status bar says whether the cascade or the whole ensemble screens."""

from __future__ import annotations

from desktop.settings import AppSettings, load_settings
from desktop.settings_dialog import SettingsDialog


def test_the_cascade_is_one_setting_away_and_the_status_bar_says_what_runs(make_window, qtbot):
    w = make_window()
    assert not w.settings.cascade and not w.settings.gate().cascade  # off by default: runs stay re-decidable
    assert "whole ensemble" in w.model_label.text()
    assert "cascade off" in w.model_label.toolTip()
    d = SettingsDialog(w.settings, w.model.screener.engine_in_use, "", w)
    qtbot.addWidget(d)
    assert d.cascade.currentData() is False
    d.cascade.setCurrentIndex(d.cascade.findData(True))
    new = d.values()
    assert new.cascade is True and new.gate().cascade is True
    w.apply_settings(new)
    # the synthetic bundle has no cascade margins: switched on, the whole ensemble still runs, and says why
    assert "whole ensemble" in w.model_label.text()
    assert "no cascade margins" in w.model_label.toolTip()
    assert load_settings(w.settings_file).settings.cascade is True
    d.cascade.setCurrentIndex(d.cascade.findData(False))
    w.apply_settings(d.values())
    assert "cascade off" in w.model_label.toolTip()
    assert load_settings(w.settings_file).settings.cascade is False


def test_a_hand_edited_cascade_value_falls_back_to_off():
    assert AppSettings(cascade="maybe").checked().cascade is False  # type: ignore[arg-type]
