"""RetinaNet (MODEL.RETINANET_ON): checkpoint layout, head, anchors, loss and post-processing
against plain restatements of their rules, and a tiny detector that trains and infers on CPU."""

import math
import os

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.engine.evaluation import box_only_of, iou_types_of
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.rpn.anchor_generator import make_anchor_generator, make_anchor_generator_retinanet
from maskrcnn_benchmark.modeling.rpn.retinanet import RetinaNetHead, RetinaNetModule
from maskrcnn_benchmark.modeling.rpn.retinanet.inference import RetinaNetPostProcessor
from maskrcnn_benchmark.modeling.rpn.retinanet.loss import make_retinanet_loss_evaluator
from maskrcnn_benchmark.modeling.rpn.rpn import build_rpn
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CODER = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))


def _load(name, opts=()):
    c = cfg.clone()
    c.merge_from_file(os.path.join(REPO, "configs", name))
    c.merge_from_list([o if isinstance(o, str) else str(o) for o in opts])
    c.MODEL.DEVICE = "cpu"
    return c


# The CPU config, narrowed further: 3 classes (2 + background), a 16-wide body, a 16-channel
# pyramid, one tower conv.
TINY = [
    "MODEL.RESNETS.STEM_OUT_CHANNELS",
    16,
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    16,
    "MODEL.RESNETS.BACKBONE_OUT_CHANNELS",
    16,
    "MODEL.RETINANET.NUM_CLASSES",
    3,
    "MODEL.RETINANET.NUM_CONVS",
    1,
    "TEST.DETECTIONS_PER_IMG",
    20,
]


def _tiny_cfg(opts=()):
    return _load("cpu/retinanet_R_18_FPN_cpu.yaml", TINY + list(opts))


# ---------------------------------------------------------------- layout and head


def test_state_dict_equals_the_originals(original_checkpoint_keys):
    name = "retinanet/retinanet_R-50-FPN_1x.yaml"
    with torch.device("meta"):
        model = build_detection_model(_load(name))
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert actual == original_checkpoint_keys[name]
    assert isinstance(model.rpn, RetinaNetModule) and not model.roi_heads


def test_p5_variant_builds_p6_from_p5():
    with torch.device("meta"):
        model = build_detection_model(_load("retinanet/retinanet_R-50-FPN_P5_1x.yaml"))
    assert tuple(model.backbone.fpn.top_blocks.p6.weight.shape) == (256, 256, 3, 3)
    c = _tiny_cfg(["MODEL.RETINANET.USE_C5", False])
    backbone = build_detection_model(c).backbone.eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
    assert all(f.shape[1] == 16 for f in features)


def test_head_shapes_and_initialisation():
    head = RetinaNetHead(in_channels=8, num_anchors=9, num_classes=4, num_convs=3, prior_prob=0.01)
    assert [type(m).__name__ for m in head.cls_tower] == ["Conv2d", "ReLU"] * 3
    assert [type(m).__name__ for m in head.bbox_tower] == ["Conv2d", "ReLU"] * 3
    torch.testing.assert_close(head.cls_logits.bias, torch.full((36,), -math.log(0.99 / 0.01)))
    assert torch.equal(head.bbox_pred.bias, torch.zeros(36))
    assert abs(float(head.cls_tower[0].weight.detach().std()) - 0.01) < 0.003
    features = [torch.randn(2, 8, 6, 5), torch.randn(2, 8, 3, 3)]
    logits, deltas = head(features)
    assert [tuple(t.shape) for t in logits] == [(2, 36, 6, 5), (2, 36, 3, 3)]
    assert [tuple(t.shape) for t in deltas] == [(2, 36, 6, 5), (2, 36, 3, 3)]
    # At initialisation every class scores about the prior.
    assert torch.allclose(logits[0].sigmoid(), torch.tensor(0.01), atol=2e-3)


def test_build_rpn_returns_the_retinanet_module():
    c = _tiny_cfg()
    rpn = build_rpn(c, 16)
    assert isinstance(rpn, RetinaNetModule)
    assert rpn.head.cls_logits.out_channels == 9 * 2 and rpn.head.bbox_pred.out_channels == 9 * 4


# ---------------------------------------------------------------- anchors


def _plain_cell_anchors(stride, sizes, ratios):
    """Detectron's construction, written out with numpy in float64."""
    size = stride
    centre = (size - 1) / 2.0
    rows = []
    for r in ratios:
        ws = np.round(np.sqrt(size * size / r))
        hs = np.round(ws * r)
        for s in sizes:
            w, h = ws * (s / stride), hs * (s / stride)
            rows.append([centre - (w - 1) / 2, centre - (h - 1) / 2, centre + (w - 1) / 2, centre + (h - 1) / 2])
    return torch.tensor(np.array(rows), dtype=torch.float32)


def test_anchors_scales_per_octave():
    c = _load("retinanet/retinanet_R-50-FPN_1x.yaml")
    generator = make_anchor_generator_retinanet(c)
    assert generator.num_anchors_per_location() == [9] * 5
    assert generator.strides == (8, 16, 32, 64, 128)
    for stride, size, cell in zip((8, 16, 32, 64, 128), (32, 64, 128, 256, 512), generator.cell_anchors):
        sizes = [size * 2.0 ** (k / 3) for k in range(3)]
        assert torch.equal(cell, _plain_cell_anchors(stride, sizes, (0.5, 1.0, 2.0)))
    # Level 0, ratio 1: sizes 32, 40.3, 50.8 around the centre 3.5 of the 8-pixel cell.
    torch.testing.assert_close(list(generator.cell_anchors)[0][3], torch.tensor([-12.0, -12.0, 19.0, 19.0]))
    assert generator.straddle_thresh == -1


def test_rpn_anchors_are_unchanged_by_the_octave_support():
    c = _load("rpn_R_50_FPN_1x.yaml")
    generator = make_anchor_generator(c)
    for stride, size, cell in zip((4, 8, 16, 32, 64), (32, 64, 128, 256, 512), generator.cell_anchors):
        assert torch.equal(cell, _plain_cell_anchors(stride, [size], (0.5, 1.0, 2.0)))


# ---------------------------------------------------------------- loss


def _plain_iou(a, b):
    """[len(a), len(b)] IoU with inclusive pixels (+1), in float64."""
    p, q = a.double()[:, None, :], b.double()[None, :, :]
    iw = (torch.minimum(p[..., 2], q[..., 2]) - torch.maximum(p[..., 0], q[..., 0]) + 1).clamp(min=0)
    ih = (torch.minimum(p[..., 3], q[..., 3]) - torch.maximum(p[..., 1], q[..., 1]) + 1).clamp(min=0)
    inter = iw * ih
    area_p = (p[..., 2] - p[..., 0] + 1) * (p[..., 3] - p[..., 1] + 1)
    area_q = (q[..., 2] - q[..., 0] + 1) * (q[..., 3] - q[..., 1] + 1)
    return inter / (area_p + area_q - inter)


def _plain_labels(anchors, target, fg, bg):
    """Per anchor: gt index (or -1) and label (class, 0, -1), the matcher's rules written out."""
    if len(target) == 0:
        return torch.full((len(anchors),), -1), torch.zeros(len(anchors), dtype=torch.int64)
    iou = _plain_iou(target.bbox, anchors)
    best, match = iou.max(dim=0)
    gt_labels = target.get_field("labels")
    labels = gt_labels[match].clone()
    labels[best < bg] = 0
    labels[(best >= bg) & (best < fg)] = -1
    for g in range(len(target)):  # low-quality matches: every anchor at a box's best IoU
        for r in torch.nonzero(iou[g] == iou[g].max()).flatten().tolist():
            labels[r] = gt_labels[match[r]]
    return match, labels


def _plain_focal(logits, labels, gamma, alpha):
    p = logits.double().sigmoid()
    total = 0.0
    for n in range(logits.shape[0]):
        if labels[n] < 0:
            continue
        for d in range(logits.shape[1]):
            if labels[n] == d + 1:
                total += -alpha * (1 - p[n, d]) ** gamma * torch.log(p[n, d])
            else:
                total += -(1 - alpha) * p[n, d] ** gamma * torch.log(1 - p[n, d])
    return total


def _plain_smooth_l1(d, beta):
    d = d.abs()
    return torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta).sum()


def _scene(num_classes=2, seed=0):
    """Two 64x90 images (padded to 64x96), their anchors, random head outputs for P3..P7, targets
    (the second image has none)."""
    g = torch.Generator().manual_seed(seed)
    c = _tiny_cfg()
    generator = make_anchor_generator_retinanet(c)
    images = to_image_list([torch.zeros(3, 64, 90), torch.zeros(3, 60, 96)], 32)
    sizes = [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
    features = [torch.zeros(2, 1, h, w) for h, w in sizes]
    anchors = generator(images, features)
    A = 9
    box_cls = [torch.randn(2, A * num_classes, h, w, generator=g) - 1 for h, w in sizes]
    box_reg = [0.5 * torch.randn(2, A * 4, h, w, generator=g) for h, w in sizes]
    t0 = BoxList(torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 10.0, 85.0, 40.0], [60, 40, 70, 55]]), (90, 64))
    t0.add_field("labels", torch.tensor([1, 2, 2]))
    t1 = BoxList(torch.zeros(0, 4), (96, 60))
    t1.add_field("labels", torch.zeros(0, dtype=torch.int64))
    return c, anchors, box_cls, box_reg, [t0, t1]


def _flat(layer, C):
    """[N, A*C, H, W] -> per image [H*W*A, C] (the anchors' order)."""
    N, AxC, H, W = layer.shape
    return layer.reshape(N, AxC // C, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def test_loss_matches_a_plain_restatement():
    c, anchors, box_cls, box_reg, targets = _scene()
    r = c.MODEL.RETINANET
    evaluator = make_retinanet_loss_evaluator(c, CODER)
    cls_loss, reg_loss = evaluator(anchors, box_cls, box_reg, targets)

    logits = torch.cat([_flat(x, 2) for x in box_cls], dim=1)
    deltas = torch.cat([_flat(x, 4) for x in box_reg], dim=1)
    focal, smooth, num_pos = 0.0, 0.0, 0
    for i, (per_image, target) in enumerate(zip(anchors, targets)):
        boxes = torch.cat([a.bbox for a in per_image])
        match, labels = _plain_labels(boxes, target, r.FG_IOU_THRESHOLD, r.BG_IOU_THRESHOLD)
        focal = focal + _plain_focal(logits[i], labels, r.LOSS_GAMMA, r.LOSS_ALPHA)
        positive = labels > 0
        num_pos += int(positive.sum())
        if positive.any():
            encoded = CODER.encode(target.bbox[match[positive]], boxes[positive])
            smooth = smooth + _plain_smooth_l1(deltas[i][positive].double() - encoded.double(), r.BBOX_REG_BETA)
    assert num_pos > 3  # the scene has positives, and the low-quality rule gives each box some
    expected_cls = focal / (num_pos + len(targets))
    expected_reg = smooth / max(1.0, num_pos * r.BBOX_REG_WEIGHT)
    torch.testing.assert_close(cls_loss.double(), torch.as_tensor(expected_cls, dtype=torch.float64), rtol=1e-5, atol=0)
    torch.testing.assert_close(reg_loss.double(), torch.as_tensor(expected_reg, dtype=torch.float64), rtol=1e-5, atol=0)


def test_loss_without_any_ground_truth():
    c, anchors, box_cls, box_reg, targets = _scene()
    empty = [targets[1], targets[1]]
    cls_loss, reg_loss = make_retinanet_loss_evaluator(c, CODER)(anchors, box_cls, box_reg, empty)
    logits = torch.cat([_flat(x, 2) for x in box_cls], dim=1)
    expected = sum(
        _plain_focal(logits[i], torch.zeros(logits.shape[1], dtype=torch.int64), 2.0, 0.25) for i in range(2)
    )
    torch.testing.assert_close(cls_loss.double(), (expected / 2).double(), rtol=1e-5, atol=0)
    assert reg_loss.item() == 0.0


# ---------------------------------------------------------------- post-processing


def _plain_nms(boxes, scores, thresh):
    """Greedy NMS (+1 IoU, suppress at IoU > thresh), kept indices ascending."""
    order = sorted(range(len(scores)), key=lambda k: (-float(scores[k]), k))
    iou = _plain_iou(boxes, boxes)
    removed, keep = set(), []
    for k in order:
        if k in removed:
            continue
        keep.append(k)
        removed.update(m for m in torch.nonzero(iou[k] > thresh).flatten().tolist() if m != k)
    return sorted(keep)


def _plain_postprocess(anchors, box_cls, box_reg, th, top_n, nms, limit, C):
    results = []
    for i, per_image in enumerate(anchors):
        w, h = per_image[0].size
        boxes, scores, labels = [], [], []
        for level, anchor in enumerate(per_image):
            prob = _flat(box_cls[level], C)[i].sigmoid().reshape(-1)
            deltas = _flat(box_reg[level], 4)[i]
            idx = torch.nonzero(prob > th).flatten()
            if len(idx) > top_n:
                idx = idx[prob[idx].argsort(descending=True)[:top_n]].sort().values
            for j in idx.tolist():
                a, cls = j // C, j % C + 1
                box = CODER.decode(deltas[a][None], anchor.bbox[a][None])[0]
                box = torch.stack(
                    [box[0].clamp(0, w - 1), box[1].clamp(0, h - 1), box[2].clamp(0, w - 1), box[3].clamp(0, h - 1)]
                )
                boxes.append(box)
                scores.append(prob[j])
                labels.append(cls)
        boxes = torch.stack(boxes) if boxes else torch.zeros(0, 4)
        scores, labels = torch.tensor(scores), torch.tensor(labels, dtype=torch.int64)
        kept = []
        for cls in range(1, C + 1):
            idx = torch.nonzero(labels == cls).flatten()
            kept += idx[_plain_nms(boxes[idx], scores[idx], nms)].tolist()
        kept = torch.tensor(kept, dtype=torch.int64)
        if len(kept) > limit:
            threshold = torch.kthvalue(scores[kept], len(kept) - limit + 1).values
            kept = kept[scores[kept] >= threshold]
        results.append((boxes[kept], scores[kept], labels[kept]))
    return results


@pytest.mark.parametrize("top_n,limit", [(1000, 1000), (12, 10)], ids=["no_limits", "top_n_and_limit"])
def test_postprocessing_matches_a_per_image_per_class_loop(top_n, limit):
    _, anchors, box_cls, box_reg, _ = _scene(num_classes=3, seed=1)
    post = RetinaNetPostProcessor(0.3, top_n, 0.4, limit, min_size=0, box_coder=CODER)
    results = post(anchors, box_cls, box_reg)
    expected = _plain_postprocess(anchors, box_cls, box_reg, 0.3, top_n, 0.4, limit, 3)
    for result, (boxes, scores, labels), per_image in zip(results, expected, anchors):
        assert result.size == per_image[0].size and result.mode == "xyxy"
        assert set(result.fields()) == {"scores", "labels"}
        assert len(boxes) > 5
        assert result.get_field("labels").dtype == torch.int64
        assert torch.equal(result.get_field("labels"), labels)
        torch.testing.assert_close(result.get_field("scores"), scores)
        torch.testing.assert_close(result.bbox, boxes)
    if limit < 1000:
        assert all(len(r) <= limit for r in results)


def test_postprocessing_without_candidates_gives_empty_boxlists():
    _, anchors, box_cls, box_reg, _ = _scene(num_classes=3)
    results = RetinaNetPostProcessor(1.0, 100, 0.4, 100, box_coder=CODER)(anchors, box_cls, box_reg)
    for r in results:
        assert len(r) == 0 and set(r.fields()) == {"scores", "labels"}


def test_postprocessing_drops_non_finite_boxes():
    _, anchors, box_cls, box_reg, _ = _scene(num_classes=3)
    box_reg[0][0] = float("nan")
    box_cls[1][1] = float("nan")
    results = RetinaNetPostProcessor(0.3, 100, 0.4, 100, box_coder=CODER)(anchors, box_cls, box_reg)
    for r in results:
        assert torch.isfinite(r.bbox).all() and torch.isfinite(r.get_field("scores")).all()
        assert len(r) > 0


# ---------------------------------------------------------------- the detector


def _images_and_targets():
    g = torch.Generator().manual_seed(0)
    images = to_image_list([torch.randn(3, 96, 128, generator=g) * 50, torch.randn(3, 96, 128, generator=g) * 50], 32)
    targets = []
    for objects in ([(10, 12, 50, 60, 1), (60, 20, 110, 80, 2)], [(30, 30, 90, 70, 1)]):
        t = BoxList(torch.tensor([o[:4] for o in objects], dtype=torch.float32), (128, 96))
        t.add_field("labels", torch.tensor([o[4] for o in objects]))
        targets.append(t)
    return images, targets


def test_detector_trains_and_infers():
    torch.manual_seed(0)
    c = _tiny_cfg(["MODEL.RETINANET.INFERENCE_TH", 0.0])
    model = build_detection_model(c).train()
    images, targets = _images_and_targets()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = []
    for _ in range(5):
        losses = model(images, targets)
        assert set(losses) == {"loss_retina_cls", "loss_retina_reg"}
        assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert missing == []
        opt.step()
        history.append(loss.item())
    assert history[-1] < history[0], history

    model.eval()
    with torch.no_grad():
        results = model(images)
    assert len(results) == 2
    for r in results:
        assert isinstance(r, BoxList) and r.mode == "xyxy" and r.size == (128, 96)
        assert set(r.fields()) == {"scores", "labels"}
        scores = r.get_field("scores")
        assert len(r) > 0
        if len(r) > 20:  # only ties with the 20th best score may keep more
            assert (scores > scores.sort(descending=True).values[19]).sum() < 20
        labels = r.get_field("labels")
        assert labels.dtype == torch.int64 and labels.min() >= 1 and labels.max() <= 2
        assert (r.bbox[:, 0] >= 0).all() and (r.bbox[:, 2] <= 127).all()


def test_evaluation_treats_retinanet_as_a_detector():
    c = _tiny_cfg(["MODEL.RETINANET.INFERENCE_TH", 0.0])
    assert box_only_of(c) is False and iou_types_of(c) == ("bbox",)
    from maskrcnn_benchmark.data.datasets.evaluation.coco.prepare import prepare_for_coco_detection

    model = build_detection_model(c).eval()
    images, _ = _images_and_targets()
    with torch.no_grad():
        predictions = model(images)

    class _Dataset:
        id_to_img_map = {0: 11, 1: 12}
        contiguous_category_id_to_json_id = {1: 5, 2: 7}

        def get_img_info(self, index):
            return {"width": 256, "height": 192}

    results = prepare_for_coco_detection(predictions, _Dataset())
    assert len(results) == sum(len(p) for p in predictions)
    assert {r["image_id"] for r in results} == {11, 12}
    assert {r["category_id"] for r in results} <= {5, 7}


def test_top_k_per_anchor_first_equals_a_plain_top_k():
    from maskrcnn_benchmark.modeling.rpn.retinanet.inference import top_k_per_anchor_first

    g = torch.Generator().manual_seed(0)
    num_classes, k = 7, 30
    scores = torch.rand(3, 2000 * num_classes, generator=g)  # distinct values (no ties)
    values, columns = top_k_per_anchor_first(scores, k, num_classes)
    ref_values, ref_columns = scores.topk(k, dim=1, sorted=False)
    for row in range(3):
        assert set(columns[row].tolist()) == set(ref_columns[row].tolist())
        assert sorted(values[row].tolist()) == sorted(ref_values[row].tolist())
    torch.testing.assert_close(scores.gather(1, columns), values)
    # Many good classes on one anchor: all of them are found although that anchor counts once.
    scores[0, 5 * num_classes : 6 * num_classes] = 2.0
    _, columns = top_k_per_anchor_first(scores, k, num_classes)
    assert set(range(5 * num_classes, 6 * num_classes)) <= set(columns[0].tolist())
    # Fewer candidates than k (the rest masked to -inf): every candidate is selected.
    masked = torch.full_like(scores, float("-inf"))
    masked[:, [3, 500, 13000]] = torch.tensor([0.5, 0.7, 0.9])
    values, columns = top_k_per_anchor_first(masked, k, num_classes)
    for row in range(3):
        finite = columns[row][torch.isfinite(values[row])]
        assert sorted(finite.tolist()) == [3, 500, 13000]
