"""Matcher thresholds and the low-quality rule; the balanced sampler's counts."""
import pytest
import torch

from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.matcher import Matcher


def test_thresholds():
    iou = torch.tensor([[0.9, 0.5, 0.2, 0.69], [0.1, 0.6, 0.29, 0.7]])
    m = Matcher(0.7, 0.3)(iou)
    assert m.tolist() == [0, -2, -1, 1]


def test_low_quality_matches_include_ties():
    # gt 0's best IoU is 0.4 (predictions 1 and 2, tied); gt 1's best is 0.95 (prediction 3).
    iou = torch.tensor([[0.1, 0.4, 0.4, 0.2], [0.05, 0.1, 0.3, 0.95]])
    without = Matcher(0.7, 0.3, allow_low_quality_matches=False)(iou)
    with_lq = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    assert without.tolist() == [-1, -2, -2, 1]
    assert with_lq.tolist() == [-1, 0, 0, 1]


def test_low_quality_keeps_the_predictions_own_argmax():
    # Prediction 0 is gt 1's best (0.3) but its own best match is gt 0 (0.35): the original keeps
    # argmax over ground truth, so it is matched to gt 0.
    iou = torch.tensor([[0.35, 0.0], [0.3, 0.1]])
    assert Matcher(0.7, 0.5, True)(iou).tolist() == [0, -1]


def test_empty_raises():
    with pytest.raises(ValueError, match="No ground-truth boxes"):
        Matcher(0.7, 0.3)(torch.zeros(0, 5))
    with pytest.raises(ValueError, match="No proposal boxes"):
        Matcher(0.7, 0.3)(torch.zeros(3, 0))


def test_bad_thresholds():
    with pytest.raises(ValueError):
        Matcher(0.3, 0.7)


def test_sampler_counts_and_exclusivity():
    torch.manual_seed(0)
    labels = torch.tensor([1] * 100 + [0] * 1000 + [-1] * 50)
    pos, neg = BalancedPositiveNegativeSampler(256, 0.25)([labels, labels[:20]])
    assert pos[0].sum() == 64 and neg[0].sum() == 192
    assert not (pos[0] & neg[0]).any()
    assert (labels[pos[0]] == 1).all() and (labels[neg[0]] == 0).all()
    # Second image: 20 elements, all positives -> 20 pos... capped at 64, negatives none
    assert pos[1].sum() == 20 and neg[1].sum() == 0


def test_sampler_fills_with_negatives_when_positives_are_few():
    torch.manual_seed(0)
    labels = torch.tensor([2] * 5 + [0] * 500)
    pos, neg = BalancedPositiveNegativeSampler(128, 0.5)([labels])
    assert pos[0].sum() == 5 and neg[0].sum() == 123


def test_sampler_is_random_but_seedable():
    labels = torch.tensor([1] * 100 + [0] * 100)
    torch.manual_seed(1)
    a = BalancedPositiveNegativeSampler(20, 0.5)([labels])
    torch.manual_seed(1)
    b = BalancedPositiveNegativeSampler(20, 0.5)([labels])
    c = BalancedPositiveNegativeSampler(20, 0.5)([labels])
    assert torch.equal(a[0][0], b[0][0])
    assert not torch.equal(a[0][0], c[0][0])
