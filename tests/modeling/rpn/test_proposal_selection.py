"""The batched proposal selection against a plain per-image, per-level restatement of the rule
(the original's algorithm: one NMS per image and level, boolean indexing), on random outputs."""

import itertools

import pytest
import torch

from maskrcnn_benchmark.layers.nms import nms
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.rpn.anchor_generator import AnchorGenerator
from maskrcnn_benchmark.modeling.rpn.inference import RPNPostProcessor
from maskrcnn_benchmark.modeling.rpn.utils import permute_and_flatten
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list


def _reference(post, anchors, objectness, box_regression, training):
    """Per image and level: top-k, decode, clip, drop small/non-finite, NMS + POST_NMS_TOP_N; then
    FPN_POST_NMS_TOP_N over the batch (training, per batch) or per image."""
    per_image = []
    for i, anchors_per_image in enumerate(anchors):
        levels = []
        for a, o, r in zip(anchors_per_image, objectness, box_regression):
            _, A, H, W = o.shape
            score = permute_and_flatten(o[i : i + 1], 1, A, 1, H, W).view(-1).sigmoid()
            score = score.masked_fill(torch.isnan(score), float("-inf"))
            deltas = permute_and_flatten(r[i : i + 1], 1, A, 4, H, W).view(-1, 4)
            score, idx = score.topk(min(post.pre_nms_top_n, len(score)))
            boxes = post.box_coder.decode(deltas[idx], a.bbox[idx])
            b = BoxList(boxes, a.size).clip_to_image(remove_empty=False)
            w = b.bbox[:, 2] - b.bbox[:, 0] + 1
            h = b.bbox[:, 3] - b.bbox[:, 1] + 1
            keep = (w >= post.min_size) & (h >= post.min_size) & torch.isfinite(score)
            boxes, score = b.bbox[keep], score[keep]
            keep = nms(boxes, score, post.nms_thresh)[: post.post_nms_top_n]
            levels.append((boxes[keep], score[keep]))
        per_image.append((torch.cat([l[0] for l in levels]), torch.cat([l[1] for l in levels])))
    if len(objectness) == 1:
        return per_image
    if training and post.fpn_post_nms_per_batch:
        all_scores = torch.cat([s for _, s in per_image])
        chosen = torch.zeros(len(all_scores), dtype=torch.bool)
        chosen[all_scores.topk(min(post.fpn_post_nms_top_n, len(all_scores))).indices] = True
        return [(b[c], s[c]) for (b, s), c in zip(per_image, chosen.split([len(s) for _, s in per_image]))]
    out = []
    for b, s in per_image:
        top = s.topk(min(post.fpn_post_nms_top_n, len(s))).indices
        out.append((b[top], s[top]))
    return out


@pytest.mark.parametrize(
    "levels,training,per_batch,nan", list(itertools.product([1, 3], [True, False], [True, False], [False, True]))
)
def test_batched_selection_equals_the_per_image_rule(levels, training, per_batch, nan):
    torch.manual_seed(levels * 8 + training * 4 + per_batch * 2 + nan)
    images = to_image_list([torch.zeros(3, 100, 128), torch.zeros(3, 128, 90), torch.zeros(3, 64, 64)], 32)
    strides = (8, 16, 32)[:levels]
    sizes = (16, 32, 64)[:levels]
    generator = AnchorGenerator(sizes, (0.5, 1.0, 2.0), strides, straddle_thresh=0)
    features = [torch.zeros(3, 1, images.tensors.shape[2] // s, images.tensors.shape[3] // s) for s in strides]
    anchors = generator(images, features)
    objectness = [torch.randn(3, 3, f.shape[2], f.shape[3]) for f in features]
    # Large deltas make boxes that are clipped, tiny or empty. (Continuous scores: which of two
    # tied scores a top-k cut keeps is unspecified, here as in the original.)
    box_regression = [torch.randn(3, 12, f.shape[2], f.shape[3]) * 1.5 for f in features]
    if nan:
        objectness[0][0, 0, 0, :3] = float("nan")
        box_regression[-1][1, :, 0, 0] = float("nan")
        box_regression[0][2, 2, 1, 1] = float("inf")
    post = RPNPostProcessor(60, 25, 0.6, 2.0, BoxCoder((1.0, 1.0, 1.0, 1.0)), 40, per_batch)
    post.train(training)
    got = post(anchors, objectness, box_regression)
    expected = _reference(post, anchors, objectness, box_regression, training)
    for g, (boxes, scores) in zip(got, expected):
        torch.testing.assert_close(g.bbox, boxes)
        torch.testing.assert_close(g.get_field("objectness"), scores)
        assert torch.isfinite(g.bbox).all()
