"""training.average: weight averaging of snapshots."""

import pytest
import torch
from torch import nn

from training.average import AverageError, average_state_dicts, recompute_batchnorm


def test_average_is_the_element_wise_mean_and_keeps_counters():
    a = {"w": torch.tensor([1.0, 3.0]), "bn.num_batches_tracked": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 5.0]), "bn.num_batches_tracked": torch.tensor(9)}
    avg = average_state_dicts([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0]))
    assert avg["bn.num_batches_tracked"].item() == 5 and avg["bn.num_batches_tracked"].dtype == torch.int64
    half = average_state_dicts([{"w": torch.tensor([1.0], dtype=torch.float16)}] * 3)
    assert half["w"].dtype == torch.float16


def test_checkpoints_of_other_shapes_or_none_are_refused():
    with pytest.raises(AverageError, match="one architecture"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(AverageError, match="one architecture"):
        average_state_dicts([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}])
    with pytest.raises(AverageError, match="no checkpoints"):
        average_state_dicts([])


def test_batchnorm_statistics_are_recomputed_over_all_batches_equally():
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1))
    nn.init.ones_(model[0].weight)
    model[1].running_mean.fill_(100.0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 1, 3, 3, generator=g) + shift for shift in (0.0, 2.0, 4.0)]
    seen = recompute_batchnorm(model, iter(batches))
    assert seen == 12
    expected_mean = torch.stack([b.mean() for b in batches]).mean()  # cumulative: each batch counts the same
    assert model[1].running_mean.item() == pytest.approx(expected_mean.item(), abs=1e-5)
    assert model[1].momentum == 0.1 and not model.training  # left as found, in eval mode
