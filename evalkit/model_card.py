"""The model card's evaluation section (between core.inference.bundle's markers), rewritten in place."""

from __future__ import annotations

from pathlib import Path

from core.inference.bundle import EVALUATION_BEGIN, EVALUATION_END, Bundle

from . import report


def replace_section(card: Path, section_lines: list[str]) -> None:
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    section = [EVALUATION_BEGIN, *section_lines, EVALUATION_END]
    if EVALUATION_BEGIN in text and EVALUATION_END in text:
        head, rest = text.split(EVALUATION_BEGIN, 1)
        tail = rest.split(EVALUATION_END, 1)[1]
        text = head + "\n".join(section) + tail
    else:
        text = text.rstrip("\n") + "\n\n## Test-set evaluation\n" + "\n".join(section) + "\n"
    card.write_text(text, encoding="utf-8")


def update_model_card(card: Path, metrics: dict, bundle: Bundle, used: str, command: str) -> None:
    """Replace the model card's evaluation section with one set's test figures."""
    replace_section(card, ["", f"Reproduce with: `{command}`", "", *report.summary_markdown(metrics, bundle, used)])


def update_model_card_multiset(card: Path, columns: dict[str, dict], used: dict[str, str], command: str) -> None:
    """Replace the evaluation section with the table of every labelled set (one column each)."""
    replace_section(
        card,
        [
            "",
            f"Reproduce with: `{command}`",
            "",
            *[f"- {name}: {text}" for name, text in used.items()],
            "",
            *report.multiset_table(columns),
            "",
        ],
    )
