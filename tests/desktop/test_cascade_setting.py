"""The cascade setting (core/cascade.py, issue 28): one switch in Settings, saved, passed with each run, and the
status bar says whether the cascade or the whole ensemble screens."""

from __future__ import annotations

from desktop.dialogs import SettingsDialog
from desktop.settings import AppSettings, load_settings


def test_the_cascade_is_one_setting_away_and_the_status_bar_says_what_runs(make_window, qtbot):
    w = make_window()
    assert w.settings.cascade and w.settings.gate().cascade
    # the synthetic bundle has no cascade margins: the whole ensemble runs, and the tooltip says why
    assert "whole ensemble" in w.model_label.text()
    assert "no cascade margins" in w.model_label.toolTip()
    d = SettingsDialog(w.settings, w.model.screener.engine_in_use, "", w)
    qtbot.addWidget(d)
    assert d.cascade.currentData() is True
    d.cascade.setCurrentIndex(d.cascade.findData(False))
    new = d.values()
    assert new.cascade is False and new.gate().cascade is False
    w.apply_settings(new)
    assert "cascade off" in w.model_label.toolTip()
    assert load_settings(w.settings_file).settings.cascade is False


def test_a_hand_edited_cascade_value_falls_back_to_on():
    assert AppSettings(cascade="maybe").checked().cascade is True  # type: ignore[arg-type]
