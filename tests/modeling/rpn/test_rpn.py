"""RPN pieces: anchor grid and visibility, target labelling, loss normalisation, proposal selection."""

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.rpn.anchor_generator import AnchorGenerator, make_anchor_generator_retinanet
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.loss import RPNLossComputation
from maskrcnn_benchmark.modeling.rpn.rpn import build_rpn
from maskrcnn_benchmark.modeling.rpn.utils import concat_box_prediction_layers
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.boxlist_ops import cat_boxlist
from maskrcnn_benchmark.structures.image_list import to_image_list


def test_grid_anchors_are_location_major_and_shifted_by_stride():
    gen = AnchorGenerator(sizes=(32,), aspect_ratios=(0.5, 1.0, 2.0), anchor_strides=(16,))
    (anchors,) = gen.grid_anchors([(2, 3)])
    assert anchors.shape == (2 * 3 * 3, 4)
    base = list(gen.cell_anchors)[0]
    # location (y=1, x=2) is the 6th location; its 3 anchors are the cell anchors shifted by (32, 16).
    torch.testing.assert_close(anchors[5 * 3 : 6 * 3], base + torch.tensor([32.0, 16.0, 32.0, 16.0]))


def test_visibility_and_straddle_thresh():
    images = to_image_list([torch.zeros(3, 32, 32)])
    feature = torch.zeros(1, 1, 2, 2)
    inside = AnchorGenerator((8,), (1.0,), (16,), straddle_thresh=0)(images, [feature])[0][0]
    assert inside.get_field("visibility").tolist() == [True, True, True, True]
    big = AnchorGenerator((64,), (1.0,), (16,), straddle_thresh=0)(images, [feature])[0][0]
    assert big.get_field("visibility").tolist() == [False] * 4
    keep_all = AnchorGenerator((64,), (1.0,), (16,), straddle_thresh=-1)(images, [feature])[0][0]
    assert keep_all.get_field("visibility").all()


def test_retinanet_anchor_sizes_follow_octaves():
    c = cfg.clone()
    gen = make_anchor_generator_retinanet(c)
    assert gen.num_anchors_per_location() == [9] * 5
    w = list(gen.cell_anchors)[0]
    widths = (w[:, 2] - w[:, 0] + 1)[3:6]  # ratio 1.0: sizes 32, 32*2^(1/3), 32*2^(2/3)
    torch.testing.assert_close(widths, torch.tensor([32.0, 40.3175, 50.7968]), atol=1.0, rtol=0)


def test_concat_box_prediction_layers_matches_anchor_order():
    cls = [torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)]
    reg = [torch.zeros(2, 12, 2, 2)]
    flat_cls, flat_reg = concat_box_prediction_layers(cls, reg)
    assert flat_cls.shape == (24, 1) and flat_reg.shape == (24, 4)
    # image 0, location (0, 0): anchors 0, 1, 2 -> channels 0, 1, 2 at (0, 0) = values 0, 4, 8
    assert flat_cls[:3, 0].tolist() == [0.0, 4.0, 8.0]


def test_labels_follow_thresholds_visibility_and_low_quality_rule():
    image_size = (100, 100)
    anchors = BoxList(
        torch.tensor(
            [
                [0.0, 0.0, 49.0, 49.0],  # identical to gt -> 1
                [0.0, 0.0, 29.0, 49.0],  # IoU 0.6 -> between -> -1
                [60.0, 60.0, 99.0, 99.0],  # IoU 0 -> 0
                [0.0, 0.0, 49.0, 49.0],  # identical but not visible -> -1
            ]
        ),
        image_size,
    )
    anchors.add_field("visibility", torch.tensor([True, True, True, False]))
    target = BoxList(torch.tensor([[0.0, 0.0, 49.0, 49.0]]), image_size)
    loss = RPNLossComputation(Matcher(0.7, 0.3, True), None, BoxCoder((1.0, 1.0, 1.0, 1.0)))
    labels, regression = loss.prepare_targets([anchors], [target])
    assert labels[0].tolist() == [1.0, -1.0, 0.0, -1.0]
    torch.testing.assert_close(regression[0][0], torch.zeros(4))


def test_loss_normalisation():
    image_size = (64, 64)
    anchors = BoxList(
        torch.tensor([[0.0, 0.0, 31.0, 31.0], [32.0, 32.0, 63.0, 63.0], [0.0, 32.0, 31.0, 63.0]]), image_size
    )
    anchors.add_field("visibility", torch.ones(3, dtype=torch.bool))
    target = BoxList(torch.tensor([[2.0, 2.0, 33.0, 33.0]]), image_size)
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    loss_fn = RPNLossComputation(Matcher(0.7, 0.3, True), BalancedPositiveNegativeSampler(256, 0.5), coder)  # takes all
    logits = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)  # 3 anchors at one location
    deltas = torch.randn(1, 12, 1, 1)
    obj_loss, box_loss = loss_fn([[anchors]], [logits], [deltas], [target])
    # anchor 0 positive (best for the gt), anchors 1, 2 negative.
    expected_obj = F.binary_cross_entropy_with_logits(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(obj_loss, expected_obj)
    target_deltas = coder.encode(target.bbox, anchors.bbox[:1])
    diff = (deltas.view(3, 4)[0] - target_deltas[0]).abs()
    expected_box = torch.where(diff < 1 / 9, 0.5 * diff**2 * 9, diff - 0.5 / 9).sum() / 3
    torch.testing.assert_close(box_loss, expected_box)


def _boxlist(scores, size=(100, 100)):
    n = len(scores)
    boxes = torch.tensor([[float(i), 0.0, float(i) + 5, 5.0] for i in range(n)])
    b = BoxList(boxes, size)
    b.add_field("objectness", torch.tensor(scores))
    return b


def test_fpn_top_n_per_batch_in_training_and_per_image_in_test():
    post = RPNPostProcessor(10, 10, 0.7, 0, fpn_post_nms_top_n=3, fpn_post_nms_per_batch=True)
    a, b = _boxlist([0.9, 0.1, 0.8]), _boxlist([0.95, 0.2])
    post.train()
    per_batch = post.select_over_all_levels([a, b])
    assert [len(x) for x in per_batch] == [2, 1]  # 0.95, 0.9, 0.8 over the batch
    assert per_batch[0].get_field("objectness").tolist() == pytest.approx([0.9, 0.8])  # level order kept
    post.eval()
    per_image = post.select_over_all_levels([a, b])
    assert per_image[0].get_field("objectness").tolist() == pytest.approx([0.9, 0.8, 0.1])
    assert per_image[1].get_field("objectness").tolist() == pytest.approx([0.95, 0.2])
    post.fpn_post_nms_per_batch = False
    post.train()
    assert [len(x) for x in post.select_over_all_levels([a, b])] == [3, 2]


def _rpn(fpn=True, rpn_only=False):
    c = cfg.clone()
    if fpn:
        c.MODEL.RPN.USE_FPN = True
        c.MODEL.RPN.ANCHOR_STRIDE = (4, 8, 16, 32, 64)
    c.MODEL.RPN_ONLY = rpn_only
    c.MODEL.RPN.PRE_NMS_TOP_N_TEST = 50
    c.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST = 40
    c.MODEL.RPN.POST_NMS_TOP_N_TEST = 40
    return build_rpn(c, 8)


def _inputs():
    images = to_image_list([torch.zeros(3, 64, 96), torch.zeros(3, 60, 90)], 32)
    features = [torch.randn(2, 8, 64 // s, 96 // s) for s in (4, 8, 16, 32, 64)]
    targets = [BoxList([[10, 10, 40, 30]], (96, 64)), BoxList([[5, 5, 20, 50], [30, 30, 80, 55]], (90, 60))]
    return images, features, targets


def test_rpn_module_train_and_eval():
    rpn = _rpn()
    images, features, targets = _inputs()
    rpn.train()
    proposals, losses = rpn(images, features, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert rpn.head.conv.weight.grad is not None
    # gt boxes are appended to the proposals in training
    assert torch.equal(proposals[1].bbox[-2:], targets[1].bbox)
    rpn.eval()
    with torch.no_grad():
        proposals, losses = rpn(images, features)
    assert losses == {}
    for p, (h, w) in zip(proposals, images.image_sizes):
        assert len(p) <= 40 and p.size == (w, h)
        assert (p.bbox[:, 0] >= 0).all() and (p.bbox[:, 2] <= w - 1).all()


def test_rpn_only_sorts_by_objectness():
    rpn = _rpn(rpn_only=True).eval()
    images, features, _ = _inputs()
    with torch.no_grad():
        proposals, _ = rpn(images, features)
    for p in proposals:
        scores = p.get_field("objectness")
        assert torch.equal(scores, scores.sort(descending=True).values)


def test_c4_rpn_has_15_anchors_per_location():
    rpn = _rpn(fpn=False)
    assert rpn.head.cls_logits.out_channels == 15 and rpn.head.bbox_pred.out_channels == 60


def _grid_level(n_images: int, values: torch.Tensor, deltas: torch.Tensor):
    """One level of 16 disjoint 8 x 8 anchors (a 4 x 4 grid) on 32 x 32 images, A = 1."""
    xy = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij"), -1).reshape(-1, 2).flip(1) * 8
    anchors = [BoxList(torch.cat([xy, xy + 7], dim=1), (32, 32)) for _ in range(n_images)]
    return anchors, values.reshape(n_images, 1, 4, 4), deltas.reshape(n_images, 4, 4, 4)


def test_non_finite_objectness_and_deltas_never_become_proposals():
    logits = torch.linspace(-2, 2, 32).reshape(2, 16)
    deltas = torch.zeros(2, 4, 16)
    logits[0, ::2] = float("nan")  # half of image 0: NaN scores, ranked first by a plain topk
    deltas[0, 0, 1] = float("nan")  # one NaN box
    deltas[0, 0, 3] = float("inf")  # one box at +inf: clipped into the image, kept
    logits[1] = float("nan")  # image 1: nothing at all
    anchors, objectness, regression = _grid_level(2, logits, deltas)
    post = RPNPostProcessor(pre_nms_top_n=8, post_nms_top_n=8, nms_thresh=0.7, min_size=0).eval()
    a, b = post([[x] for x in anchors], [objectness], [regression])
    # The 8 finite scores fill the top 8 (NaN does not take their places), minus the NaN box.
    assert len(a) == 7 and torch.isfinite(a.bbox).all() and torch.isfinite(a.get_field("objectness")).all()
    assert len(b) == 0 and b.bbox.shape == (0, 4) and b.get_field("objectness").shape == (0,)


@pytest.mark.parametrize("training", [True, False])
def test_fpn_levels_merge_when_images_have_no_proposals(training):
    post = RPNPostProcessor(pre_nms_top_n=8, post_nms_top_n=8, nms_thresh=0.7, min_size=0, fpn_post_nms_top_n=5)
    post.train(training)
    good = _grid_level(2, torch.linspace(-2, 2, 32), torch.zeros(2, 4, 16))
    nothing = _grid_level(2, torch.full((32,), float("nan")), torch.zeros(2, 4, 16))
    # In training the top 5 are over the batch: image 1 holds the 16 best scores.
    for levels, expected in (([good, nothing], [0, 5] if training else [5, 5]), ([nothing, nothing], [0, 0])):
        anchors = [list(per_image) for per_image in zip(*[level[0] for level in levels])]
        out = post(anchors, [level[1] for level in levels], [level[2] for level in levels])
        assert [len(p) for p in out] == expected
        assert all(p.get_field("objectness").dtype == torch.float32 for p in out)


def test_loss_equals_the_original_formula_on_the_same_draws():
    # Two images, many anchors: losses over the sampled anchors (selected by index, as the original
    # did) equal the batched, fixed-size formulation when the sampler makes the same draws.
    torch.manual_seed(0)
    images = to_image_list([torch.zeros(3, 64, 80), torch.zeros(3, 80, 64)], 16)
    generator = AnchorGenerator((16, 32), (0.5, 1.0, 2.0), (8, 16), straddle_thresh=0)
    features = [torch.zeros(2, 1, 10, 10), torch.zeros(2, 1, 5, 5)]
    anchors = generator(images, features)
    targets = [
        BoxList(torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 20.0, 70.0, 60.0]]), (80, 64)),
        BoxList(torch.tensor([[10.0, 10.0, 50.0, 70.0]]), (64, 80)),
    ]
    objectness = [torch.randn(2, 3, 10, 10), torch.randn(2, 3, 5, 5)]
    deltas = [torch.randn(2, 12, 10, 10) * 0.1, torch.randn(2, 12, 5, 5) * 0.1]
    sampler = BalancedPositiveNegativeSampler(32, 0.25)
    loss_fn = RPNLossComputation(Matcher(0.7, 0.3, True), sampler, BoxCoder((1.0, 1.0, 1.0, 1.0)))
    torch.manual_seed(5)
    obj_loss, box_loss = loss_fn(anchors, objectness, deltas, targets)

    labels, regression = loss_fn.prepare_targets([cat_boxlist(a) for a in anchors], targets)
    torch.manual_seed(5)
    pos, neg = sampler(labels)
    pos, sampled = torch.cat(pos), torch.cat(pos) | torch.cat(neg)
    flat_obj, flat_deltas = concat_box_prediction_layers(objectness, deltas)
    labels, regression = torch.cat(labels), torch.cat(regression)
    expected_obj = F.binary_cross_entropy_with_logits(flat_obj.squeeze(1)[sampled], labels[sampled])
    diff = (flat_deltas[pos] - regression[pos]).abs()
    expected_box = torch.where(diff < 1 / 9, 0.5 * diff**2 * 9, diff - 0.5 / 9).sum() / sampled.sum()
    assert pos.sum() > 0 and sampled.sum() > pos.sum()
    torch.testing.assert_close(obj_loss, expected_obj)
    torch.testing.assert_close(box_loss, expected_box)
