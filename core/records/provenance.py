"""What made a kept result: bundle, version, signer (or UNSIGNED), engine and confidence.

Every CSV, HTML and PDF that MelaScreen writes states it, so a result read months later says which
model and which gate produced it, and a result of an unsigned bundle can never pass for a signed one.
"""

from __future__ import annotations

from dataclasses import dataclass

UNSIGNED = "UNSIGNED BUNDLE"


@dataclass(frozen=True)
class Provenance:
    bundle_name: str
    bundle_version: str
    signer: str | None  # the trusted key's id; None: the bundle was unsigned (allowed for research)
    engine: str  # what really ran, e.g. "OpenVINO 2026.4.1 CPU f32"; "" when not recorded
    confidence: float | None  # the gate's confidence level; None when not recorded

    @property
    def unsigned(self) -> bool:
        return self.signer is None

    @property
    def signature_text(self) -> str:
        return UNSIGNED if self.signer is None else f"signed by key {self.signer}"

    @property
    def confidence_text(self) -> str:
        return "not recorded" if self.confidence is None else f"{self.confidence:g}"

    def fields(self) -> dict[str, str]:
        """Named fields, e.g. for CSV header comments or columns."""
        return {
            "bundle": self.bundle_name,
            "bundle_version": self.bundle_version,
            "signature": self.signature_text,
            "engine": self.engine or "not recorded",
            "confidence": self.confidence_text,
        }

    def line(self) -> str:
        """One line for a report's header or footer."""
        engine = f", engine {self.engine}" if self.engine else ""
        return (
            f"Model bundle {self.bundle_name} {self.bundle_version}, {self.signature_text}{engine}, "
            f"confidence {self.confidence_text}"
        )


def provenance_of_bundle(bundle, engine: str = "", confidence: float | None = None) -> Provenance:
    """From a loaded `core.inference.bundle.Bundle` (duck-typed: manifest, signer_id)."""
    m = bundle.manifest
    if confidence is None:
        confidence = m.gate.default_confidence
    return Provenance(m.name, m.version, bundle.signer_id, engine, confidence)


def provenance_of_run(run) -> Provenance:
    """From a stored run (`core.records.store.RunInfo`): its settings record the trust text, engine and confidence."""
    settings = run.settings or {}
    trust = str(settings.get("bundle", ""))
    signer = None
    if trust.startswith("signed by key "):
        signer = trust[len("signed by key ") :].split(" ", 1)[0]
    confidence = settings.get("confidence")
    engine = str(settings.get("engine") or "")
    provider = str(settings.get("provider") or "")
    if provider and provider.lower() not in engine.lower():
        engine = f"{engine} ({provider})" if engine else provider
    return Provenance(
        run.bundle_name,
        run.bundle_version,
        signer,
        engine,
        float(confidence) if isinstance(confidence, (int, float)) else None,
    )
