"""Loading the models: which bundle, its checks and engines on a worker, the latest request wins.

The window asks `load(settings)`; `loaded` (a LoadedModel) or `failed` (the words to show) follow, and
`state_changed(state)` says "loading" / "missing" / "error" in between. The message for the window's banner is
`message`; the publisher keys passed over while reading the trusted keys are `trust_warning`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core import ImageReadError, MelaScreenError, class_heat_map, default_bundle_path, read_image

from ..settings import AppSettings
from ..workers import LoadedModel, Worker, WorkerPool, load_model_job

NO_BUNDLE_MESSAGE = (
    "No model bundle is installed with this copy of MelaScreen yet, so nothing can be screened. "
    "Choose a bundle folder or .zip in Settings (Settings → Model bundle)."
)


def bundle_to_load(settings: AppSettings, override: str | None = None) -> tuple[Path | None, str]:
    """The bundle path to load, or None with the reason to show."""
    if override:
        return Path(override), ""
    if settings.bundle_path:
        return Path(settings.bundle_path).expanduser(), ""
    default = default_bundle_path()
    if (default / "manifest.json").is_file():
        return default, ""
    return None, NO_BUNDLE_MESSAGE


def stored_picture_heat_maps(ensemble):
    """A patient report's source of a named class's map for results stored before screening kept it: the
    models on the picture's file, when it still holds the screened bytes (else None: the stored map)."""

    def heat_map(result, class_code):
        try:
            image = read_image(result.path)
        except (ImageReadError, OSError):
            return None
        if image.sha256 != result.sha256 or class_code not in ensemble.manifest.class_names:
            return None
        return class_heat_map(ensemble, image.rgb, class_code)

    return heat_map


class ModelLoader(QObject):
    """The loaded models (or why there are none), one load at a time: a newer request makes older ones moot."""

    loaded = Signal(object)  # LoadedModel
    failed = Signal(str)  # the message to show
    state_changed = Signal(str)  # loading / missing / error (ready: `loaded`)
    trust_warning = Signal(str)  # key files passed over: the user may think a publisher is trusted

    def __init__(self, pool: WorkerPool, parent=None):
        super().__init__(parent)
        self.pool = pool
        self.model: LoadedModel | None = None
        self.message = ""
        self.override: str | None = None  # a bundle named on the command line, until Settings choose another
        self._request = 0

    def load(self, settings: AppSettings) -> Worker | None:
        """Load the bundle and create the sessions on a worker; the window stays responsive."""
        self._request += 1
        request = self._request
        self.model = None
        path, message = bundle_to_load(settings, self.override)
        if path is None:
            self.message = message
            self.state_changed.emit("missing")
            self.failed.emit(message)
            return None
        self.message = f"Loading the models from {path}…"
        self.state_changed.emit("loading")
        job = load_model_job(path, settings.session(), settings.trusted_keys, settings.allow_unsigned_bundles)
        worker = Worker(job, name="load model")
        worker.signals.progress.connect(lambda text, n=request: self._progress(n, text))
        worker.signals.result.connect(lambda model, n=request: self._ready(n, model))
        worker.signals.failed.connect(lambda exc, n=request: self._error(n, exc))
        return self.pool.start(worker)

    def _progress(self, request: int, text: str) -> None:
        if request == self._request:
            self.message = text
            self.state_changed.emit("loading")

    def _ready(self, request: int, model: LoadedModel) -> None:
        if request != self._request:
            return
        self.model = model
        self.message = ""
        if model.bundle.trust_warnings:
            self.trust_warning.emit("Trusted keys: " + "; ".join(model.bundle.trust_warnings))
        self.loaded.emit(model)

    def _error(self, request: int, exc: BaseException) -> None:
        if request != self._request:
            return
        kind = (
            "The model bundle could not be loaded"
            if isinstance(exc, MelaScreenError)
            else "Unexpected error while loading the models"
        )
        self.message = f"{kind}: {exc}. Choose another bundle or provider in Settings."
        self.state_changed.emit("error")
        self.failed.emit(self.message)
