"""Holding back clearing: with auto-clearing off (core/screening/auto_clearing.py), an image the gate would
clear is "review (low risk)" instead, with the reason, and its details carry HELD_MARK so the audit
(core/screening/audit.py) can count what would have been cleared. Screening and re-gating apply the same hold."""

from __future__ import annotations

from dataclasses import replace

from core.decision.results import Decision, ScreeningResult

HELD_MARK = "auto-clearing off: would have been no cancer suspected"  # in a held result's details
OFF_SETTING = "set off until this camera is validated"


def hold(result: ScreeningResult, why: str) -> ScreeningResult:
    """A result the gate cleared, as "review (low risk)" with the reason; other results as they are."""
    if not result.ok or result.decision is not Decision.NO_CANCER_SUSPECTED:
        return result
    return replace(
        result,
        decision=Decision.REVIEW,
        band="low",
        reason=f"auto-clearing off ({why}); {result.reason}" if result.reason else f"auto-clearing off ({why})",
        details=f"{result.details}; {HELD_MARK}" if result.details else HELD_MARK,
    )
