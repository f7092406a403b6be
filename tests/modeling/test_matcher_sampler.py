"""Matcher thresholds and the low-quality rule; the balanced sampler's counts."""

from collections import Counter

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


def test_sampler_draws_uniform_subsets():
    # The original drew randperm(#candidates)[:k]: every k-subset of the candidates equally likely.
    # 2 of 4 positives -> 6 subsets, 1 of 3 negatives (batch 3) -> 3; over a padded batch of two
    # images of different lengths (so padding cannot bias the draw). Chi-square at a fixed seed.
    torch.manual_seed(0)
    sampler = BalancedPositiveNegativeSampler(3, 2 / 3)
    first = torch.tensor([1, -1, 1, 0, 1, 0, 1, 0])
    second = torch.tensor([0, 1, 1, 1, 1, 0, 0, -1, -1, -1, 0])
    draws = 6000
    counts = [Counter(), Counter(), Counter(), Counter()]
    for _ in range(draws):
        pos, neg = sampler([first, second])
        for i in range(2):
            counts[2 * i][tuple(torch.nonzero(pos[i]).flatten().tolist())] += 1
            counts[2 * i + 1][tuple(torch.nonzero(neg[i]).flatten().tolist())] += 1
    for counter, subsets in zip(counts, (6, 3, 6, 4)):
        assert len(counter) == subsets  # every subset occurs, none other
        expected = draws / subsets
        chi2 = sum((c - expected) ** 2 / expected for c in counter.values())
        # 99.9% quantile of chi-square with (subsets - 1) degrees of freedom: 20.5 (5), 13.8 (2), 16.3 (3)
        assert chi2 < {6: 20.5, 3: 13.8, 4: 16.3}[subsets]
    # The second image: 4 positives -> 2 drawn, 4 negatives -> 1 drawn; ignored never drawn.
    pos, neg = sampler([first, second])
    assert pos[1].sum() == 2 and neg[1].sum() == 1 and not (pos[1] | neg[1])[7:].any()
