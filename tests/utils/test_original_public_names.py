"""Every public name of the original maskrcnn-benchmark importable from its module path here, with a
compatible signature; and the behaviour of the names added for that.

ORIGINAL was extracted once from the original's git tree (its files parsed with `ast`, not imported):
per module, the public top-level classes and functions it defines, the public values (None: their
use is not a call this walk can check; `nms` was the compiled op), and the names its package
`__init__`s and `__all__` re-export. A callable maps to its positional parameters; a class to its
`__init__`'s, "self" first (torch's where it defined none).

Compatible: the callable takes the original's positional parameters in the same order under the
same names (callers pass some by keyword) and requires nothing more. The POSITIONAL_ONLY names were
autograd `Function.apply`s, which take positions only: their parameter names are not compared. A
class decorated with `cfg_constructor` takes its parts or the original's (cfg, ...): its
`__init__.from_cfg` is checked.

Not walked: maskrcnn_benchmark/csrc (C++), and data/datasets/evaluation/cityscapes/eval_instances.py,
the original's port of the official Cityscapes script (15 camelCase helpers over that script's own
data structures); the evaluation is rebuilt in matching.py and average_precision.py there, and its
entry points (abs_cityscapes_evaluation, do_cityscapes_evaluation) are walked.
"""

import importlib
import inspect
import math
import os
import re
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.structures.bounding_box import BoxList

# tests/assets/original_public_names.txt holds, per module: `module:`, then its names:
# `class Name(params of __init__ after self)`, `function(params)`, `VALUE`;
# a "/" ends positional-only parameters (an autograd Function.apply: the names are not compared).
with open(os.path.join(os.path.dirname(__file__), "..", "assets", "original_public_names.txt")) as _f:
    ORIGINAL_TEXT = _f.read()


def _parse(text: str):
    table: Dict[str, Dict[str, Optional[List[str]]]] = {}
    positional_only = set()
    parts = re.split(r"^(\S+):$", text, flags=re.M)
    for module, body in zip(parts[1::2], parts[2::2]):
        table[module] = {}
        for entry in filter(None, (e.strip() for e in " ".join(body.split()).split(";"))):
            kind, name, params = re.fullmatch(r"(class )?(\w+)(?:\((.*)\))?", entry).groups()
            if params is None:
                table[module][name] = None
                continue
            params = [p.strip() for p in params.split(",") if p.strip()]
            if "/" in params:
                params.remove("/")
                positional_only.add((module, name))
            table[module][name] = (["self"] if kind else []) + params
    return table, positional_only


ORIGINAL, POSITIONAL_ONLY = _parse(ORIGINAL_TEXT)  # module -> {name: [positional parameters] or None}


def _problems(obj, params: List[str], names_matter: bool) -> List[str]:
    """Why `obj` cannot be called as the original's callable with these positional parameters."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return [] if not params else [f"no signature to accept {params}"]
    ps = list(sig.parameters.values())
    slots = [p for p in ps if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_more = any(p.kind == p.VAR_POSITIONAL for p in ps)
    problems = []
    for i, name in enumerate(params):
        if i >= len(slots):
            if not takes_more:
                problems.append(f"no positional parameter #{i} ({name})")
        elif names_matter and slots[i].name != name:
            problems.append(f"parameter #{i} is {slots[i].name!r}, the original's {name!r}")
    problems += [f"requires {p.name!r}" for p in slots[len(params) :] if p.default is p.empty]
    problems += [f"requires keyword {p.name!r}" for p in ps if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    return problems


def _check(module_name: str, name: str, params: Optional[List[str]]) -> List[str]:
    module = importlib.import_module(module_name)
    if not hasattr(module, name):
        return [f"{module_name}.{name} is missing"]
    obj = getattr(module, name)
    if params is None:
        return []
    if params[:1] == ["self"]:
        if not inspect.isclass(obj):
            return [f"{module_name}.{name} is not a class"]
        target, params = getattr(obj.__init__, "from_cfg", obj), params[1:]
    else:
        if not callable(obj):
            return [f"{module_name}.{name} is not callable"]
        target = obj
    names_matter = (module_name, name) not in POSITIONAL_ONLY
    return [f"{module_name}.{name}: {p}" for p in _problems(target, params, names_matter)]


@pytest.mark.parametrize("module_name", sorted(ORIGINAL))
def test_original_names_at_their_paths(module_name):
    problems = []
    for name, params in ORIGINAL[module_name].items():
        problems += _check(module_name, name, params)
    assert not problems, "\n".join(problems)


def test_the_walk_itself_catches_incompatibilities():
    def ours(a, b, c=1, *, d):
        pass

    assert _problems(ours, ["a", "x"], True) == ["parameter #1 is 'b', the original's 'x'", "requires keyword 'd'"]
    assert _problems(lambda a: a, ["a", "b"], True) == ["no positional parameter #1 (b)"]
    assert _problems(lambda a, b: a, ["a"], True) == ["requires 'b'"]
    assert _check("maskrcnn_benchmark.utils.timer", "no_such_name", None) == [
        "maskrcnn_benchmark.utils.timer.no_such_name is missing"
    ]


# --- behaviour of the names added for the original's callers ----------------------------------

CPU_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "cpu")


def _cfg(name: str):
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    c.merge_from_file(os.path.join(CPU_CONFIGS, name))
    return c


def _keys(module: torch.nn.Module):
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def test_model_classes_take_the_originals_cfg_arguments():
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.modeling.detector.generalized_rcnn import GeneralizedRCNN
    from maskrcnn_benchmark.modeling.roi_heads.box_head.roi_box_predictors import FPNPredictor
    from maskrcnn_benchmark.modeling.roi_heads.mask_head.roi_mask_feature_extractors import (
        MaskRCNNFPNFeatureExtractor,
    )
    from maskrcnn_benchmark.modeling.rpn.rpn import RPNHead

    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    assert _keys(GeneralizedRCNN(cfg)) == _keys(build_detection_model(cfg))
    predictor = FPNPredictor(cfg, in_channels=24)  # by keyword too
    assert (predictor.cls_score.in_features, predictor.cls_score.out_features) == (
        24,
        cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
    )
    assert RPNHead(cfg, 8, 3).cls_logits.out_channels == 3

    class WiderMaskExtractor(MaskRCNNFPNFeatureExtractor):  # a subclass written for the original
        def __init__(self, cfg, in_channels):
            super().__init__(cfg, in_channels)
            self.extra = torch.nn.Identity()

    extractor = WiderMaskExtractor(cfg, 8)
    features = [torch.randn(1, 8, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    proposals = [BoxList(torch.tensor([[4.0, 4.0, 40.0, 30.0]]), (64, 64))]
    resolution = cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION
    expected = (1, cfg.MODEL.ROI_MASK_HEAD.CONV_LAYERS[-1], resolution, resolution)
    assert extractor(features, proposals).shape == expected

    c4 = GeneralizedRCNN(_cfg("e2e_mask_rcnn_R_18_C4_cpu.yaml"))  # CombinedROIHeads(cfg, heads) shares the res5 head
    assert c4.roi_heads.mask.feature_extractor is c4.roi_heads.box.feature_extractor


def test_resnet_parts_in_the_originals_forms():
    from torch import nn

    from maskrcnn_benchmark.layers import DFConv2d, FrozenBatchNorm2d
    from maskrcnn_benchmark.modeling.backbone import resnet
    from maskrcnn_benchmark.modeling.backbone.backbone import build_resnet

    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    assert _keys(resnet.ResNet(cfg)) == _keys(build_resnet(cfg))
    assert resnet.ResNet50StagesTo4 == tuple(resnet.StageSpec(i, n, i == 3) for i, n in ((1, 3), (2, 4), (3, 6)))
    assert [s.block_count for s in resnet.ResNet152FPNStagesTo5] == [3, 8, 36, 3]

    dcn = {"stage_with_dcn": True, "with_modulated_dcn": True, "deformable_groups": 1}
    stage5 = (resnet.StageSpec(4, 2, False),)
    head = resnet.ResNetHead("BottleneckWithFixedBatchNorm", stage5, 1, 8, True, None, 16, 1, dcn)
    assert all(isinstance(b.conv2, DFConv2d) and b.conv2.with_modulated_dcn for b in head.layer4)
    assert isinstance(head.layer4[0].bn1, FrozenBatchNorm2d)
    assert head(torch.randn(1, 64, 8, 8)).shape == (1, 128, 4, 4)
    gn_head = resnet.ResNetHead("BottleneckWithGN", stage5, res2_out_channels=16, width_per_group=8)
    assert isinstance(gn_head.layer4[0].bn1, nn.GroupNorm) and not isinstance(gn_head.layer4[0].conv2, DFConv2d)
    with pytest.raises(KeyError, match="NoSuchBlock"):
        resnet.ResNetHead("NoSuchBlock", stage5)

    block = resnet.Bottleneck(16, 8, 32, 1, True, 2, 1, nn.BatchNorm2d, {"stage_with_dcn": False})
    assert isinstance(block.bn1, nn.BatchNorm2d) and not isinstance(block.conv2, DFConv2d)
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)
    stem = resnet.BaseStem(cfg, norm_func=FrozenBatchNorm2d)
    assert stem(torch.rand(1, 3, 32, 32)).shape == (1, cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, 8, 8)


def test_rpn_and_retinanet_losses_label_anchors_through_the_originals_hook():
    from maskrcnn_benchmark.layers import SigmoidFocalLoss
    from maskrcnn_benchmark.modeling.box_coder import BoxCoder
    from maskrcnn_benchmark.modeling.matcher import Matcher
    from maskrcnn_benchmark.modeling.rpn.loss import RPNLossComputation, generate_rpn_labels
    from maskrcnn_benchmark.modeling.rpn.retinanet.loss import RetinaNetLossComputation, generate_retinanet_labels

    # IoU with the first box: 1, 0.25 (below), -, 0.6 (between the thresholds)
    anchors = BoxList(torch.tensor([[0, 0, 9, 9], [0, 0, 4, 4], [20, 20, 29, 29], [0, 0, 9, 5.0]]), (40, 40))
    anchors.add_field("visibility", torch.ones(4, dtype=torch.bool))
    target = BoxList(torch.tensor([[0, 0, 9, 9], [20, 20, 29, 29.0]]), (40, 40))
    target.add_field("labels", torch.tensor([3, 5]))
    matcher = Matcher(0.7, 0.3, allow_low_quality_matches=False)
    seen = []

    def labels_func(matched_targets):
        seen.append(matched_targets.get_field("matched_idxs").tolist())
        return generate_rpn_labels(matched_targets)

    rpn = RPNLossComputation(matcher, None, BoxCoder((1.0, 1.0, 1.0, 1.0)), labels_func)
    assert rpn.prepare_targets([anchors], [target])[0][0].tolist() == [1, 0, 1, -1]
    assert seen == [[0, Matcher.BELOW_LOW_THRESHOLD, 1, Matcher.BETWEEN_THRESHOLDS]]
    retina = RetinaNetLossComputation(
        matcher, BoxCoder((10.0, 10.0, 5.0, 5.0)), generate_retinanet_labels, SigmoidFocalLoss(2.0, 0.25)
    )
    assert retina.prepare_targets([anchors], [target])[0][0].tolist() == [3, 0, 5, -1]


def test_retinanet_post_processor_takes_and_checks_num_classes():
    from maskrcnn_benchmark.modeling.box_coder import BoxCoder
    from maskrcnn_benchmark.modeling.rpn.retinanet.inference import (
        RetinaNetPostProcessor,
        make_retinanet_postprocessor,
    )

    post = RetinaNetPostProcessor(0.05, 10, 0.5, 10, 0, 3, BoxCoder((10.0, 10.0, 5.0, 5.0)))  # the original's order
    anchors = [[BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0]]).repeat(4, 1), (20, 20))]]  # 2x2 map, 1 anchor
    detections = post(anchors, [torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 4, 2, 2)])[0]
    assert sorted(detections.get_field("labels").tolist()) == [1, 2]  # identical boxes: one per class
    with pytest.raises(ValueError, match="num_classes=3"):
        post(anchors, [torch.zeros(1, 3, 2, 2)], [torch.zeros(1, 4, 2, 2)])
    cfg = _cfg("retinanet_R_18_FPN_cpu.yaml")
    assert make_retinanet_postprocessor(cfg, None, False).num_classes == cfg.MODEL.RETINANET.NUM_CLASSES


def test_cat_boxlist_with_keypoints_concatenates_the_keypoint_tensors():
    from maskrcnn_benchmark.modeling.roi_heads.keypoint_head.loss import cat_boxlist_with_keypoints
    from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

    parts = []
    for n in (1, 2):
        b = BoxList(torch.rand(n, 4) * 5 + torch.tensor([0, 0, 5, 5]), (10, 10))
        b.add_field("labels", torch.arange(n) + 1)
        b.add_field("keypoints", PersonKeypoints(torch.rand(n, 17, 3), (10, 10)))
        parts.append(b)
    out = cat_boxlist_with_keypoints(parts)
    kp = out.get_field("keypoints")
    assert isinstance(kp, torch.Tensor) and kp.shape == (3, 17, 3)
    torch.testing.assert_close(kp, torch.cat([p.get_field("keypoints").keypoints for p in parts]))
    assert out.get_field("labels").tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="keypoints"):
        cat_boxlist_with_keypoints([BoxList(torch.zeros(1, 4), (10, 10))])


def test_c2_format_loaders_by_conv_body(monkeypatch):
    from maskrcnn_benchmark.utils import c2_model_loading as c2

    assert c2.C2_FORMAT_LOADER["R-101-FPN-RETINANET"] is c2.load_resnet_c2_format
    monkeypatch.setitem(c2.C2_FORMAT_LOADER, "MY-BODY", lambda cfg, f: {"model": {"from": f}})
    cfg = _cfg("e2e_mask_rcnn_R_18_FPN_cpu.yaml")
    cfg.MODEL.BACKBONE.CONV_BODY = "MY-BODY"
    assert c2.load_c2_format(cfg, "weights.pkl") == {"model": {"from": "weights.pkl"}}


def test_box_augmentation_functions_read_the_global_config():
    from maskrcnn_benchmark.config import cfg as global_cfg
    from maskrcnn_benchmark.engine.bbox_aug import im_detect_bbox, im_detect_bbox_hflip

    seen = []

    def model(images):
        seen.append(tuple(images.tensors.shape[2:]))
        h, w = images.image_sizes[0]
        box = BoxList(torch.tensor([[1.0, 2.0, 5.0, 6.0]]), (w, h))
        box.add_field("scores", torch.ones(1))
        return [box]

    image = Image.fromarray(np.zeros((50, 100, 3), dtype=np.uint8))
    im_detect_bbox(model, [image], 100, 1000, "cpu")
    flipped = im_detect_bbox_hflip(model, [image], 100, 1000, "cpu")[0]
    divisor = global_cfg.DATALOADER.SIZE_DIVISIBILITY or 1
    assert seen[0] == (math.ceil(100 / divisor) * divisor, math.ceil(200 / divisor) * divisor)
    assert flipped.bbox.tolist() == [[194.0, 2.0, 198.0, 6.0]]  # x -> 200 - x - 1


def test_layer_and_evaluation_aliases():
    from maskrcnn_benchmark.data.datasets.evaluation import coco as coco_evaluation
    from maskrcnn_benchmark.data.datasets.evaluation.coco import abs_to_coco, coco_eval, coco_eval_wrapper
    from maskrcnn_benchmark.layers import misc
    from maskrcnn_benchmark.layers.dcn import deform_conv_func
    from maskrcnn_benchmark.layers.sigmoid_focal_loss import sigmoid_focal_loss_cpu, sigmoid_focal_loss_cuda

    # maskrcnn_benchmark.layers.deform_conv is also a function of the package
    deform_conv = importlib.import_module("maskrcnn_benchmark.layers.deform_conv")
    assert misc.DFConv2d is deform_conv.DFConv2d
    assert not hasattr(misc, "NoSuchLayer")
    x, w, off = torch.randn(2, 4, 6, 6), torch.randn(3, 4, 3, 3), torch.randn(2, 18, 4, 4)
    # the original's positional call, im2col_step last
    out = deform_conv_func.DeformConvFunction.apply(x, off, w, 1, 0, 1, 1, 1, 64)
    torch.testing.assert_close(out, deform_conv.deform_conv(x, off, w))

    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 3, -1, 2])
    p, t, cls = logits.sigmoid(), targets[:, None], torch.arange(1, 4)[None]
    positive, negative = (t == cls).float(), ((t != cls) & (t >= 0)).float()
    expected = -positive * (1 - p) ** 2 * p.log() * 0.25 - negative * p**2 * (1 - p).log() * 0.75
    torch.testing.assert_close(sigmoid_focal_loss_cpu(logits, targets, 2.0, 0.25), expected)
    assert sigmoid_focal_loss_cuda is sigmoid_focal_loss_cpu

    assert coco_evaluation.do_orig_coco_evaluation is coco_eval.do_coco_evaluation
    assert coco_evaluation.do_wrapped_coco_evaluation is coco_eval_wrapper.do_coco_evaluation
    masks = torch.zeros(2, 5, 6, dtype=torch.uint8)
    masks[0, 1:3, 2:5] = 1
    rles = abs_to_coco.masks_to_rles(masks_tensor=masks)
    assert [r["size"] for r in rles] == [[5, 6], [5, 6]] and rles[0]["counts"] != rles[1]["counts"]
