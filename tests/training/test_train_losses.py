import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the train extra (torch, timm)")

from training.losses import FocalLoss, class_weights  # noqa: E402


def test_focal_loss_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([0, 2])
    weight = torch.tensor([1.0, 2.0, 3.0])
    expected = []
    for row, y in zip(logits.tolist(), target.tolist()):
        z = [math.exp(v) for v in row]
        p = z[y] / sum(z)
        expected.append(weight[y].item() * (1 - p) ** 2 * -math.log(p))
    got = FocalLoss(gamma=2.0, weight=weight)(logits, target)
    assert got.item() == pytest.approx(sum(expected) / 2, rel=1e-6)


def test_gamma_zero_is_weighted_cross_entropy_summed_over_n():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 7), torch.randint(0, 7, (16,))
    weight = torch.rand(7) + 0.5
    ce = torch.nn.functional.cross_entropy(logits, target, weight=weight, reduction="sum") / 16
    assert FocalLoss(0.0, weight)(logits, target).item() == pytest.approx(ce.item(), rel=1e-5)


def test_focal_loss_down_weights_easy_examples():
    easy = FocalLoss(2.0)(torch.tensor([[6.0, 0.0]]), torch.tensor([0]))
    hard = FocalLoss(2.0)(torch.tensor([[0.0, 0.0]]), torch.tensor([0]))
    assert easy.item() < 1e-5 < hard.item()


def test_class_weights_are_inverse_frequency_normalised():
    counts = np.array([10, 30, 60, 0])
    w = class_weights(counts).numpy()
    assert w[3] == 0
    assert w[0] / w[1] == pytest.approx(3.0) and w[1] / w[2] == pytest.approx(2.0)
    assert (w * counts).sum() / counts.sum() == pytest.approx(1.0)
    sqrt = class_weights(counts, power=0.5).numpy()
    assert sqrt[0] / sqrt[2] == pytest.approx(math.sqrt(6.0))
