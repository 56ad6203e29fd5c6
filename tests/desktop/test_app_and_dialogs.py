"""Start-up without a bundle, first start, settings, about; the desktop package's imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from desktop.controllers.models import NO_BUNDLE_MESSAGE, bundle_to_load
from desktop.dialogs import AboutDialog, FirstStartDialog, find_notices, read_notices
from desktop.settings import AppSettings, load_settings
from desktop.settings_dialog import SettingsDialog

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_bundle_the_app_opens_and_says_what_to_do(make_window, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr("desktop.controllers.models.default_bundle_path", lambda: tmp_path / "not-installed")
    w = make_window(AppSettings(reviewer="Dr. Test", disclaimer_accepted=True), wait=False)
    assert w.model is None
    assert w.screening.banner.text() == NO_BUNDLE_MESSAGE
    assert w.screening.banner_button.isVisibleTo(w)  # "Open Settings…"
    w.screening.set_folder(str(tmp_path))
    assert not w.screening.screen_button.isEnabled()
    assert w.start_screening(str(tmp_path), False) is None
    assert "not a medical device" in w.disclaimer_label.text()


def test_a_damaged_bundle_is_reported_not_fatal(make_window, qtbot, tmp_path):
    bad = tmp_path / "bad-bundle"
    bad.mkdir()
    (bad / "manifest.json").write_text("{}")
    w = make_window(AppSettings(bundle_path=str(bad), reviewer="x", disclaimer_accepted=True), wait=False)
    with qtbot.waitSignal(w.model_failed, timeout=10_000):
        pass
    assert w.model is None
    assert "could not be loaded" in w.screening.banner.text() and "schema_version" in w.screening.banner.text()


def test_bundle_choice_order(tmp_path, monkeypatch):
    monkeypatch.setattr("desktop.controllers.models.default_bundle_path", lambda: tmp_path / "default")
    assert bundle_to_load(AppSettings(), "/override")[0] == Path("/override")
    assert bundle_to_load(AppSettings(bundle_path="/chosen"))[0] == Path("/chosen")
    assert bundle_to_load(AppSettings()) == (None, NO_BUNDLE_MESSAGE)
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "manifest.json").write_text("{}")
    assert bundle_to_load(AppSettings())[0] == tmp_path / "default"


def test_first_start_needs_the_disclaimer_and_a_name(qtbot):
    d = FirstStartDialog()
    qtbot.addWidget(d)
    ok = d.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    d.name.setText("  Dr. B  ")
    assert not ok.isEnabled()
    d.accept_box.setChecked(True)
    assert ok.isEnabled() and d.reviewer() == "Dr. B"


def test_settings_dialog_changes_are_saved_and_applied(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.model.screener.thresholds(w.settings.gate()).high == 0.6  # the synthetic bundle's fitted 0.99 thresholds
    d = SettingsDialog(w.settings, w.model.screener.engine_in_use, "", w)
    qtbot.addWidget(d)
    assert w.model.screener.engine_in_use in d.provider_info.text() and " CPU " in w.model.screener.engine_in_use
    d.use_default_confidence.setChecked(False)
    d.confidence.setValue(0.9)
    d.reviewer.setText("Dr. C")
    d.provider.setCurrentIndex(d.provider.findData("cpu"))
    new = d.values()
    assert (new.confidence, new.reviewer, new.provider) == (0.9, "Dr. C", "cpu")
    with qtbot.waitSignal(w.model_loaded, timeout=20_000):
        w.apply_settings(new)
    assert w.model.screener.thresholds(w.settings.gate()).high == 0.9  # no fitted entry for 0.9: the calibrated p
    assert w.queue_view.panel.form.reviewer.text().endswith("<b>Dr. C</b>")
    saved = load_settings(w.settings_file).settings
    assert (saved.confidence, saved.reviewer, saved.provider) == (0.9, "Dr. C", "cpu")


def test_engine_setting_reloads_the_models_and_the_status_bar_says_what_runs(make_window, qtbot):
    w = make_window()
    d = SettingsDialog(w.settings, w.model.screener.engine_in_use, "", w)
    qtbot.addWidget(d)
    d.engine.setCurrentIndex(d.engine.findData("onnxruntime"))
    new = d.values()
    assert (new.engine, new.precision) == ("onnxruntime", "exact")
    with qtbot.waitSignal(w.model_loaded, timeout=20_000):
        w.apply_settings(new)
    assert w.model.screener.engine.engine == "onnxruntime"
    assert w.model.screener.engine_in_use in w.model_label.text()
    loaded = w.model
    w.apply_settings(replace(w.settings, confidence=0.95))  # a gate setting: passed per run, nothing reloads
    assert w.model is loaded


def test_about_shows_bundle_checksums_card_and_notices(make_window, qtbot, tmp_path):
    w = make_window()
    notices = tmp_path / "NOTICES"
    notices.write_text("PySide6 — LGPLv3\nonnxruntime — MIT\n")
    assert find_notices([tmp_path / "nowhere", tmp_path]) == notices
    read = read_notices([tmp_path / "nowhere", tmp_path])  # on a worker before the box opens
    d = AboutDialog(w.model.bundle, True, w.model.screener.engine_in_use, "", read, w)
    qtbot.addWidget(d)
    assert d.notices_text.toPlainText().startswith("PySide6 — LGPLv3") and d.notices_path == notices
    html = d.tabs.widget(0).toPlainText()
    m = w.model.bundle.manifest
    assert m.name in html and m.version in html and "checksums verified" in html
    assert all(mem.file in html and mem.sha256[:16] in html for mem in m.members)
    assert "Synthetic test bundle" in d.tabs.widget(1).toPlainText()
    assert "not an approved medical device" in d.head.text()


def test_desktop_never_imports_torch():
    code = (
        "import sys; import desktop.app, desktop.main_window, desktop.workers; "
        "bad = [m for m in ('torch', 'timm', 'training', 'export') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_app_opens_the_window_on_the_saved_settings(qtbot, synthetic_bundle, melascreen_home):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.app import run_app
    from desktop.main_window import MainWindow
    from desktop.settings import save_settings, settings_path

    save_settings(
        AppSettings(bundle_path=str(synthetic_bundle), reviewer="Dr. D", disclaimer_accepted=True), settings_path()
    )
    seen = []

    def close_when_loaded():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].model is not None:
            seen.append(windows[0].model.bundle.manifest.name)
            windows[0].close()
        else:
            QTimer.singleShot(50, close_when_loaded)

    QTimer.singleShot(50, close_when_loaded)
    assert run_app([]) == 0
    assert seen == ["synthetic-test-bundle"]


def test_first_start_asks_for_the_disclaimer_then_remembers_it(qtbot, synthetic_bundle, melascreen_home):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.app import run_app
    from desktop.main_window import MainWindow
    from desktop.settings import settings_path

    steps = []

    def answer():
        dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, FirstStartDialog) and w.isVisible()]
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if dialogs:
            steps.append("disclaimer")
            dialogs[0].name.setText("Dr. E")
            dialogs[0].accept_box.setChecked(True)
            dialogs[0].buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        elif windows:
            steps.append("window")
            assert "not a medical device" in windows[0].disclaimer_label.text()
            windows[0].close()
            return
        QTimer.singleShot(50, answer)

    QTimer.singleShot(50, answer)
    assert run_app(["--bundle", str(synthetic_bundle)]) == 0
    assert steps[0] == "disclaimer" and steps[-1] == "window"
    saved = load_settings(settings_path()).settings
    assert saved.disclaimer_accepted and saved.reviewer == "Dr. E"


def test_about_shows_the_validation_metrics_of_the_default_bundle():
    from core.inference.bundle import default_bundle_path, load_bundle
    from desktop.dialogs import bundle_html

    bundle = load_bundle(default_bundle_path())
    html = bundle_html(bundle, True, "CPUExecutionProvider")
    per_set = bundle.manifest.provenance.get("gate_refit", {}).get("ensemble_validation")
    if per_set:  # a gate re-fitted on several sources (export.refit): one AUC each
        for name, v in per_set.items():
            assert f"{v['mel_auc']:.3f} on {name} ({v['n']} images" in html
    else:
        ens = bundle.manifest.provenance["calibration"]["ensemble_validation"]
        assert f"melanoma AUC {ens['mel_auc']:.3f}" in html
    assert "val. AUC" in html
    assert "Model card" in html  # where the test-split figures are


def test_about_shows_one_validation_auc_per_source_of_a_refitted_gate(synthetic_bundle):
    from core.inference.bundle import load_bundle
    from desktop.dialogs import bundle_html

    bundle = load_bundle(synthetic_bundle, allow_unsigned=True)
    per_set = {
        "ham10000": {"n": 1548, "n_melanoma": 177, "mel_auc": 0.8912},
        "isic2017": {"n": 150, "n_melanoma": 30, "mel_auc": None},
    }
    provenance = {**bundle.manifest.provenance, "gate_refit": {"ensemble_validation": per_set}}
    m = replace(bundle.manifest, provenance=provenance)
    html = bundle_html(replace(bundle, manifest=m), True, None)
    assert "0.891 on ham10000 (1548 images, 177 melanomas)" in html
    assert "— on isic2017 (150 images, 30 melanomas)" in html  # no AUC recorded: a dash, not a crash


def test_the_settings_dialog_says_the_loaded_bundles_default_confidence(make_window, qtbot):
    w = make_window()
    d = w.settings_dialog()  # as Tools → Settings opens it
    qtbot.addWidget(d)
    default = w.model.bundle.manifest.gate.default_confidence
    assert d.use_default_confidence.text() == f"Use the bundle's default ({default:g})"
    other = SettingsDialog(AppSettings(), default_confidence=0.95)  # whatever the bundle says, not 0.99
    qtbot.addWidget(other)
    assert other.use_default_confidence.text() == "Use the bundle's default (0.95)"
    assert other.confidence.value() == 0.95 and not other.confidence.isEnabled()
    unknown = SettingsDialog(AppSettings())  # no bundle loaded: no number is claimed
    qtbot.addWidget(unknown)
    assert unknown.use_default_confidence.text() == "Use the bundle's default"
