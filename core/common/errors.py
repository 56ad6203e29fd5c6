"""Typed errors. Every message says what is wrong and what to do about it."""

from __future__ import annotations


class MelaScreenError(Exception):
    """Base of every error MelaScreen raises on purpose."""


class BundleError(MelaScreenError):
    """A model bundle is missing, damaged or of the wrong kind."""

    def __init__(self, message: str, file: str | None = None):
        self.file = file
        super().__init__(f"{file}: {message}" if file else message)


class ImageReadError(MelaScreenError):
    """One image file could not be used; the batch goes on without it."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ProviderError(MelaScreenError):
    """The requested inference provider (e.g. CUDA) is not available."""


class EngineError(MelaScreenError):
    """The requested inference engine (e.g. OpenVINO) is not installed, cannot load the models, or does
    not reproduce the reference engine's results."""


class StoreError(MelaScreenError):
    """The results database cannot be opened or written."""
