"""Focal loss with class weights, for the heavily imbalanced HAM10000 classes."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def class_weights(counts: np.ndarray | list[int], power: float = 1.0) -> torch.Tensor:
    """(1 / frequency) ** power, normalised so the weighted mean over the images is 1.

    Absent classes get weight 0 (they contribute nothing and must not blow up the scale).
    """
    counts = np.asarray(counts, dtype=np.float64)
    w = np.zeros_like(counts)
    present = counts > 0
    w[present] = (counts.sum() / counts[present]) ** power
    w *= counts.sum() / float((w * counts).sum())
    return torch.tensor(w, dtype=torch.float32)


class FocalLoss(nn.Module):
    """mean_i  w[y_i] * (1 - p_i) ** gamma * -log p_i, with p_i the softmax probability of y_i."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, target, self.gamma, self.weight)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float, weight: torch.Tensor | None) -> torch.Tensor:
    """The focal loss both modules compute; masked-out classes arrive as -inf logits."""
    logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    loss = -((1.0 - logp.exp()) ** gamma) * logp
    if weight is not None:
        loss = loss * weight[target]
    return loss.mean()


class SourceMaskedFocalLoss(nn.Module):
    """Focal loss over images of several sources, each labelled with its own set of diagnoses.

    Targets are encoded as label + classes * source (training.run_data.RunData.targets). An image's
    softmax runs over the classes its source labels only (`masks[source]`): an ISIC 2017 naevus is
    taught "naevus rather than melanoma or keratosis", not "not a basal cell carcinoma", which its
    labellers never checked. With one source and a full mask this is FocalLoss exactly.
    """

    def __init__(self, masks: np.ndarray, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.n_classes = int(np.asarray(masks).shape[1])
        self.register_buffer("masks", torch.as_tensor(np.asarray(masks, bool)), persistent=False)
        self.register_buffer("weight", weight if weight is not None else None, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        label, source = target % self.n_classes, target // self.n_classes
        allowed = self.masks[source]
        return focal_loss(logits.float().masked_fill(~allowed, float("-inf")), label, self.gamma, self.weight)
