"""Tools → Settings and Help → About. Settings read and save the clinic's file on a worker (the dialog does);
the About box shows the NOTICES file, found and read on a worker before the box opens, so it opens with its
text (the bundle, its model card and the engine in use are already in memory)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from core import confidence_meanings

from ..dialogs import AboutDialog, Notices, read_notices
from ..settings import AppSettings
from ..settings_dialog import SettingsDialog
from ..workers import LoadedModel, Worker, WorkerPool


class SettingsAndAbout(QObject):
    """`about_ready(dialog)`: the About box, built once NOTICES is read, just before it is shown."""

    about_ready = Signal(object)  # AboutDialog

    def __init__(
        self,
        window,
        pool: WorkerPool,
        settings: Callable[[], AppSettings],
        model: Callable[[], LoadedModel | None],
        model_message: Callable[[], str],
        apply: Callable[[AppSettings], None],
    ):
        """`window`: the dialogs' parent; `apply(settings)`: what Save does with the new settings."""
        super().__init__(window)
        self.window, self.pool = window, pool
        self.settings, self.model, self.model_message, self.apply = settings, model, model_message, apply
        self._about_asked = 0  # the latest About asked for: an older one whose NOTICES arrive late is not opened

    def settings_dialog(self) -> SettingsDialog:
        """Settings as the app shows them: the loaded bundle's default confidence and what each level did."""
        model = self.model()
        provider = model.screener.engine_in_use if model else None
        message = "" if model is not None else self.model_message()
        default = model.bundle.manifest.gate.default_confidence if model else None
        dialog = SettingsDialog(
            self.settings(), provider, message, self.window, default_confidence=default, pool=self.pool
        )
        if model is not None:
            dialog.explain_confidences(confidence_meanings(model.bundle.manifest.provenance))
        return dialog

    def open_settings(self) -> None:
        dialog = self.settings_dialog()
        if dialog.exec():
            self.apply(dialog.values())

    def open_about(self) -> Worker:
        """Read NOTICES on a worker, then open the About box."""
        self._about_asked += 1
        asked = self._about_asked
        worker = Worker(lambda report, should_stop: (asked, read_notices()), name="notices")
        worker.signals.result.connect(self._notices_read)  # a bound method: dropped if the window is gone
        return self.pool.start(worker)

    def about_dialog(self, notices: Notices) -> AboutDialog:
        model = self.model()
        bundle = model.bundle if model else None
        provider = model.screener.engine_in_use if model else None
        return AboutDialog(bundle, bundle is not None, provider, self.model_message(), notices, self.window)

    def _notices_read(self, read: tuple[int, Notices]) -> None:
        asked, notices = read
        if asked != self._about_asked:
            return
        dialog = self.about_dialog(notices)
        self.about_ready.emit(dialog)
        dialog.exec()
