"""What each fitted confidence level of a bundle did on its validation images, in words (the settings
dialog shows them beside the levels to choose from)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfidenceMeaning:
    """What one confidence level did on the bundle's validation images (export.refit's gate fit)."""

    confidence: float
    malignant_cleared: int  # validation malignancies called "no cancer suspected"
    n_malignant: int
    benign_cleared: int  # validation benign lesions called "no cancer suspected"
    n_benign: int
    suspicious: int  # validation images called "suspicious"
    suspicious_malignant: int

    @property
    def words(self) -> str:
        """ "at 0.95: 3.0% of validation malignancies cleared (10 of 333), 54% of benign lesions (734 of 1365)" """

        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:.1f}%" if b else "—"

        text = (
            f"at {self.confidence:g}: {pct(self.malignant_cleared, self.n_malignant)} of validation malignancies "
            f"cleared ({self.malignant_cleared} of {self.n_malignant}), {pct(self.benign_cleared, self.n_benign)} of "
            f"benign lesions cleared ({self.benign_cleared} of {self.n_benign})"
        )
        if self.suspicious:
            text += (
                f"; {self.suspicious} called suspicious, {pct(self.suspicious_malignant, self.suspicious)} malignant"
            )
        return text


def confidence_meanings(provenance: dict | None) -> list[ConfidenceMeaning]:
    """Each fitted confidence level's validation figures from a manifest's provenance (`gate_refit.fits`),
    highest confidence first; [] when the bundle does not carry them."""
    fits = ((provenance or {}).get("gate_refit") or {}).get("fits") or []
    out = []
    for f in fits:
        try:
            n, n_mal = int(f["n"]), int(f["n_malignant"])
            out.append(
                ConfidenceMeaning(
                    confidence=float(f["confidence"]),
                    malignant_cleared=int(f["malignant_cleared"]),
                    n_malignant=n_mal,
                    benign_cleared=int(f["n_cleared"]) - int(f["malignant_cleared"]),
                    n_benign=n - n_mal,
                    suspicious=int(f.get("n_suspicious", 0)),
                    suspicious_malignant=int(f.get("malignant_suspicious", 0)),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # a fit without these figures says nothing here
    return sorted(out, key=lambda m: -m.confidence)
