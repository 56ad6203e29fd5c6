"""A Prediction from class probabilities, as the ensemble would make it (gate tests)."""

from __future__ import annotations

from core.decision.results import Prediction, summarise_classes

MALIGNANT = ("akiec", "bcc", "mel")


def pred(class_probs: dict, members=None, malignant=MALIGNANT) -> Prediction:
    """p(malignant), likely and malignant class from `class_probs`; `members`: each member's p(malignant)."""
    p_mal, likely, mal_class = summarise_classes(class_probs, malignant)
    return Prediction(
        p_melanoma=class_probs.get("mel", 0.0),
        member_p=(class_probs.get("mel", 0.0),),
        spread=0.0,
        class_probs=class_probs,
        p_malignant=p_mal,
        likely_class=likely,
        malignant_class=mal_class,
        member_p_malignant=tuple(members or ()),
    )
