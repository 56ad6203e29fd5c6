"""Heads on cached pooled features: an L2 logistic regression for melanoma (the exploration's),
and a linear 7-class softmax head fitted on several sources (source-masked, class-weighted), whose
feature standardisation folds into its weights so the exported member is backbone -> Linear."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LinearHead:
    """logits = features @ weight.T + bias, on raw (unstandardised) pooled features."""

    weight: np.ndarray  # K x D float32
    bias: np.ndarray  # K float32

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, np.float32) @ self.weight.T + self.bias


def standardiser(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = features.mean(axis=0)
    sd = features.std(axis=0) + 1e-6
    return mu.astype(np.float32), sd.astype(np.float32)


def fold(weight: np.ndarray, bias: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> LinearHead:
    """A head fitted on (x - mu) / sd, rewritten to take x directly."""
    w = weight / sd
    return LinearHead(w.astype(np.float32), (bias - w @ mu).astype(np.float32))


def fit_melanoma_lr(features: np.ndarray, melanoma: np.ndarray, c: float) -> LinearHead:
    """L2 logistic regression (scikit-learn, lbfgs) on standardised features; one output: the melanoma logit."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = standardiser(features)
    lr = LogisticRegression(C=c, max_iter=5000).fit((features - mu) / sd, melanoma.astype(int))
    return fold(lr.coef_.astype(np.float64), lr.intercept_.astype(np.float64), mu, sd)


def grouped_folds(groups, k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold index per case, whole groups (lesions) per fold."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    return (perm % k)[inv]


def choose_c(features, melanoma, groups, grid=(0.001, 0.003, 0.01, 0.03, 0.1, 1.0), k: int = 5):
    """The C with the best lesion-grouped k-fold CV melanoma AUC on the fitting set only; (C, {C: AUC})."""
    from evalkit.metrics import roc_auc

    folds = grouped_folds(groups, k)
    scores = {}
    for c in grid:
        out = np.zeros(len(melanoma))
        for f in range(k):
            tr, te = folds != f, folds == f
            out[te] = fit_melanoma_lr(features[tr], melanoma[tr], c).logits(features[te])[:, 0]
        scores[c] = roc_auc(melanoma, out)
    return max(scores, key=scores.get), scores


def fit_softmax_head(
    features: np.ndarray,
    labels: np.ndarray,
    label_mask: np.ndarray,
    n_classes: int,
    weight_decay: float,
    class_weights: np.ndarray | None = None,
    max_iter: int = 300,
) -> LinearHead:
    """Multinomial logistic regression (L-BFGS, L2 `weight_decay` on the weights) on standardised features.

    label_mask[i]: the classes case i's source labels; its softmax runs over those only, so an ISIC
    2017 naevus (mel/nv/bkl labelled) never teaches "not a basal cell carcinoma"."""
    mu, sd = standardiser(features)
    x = torch.from_numpy(((features - mu) / sd).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    mask = torch.from_numpy(label_mask.astype(bool))
    cw = torch.ones(n_classes) if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    lin = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")
    w = cw[y]

    def closure():
        opt.zero_grad()
        z = lin(x).masked_fill(~mask, float("-inf"))
        nll = torch.nn.functional.cross_entropy(z, y, reduction="none")
        loss = (w * nll).sum() / w.sum() + 0.5 * weight_decay * (lin.weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return fold(lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy(), mu, sd)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (K * count) per class present (scikit-learn's 'balanced'); absent classes weigh 0."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w
