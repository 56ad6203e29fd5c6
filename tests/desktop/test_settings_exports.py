"""Settings that reach beyond the models: auto-clearing in the Settings dialog, exported files owner-only
unless the user shares them (issue 26 item 7), and trusted keys passed over shown in the app."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

from desktop.dialogs import bundle_html
from desktop.settings import AppSettings, load_settings
from desktop.settings_dialog import SettingsDialog


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_settings_dialog_sets_auto_clearing_and_the_evidence_tab_follows(make_window, qtbot):
    w = make_window()
    assert w.settings.auto_clearing and w.evidence_view.clearing.currentData() is True
    d = SettingsDialog(w.settings, w.model.screener.engine_in_use, "", w)
    qtbot.addWidget(d)
    assert d.auto_clearing.currentData() is True and not d.share_exports.isChecked()
    d.auto_clearing.setCurrentIndex(d.auto_clearing.findData(False))
    assert d.auto_clearing.currentText() == "off until this camera is validated"
    d.share_exports.setChecked(True)
    new = d.values()
    assert (new.auto_clearing, new.share_exports, new.private_exports) == (False, True, False)
    w.apply_settings(new)
    assert w.evidence_view.clearing.currentData() is False  # one switch, two places
    saved = load_settings(w.settings_file).settings
    assert (saved.auto_clearing, saved.share_exports) == (False, True)


def test_exports_are_owner_only_unless_shared_in_settings(
    export_csv, save_audit, make_window, screen, qtbot, clinic_folder, tmp_path
):
    w = make_window()
    screen(w, clinic_folder)
    private_dir = tmp_path / "new-folder"
    out = export_csv(w, private_dir / "run.csv")
    assert _mode(out) == 0o600 and _mode(private_dir) == 0o700
    with qtbot.waitSignal(w.follow_up_view.refreshed, timeout=10_000):  # the list is read on a worker
        w.follow_up_view.refresh()
    with qtbot.waitSignal(w.follow_up_view.exported, timeout=10_000) as written:  # written on a worker
        assert w.follow_up_view.export_csv(str(tmp_path / "follow.csv")) is not None
    follow = Path(written.args[0])
    audit = save_audit(w.evidence_view, tmp_path / "audit.html")
    audit_csv = save_audit(w.evidence_view, tmp_path / "audit.csv")
    assert {_mode(p) for p in (follow, audit, audit_csv)} == {0o600}

    w.apply_settings(replace(w.settings, share_exports=True))
    shared = export_csv(w, tmp_path / "shared.csv")
    with qtbot.waitSignal(w.follow_up_view.exported, timeout=10_000) as written:  # written on a worker
        assert w.follow_up_view.export_csv(str(tmp_path / "follow-shared.csv")) is not None
    follow = Path(written.args[0])
    audit = save_audit(w.evidence_view, tmp_path / "audit-shared.html")
    for p in (shared, follow, audit):
        assert _mode(p) & 0o044, f"{p} is not readable by others although the user shares exports"


def test_share_exports_defaults_off_and_only_true_turns_it_on():
    assert AppSettings().private_exports
    assert AppSettings(share_exports="yes").checked().share_exports is False  # a hand-edited file


def test_trusted_keys_passed_over_are_shown_in_the_status_bar_and_about(make_window, synthetic_bundle, tmp_path):
    folder = tmp_path / "keys"  # a key folder's junk is passed over with a warning (a named junk file is refused)
    folder.mkdir(mode=0o700)
    (folder / "not-a-key.pub").write_text("this is not a key\n")
    settings = AppSettings(
        bundle_path=str(synthetic_bundle),
        reviewer="Dr. Test",
        disclaimer_accepted=True,
        trusted_keys=(str(folder),),
        allow_unsigned_bundles=True,
    )
    w = make_window(settings)
    warnings = w.model.bundle.trust_warnings
    assert warnings and "not-a-key.pub" in warnings[0]
    assert "not-a-key.pub" in w.message_label.full_text()
    assert "not-a-key.pub" in w.model_label.toolTip()
    about = bundle_html(w.model.bundle, True, "CPU")
    assert "Trusted keys passed over" in about and "not-a-key.pub" in about


def test_run_report_says_auto_clearing_was_off_at_the_top(make_window, screen, qtbot, clinic_folder, tmp_path):
    w = make_window()
    w.apply_settings(replace(w.settings, auto_clearing=False))
    screen(w, clinic_folder)
    out = tmp_path / "report.html"
    with qtbot.waitSignal(w.export_done, timeout=60_000):
        w.export_report(str(out))
    text = out.read_text(encoding="utf-8")
    warning = text.index("Camera check: ")
    assert "AUTO-CLEARING OFF for this run" in text[warning : warning + 600]
    assert warning < text.index("files (")  # before the run's counts and every row
