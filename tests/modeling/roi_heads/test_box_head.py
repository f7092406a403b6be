"""Box head post-processing and loss against the original's algorithm (docs/CONVENTIONS.md#box-head-detections)."""

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.layers.nms import nms
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.roi_heads.box_head.inference import PostProcessor
from maskrcnn_benchmark.modeling.roi_heads.box_head.loss import FastRCNNLossComputation
from maskrcnn_benchmark.structures.bounding_box import BoxList


def _reference_filter(boxes, scores, size, score_thresh, nms_thresh, detections_per_img):
    """The original's per-class loop: threshold, NMS per class, concatenate in class order, limit."""
    num_classes = scores.shape[1]
    out_boxes, out_scores, out_labels = [], [], []
    for j in range(1, num_classes):
        inds = torch.nonzero(scores[:, j] > score_thresh).squeeze(1)
        b, s = boxes[inds, j], scores[inds, j]
        keep = nms(b, s, nms_thresh) if nms_thresh > 0 else torch.arange(len(s))  # boxlist_nms skips <= 0
        out_boxes.append(b[keep]), out_scores.append(s[keep]), out_labels.append(torch.full((len(keep),), j))
    b, s, l = torch.cat(out_boxes), torch.cat(out_scores), torch.cat(out_labels)
    if len(s) > detections_per_img > 0:
        thresh = torch.kthvalue(s, len(s) - detections_per_img + 1).values
        k = s >= thresh
        b, s, l = b[k], s[k], l[k]
    return b, s, l


@pytest.mark.parametrize("detections_per_img", [100, 7])
def test_filter_results_equals_per_class_loop(detections_per_img):
    g = torch.Generator().manual_seed(0)
    n, c = 60, 6
    xy = torch.rand(n, c, 2, generator=g) * 80
    wh = torch.rand(n, c, 2, generator=g) * 40 + 2
    boxes = torch.cat([xy, xy + wh], dim=2)
    scores = torch.softmax(torch.randn(n, c, generator=g) * 3, dim=1)
    post = PostProcessor(score_thresh=0.05, nms=0.5, detections_per_img=detections_per_img)
    boxlist = BoxList(boxes.reshape(-1, 4), (128, 128))
    boxlist.add_field("scores", scores.reshape(-1))
    result = post.filter_results(boxlist, c)
    ref_b, ref_s, ref_l = _reference_filter(boxes, scores, (128, 128), 0.05, 0.5, detections_per_img)
    assert torch.equal(result.get_field("labels"), ref_l)
    torch.testing.assert_close(result.bbox, ref_b)
    torch.testing.assert_close(result.get_field("scores"), ref_s)
    assert len(result) <= max(detections_per_img, len(ref_s))


@pytest.mark.parametrize("detections_per_img", [100, 7, 0])
def test_filter_batch_equals_the_per_class_loop_image_by_image(detections_per_img):
    # Images of different sizes, one empty: nothing leaks from one image into another's NMS or limit.
    g = torch.Generator().manual_seed(1)
    c = 5
    boxlists, references = [], []
    for n in (40, 0, 25, 60):
        xy = torch.rand(n, c, 2, generator=g) * 80
        boxes = torch.cat([xy, xy + torch.rand(n, c, 2, generator=g) * 40 + 2], dim=2)
        scores = torch.softmax(torch.randn(n, c, generator=g) * 3, dim=1)
        boxlist = BoxList(boxes.reshape(-1, 4), (128, 128))
        boxlist.add_field("scores", scores.reshape(-1))
        boxlists.append(boxlist)
        references.append(_reference_filter(boxes, scores, (128, 128), 0.05, 0.5, detections_per_img))
    post = PostProcessor(score_thresh=0.05, nms=0.5, detections_per_img=detections_per_img)
    results = post.filter_batch(boxlists, c)
    assert len(results) == 4 and len(results[1]) == 0
    for result, (ref_b, ref_s, ref_l) in zip(results, references):
        assert torch.equal(result.get_field("labels"), ref_l)
        torch.testing.assert_close(result.bbox, ref_b)
        torch.testing.assert_close(result.get_field("scores"), ref_s)


@pytest.mark.parametrize("nms_thresh", [0.0, -1.0])
def test_a_threshold_of_zero_or_less_skips_nms_as_the_original(nms_thresh):
    g = torch.Generator().manual_seed(2)
    n, c = 30, 4
    xy = torch.rand(n, c, 2, generator=g) * 20  # crowded: NMS would suppress many
    boxes = torch.cat([xy, xy + torch.rand(n, c, 2, generator=g) * 40 + 2], dim=2)
    scores = torch.softmax(torch.randn(n, c, generator=g) * 3, dim=1)
    boxlist = BoxList(boxes.reshape(-1, 4), (128, 128))
    boxlist.add_field("scores", scores.reshape(-1))
    result = PostProcessor(score_thresh=0.05, nms=nms_thresh, detections_per_img=100).filter_results(boxlist, c)
    ref_b, ref_s, ref_l = _reference_filter(boxes, scores, (128, 128), 0.05, nms_thresh, 100)
    assert len(ref_s) == int((scores[:, 1:] > 0.05).sum())  # nothing suppressed
    assert torch.equal(result.get_field("labels"), ref_l)
    torch.testing.assert_close(result.bbox, ref_b)
    torch.testing.assert_close(result.get_field("scores"), ref_s)


def test_forward_decodes_clips_and_handles_empty_images():
    post = PostProcessor(score_thresh=0.0, nms=0.5, detections_per_img=100, box_coder=BoxCoder((10, 10, 5, 5)))
    proposals = [
        BoxList(torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 70.0, 90.0]]), (60, 80)),
        BoxList(torch.zeros(0, 4), (30, 30)),
    ]
    logits = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    deltas = torch.zeros(2, 12)
    out = post((logits, deltas), proposals)
    assert len(out) == 2 and len(out[1]) == 0
    assert out[1].get_field("labels").dtype == torch.int64
    # zero deltas return the proposal, clipped to the 60 x 80 image
    best = out[0][out[0].get_field("scores").argmax()]
    assert best.get_field("labels").tolist() in ([1], [2])
    assert (out[0].bbox[:, 2] <= 59).all() and (out[0].bbox[:, 3] <= 79).all()


def test_class_agnostic_regression_uses_the_foreground_deltas():
    post = PostProcessor(score_thresh=0.0, nms=0.99, cls_agnostic_bbox_reg=True, box_coder=BoxCoder((1, 1, 1, 1)))
    proposals = [BoxList(torch.tensor([[10.0, 10.0, 29.0, 29.0]]), (100, 100))]
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]])  # background 4, object 4
    out = post((torch.zeros(1, 3), deltas), proposals)[0]
    torch.testing.assert_close(out.bbox, torch.tensor([[20.0, 10.0, 39.0, 29.0]] * 2))


class _TakeAll:
    def __call__(self, labels):
        return [l > 0 for l in labels], [l == 0 for l in labels]


def _one_positive_one_negative():
    """(coder, loss, target, proposals, sampled): proposal 0 matches the class-2 target, 1 is background."""
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    loss = FastRCNNLossComputation(Matcher(0.5, 0.5, False), _TakeAll(), coder)
    target = BoxList(torch.tensor([[0.0, 0.0, 20.0, 20.0]]), (64, 64))
    target.add_field("labels", torch.tensor([2]))
    proposals = BoxList(torch.tensor([[1.0, 1.0, 20.0, 21.0], [40.0, 40.0, 60.0, 60.0]]), (64, 64))
    sampled = loss.subsample([proposals], [target])
    return coder, loss, target, proposals, sampled


def test_loss_values():
    coder, loss, target, proposals, sampled = _one_positive_one_negative()
    assert sampled[0].get_field("labels").tolist() == [2, 0]
    logits = torch.randn(2, 3)
    deltas = torch.randn(2, 12)
    cls_loss, box_loss = loss([logits], [deltas])
    torch.testing.assert_close(cls_loss, F.cross_entropy(logits, torch.tensor([2, 0])))
    reg_target = coder.encode(target.bbox, proposals.bbox[:1])[0]
    expected = F.smooth_l1_loss(deltas[0, 8:12], reg_target, beta=1.0, reduction="sum") / 2
    torch.testing.assert_close(box_loss, expected)


def test_non_finite_targets_of_negatives_do_not_reach_the_loss():
    # Negatives are weighted out, not selected: a non-finite regression target (or delta) on a
    # negative must not turn the loss or the gradient into NaN.
    coder, loss, target, proposals, sampled = _one_positive_one_negative()
    sampled[0].get_field("regression_targets")[1] = torch.tensor([float("inf"), float("nan"), -float("inf"), 0.0])
    deltas = torch.randn(2, 12)
    deltas[1, :4] = float("nan")
    deltas.requires_grad_()
    _, box_loss = loss([torch.randn(2, 3)], [deltas])
    reg_target = coder.encode(target.bbox, proposals.bbox[:1])[0]
    expected = F.smooth_l1_loss(deltas[0, 8:12].detach(), reg_target, beta=1.0, reduction="sum") / 2
    torch.testing.assert_close(box_loss.detach(), expected)
    box_loss.backward()
    assert torch.isfinite(deltas.grad).all() and (deltas.grad[1] == 0).all()


def test_sampler_limits_per_image():
    torch.manual_seed(0)
    loss = FastRCNNLossComputation(Matcher(0.5, 0.5), BalancedPositiveNegativeSampler(4, 0.25), BoxCoder((1, 1, 1, 1)))
    target = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]), (100, 100))
    target.add_field("labels", torch.tensor([1]))
    proposals = BoxList(
        torch.cat([torch.tensor([[0.0, 0.0, 9.0, 9.0]] * 5), torch.tensor([[50.0, 50.0, 60.0, 60.0]] * 10)]), (100, 100)
    )
    (sampled,) = loss.subsample([proposals], [target])
    labels = sampled.get_field("labels")
    assert len(sampled) == 4 and (labels > 0).sum() == 1


@pytest.mark.parametrize("cls_agnostic", [False, True])
@pytest.mark.parametrize("num_images", [1, 2])
def test_forward_without_any_proposal(num_images, cls_agnostic):
    post = PostProcessor(score_thresh=0.0, cls_agnostic_bbox_reg=cls_agnostic)
    proposals = [BoxList(torch.zeros(0, 4), (40 + i, 30)) for i in range(num_images)]
    out = post((torch.zeros(0, 3), torch.zeros(0, 8 if cls_agnostic else 12)), proposals)
    for result, proposal in zip(out, proposals):
        assert len(result) == 0 and result.size == proposal.size and result.bbox.shape == (0, 4)
        assert result.get_field("scores").dtype == torch.float32 and result.get_field("scores").shape == (0,)
        assert result.get_field("labels").dtype == torch.int64 and result.get_field("labels").shape == (0,)


def test_non_finite_scores_and_boxes_are_dropped_before_nms():
    g = torch.Generator().manual_seed(0)
    n, c = 40, 4
    xy = torch.rand(n, c, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + torch.rand(n, c, 2, generator=g) * 30 + 2], dim=2)
    scores = torch.softmax(torch.randn(n, c, generator=g) * 3, dim=1)
    spoilt = torch.rand(n, c, generator=g) < 0.3
    nan_boxes, nan_scores = boxes.clone(), scores.clone()
    nan_boxes[spoilt & (torch.arange(n)[:, None] % 2 == 0)] = float("nan")
    nan_scores[spoilt & (torch.arange(n)[:, None] % 2 == 1)] = float("nan")
    post = PostProcessor(score_thresh=0.05, nms=0.5, detections_per_img=20)

    def run(b, s):
        boxlist = BoxList(b.reshape(-1, 4), (100, 100))
        boxlist.add_field("scores", s.reshape(-1))
        return post.filter_results(boxlist, c)

    out = run(nan_boxes, nan_scores)
    # Exactly what a score of 0 (below the threshold) for the spoilt pairs gives: they neither
    # appear nor suppress anything.
    expected = run(boxes, scores.masked_fill(spoilt, 0.0))
    assert torch.isfinite(out.bbox).all() and torch.isfinite(out.get_field("scores")).all()
    assert torch.equal(out.bbox, expected.bbox)
    assert torch.equal(out.get_field("scores"), expected.get_field("scores"))
    assert torch.equal(out.get_field("labels"), expected.get_field("labels"))


def test_degenerate_training_batches_give_finite_zero_losses():
    sampler = BalancedPositiveNegativeSampler(8, 0.25)
    loss = FastRCNNLossComputation(Matcher(0.5, 0.5), sampler, BoxCoder((1, 1, 1, 1)))
    no_target = BoxList(torch.zeros(0, 4), (64, 64))
    no_target.add_field("labels", torch.zeros(0, dtype=torch.int64))
    proposals = BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0], [20.0, 20.0, 40.0, 40.0]]), (64, 64))
    (sampled,) = loss.subsample([proposals], [no_target])  # no object: background RoIs only
    assert sampled.get_field("labels").tolist() == [0, 0]
    assert torch.equal(sampled.get_field("regression_targets"), torch.zeros(2, 4))
    (empty,) = loss.subsample([proposals[[]]], [no_target])  # nothing at all
    logits, deltas = torch.zeros(0, 3, requires_grad=True), torch.zeros(0, 12, requires_grad=True)
    cls_loss, box_loss = loss([logits], [deltas])
    assert len(empty) == 0 and cls_loss.item() == 0 and box_loss.item() == 0
    (cls_loss + box_loss).backward()
