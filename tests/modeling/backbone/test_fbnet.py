"""FBNet architectures, builder and detectors (the original's 7 FBNet configs)."""

import json
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling import registry
from maskrcnn_benchmark.modeling.backbone import build_backbone, fbnet, fbnet_builder, fbnet_modeldef
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.modeling.rpn.rpn import RPNHeadConvRegressor
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FBNET_CONFIGS = sorted(f for f in os.listdir(os.path.join(REPO, "configs")) if "fbnet" in f)


def _cfg(name=None, **fbnet_options):
    c = cfg.clone()
    if name:
        c.merge_from_file(os.path.join(REPO, "configs", name))
    else:
        c.MODEL.BACKBONE.CONV_BODY = "FBNet"
        c.MODEL.RPN.RPN_HEAD = "FBNet.rpn_head"
        c.MODEL.RPN.ANCHOR_STRIDE = (16,)
        c.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR = "FBNet.roi_head"
        c.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 6
        c.MODEL.FBNET.WIDTH_DIVISOR = 8
    for key, value in fbnet_options.items():
        c.MODEL.FBNET[key] = value
    c.MODEL.DEVICE = "cpu"
    return c


def test_the_seven_original_configs_are_shipped():
    assert FBNET_CONFIGS == [
        "e2e_faster_rcnn_fbnet.yaml",
        "e2e_faster_rcnn_fbnet_600.yaml",
        "e2e_faster_rcnn_fbnet_chamv1a_600.yaml",
        "e2e_mask_rcnn_fbnet.yaml",
        "e2e_mask_rcnn_fbnet_600.yaml",
        "e2e_mask_rcnn_fbnet_xirb16d_dsmask.yaml",
        "e2e_mask_rcnn_fbnet_xirb16d_dsmask_600.yaml",
    ]
    for name in ("FBNet.rpn_head",):
        assert name in registry.RPN_HEADS
    assert "FBNet" in registry.BACKBONES and "FBNet.roi_head" in registry.ROI_BOX_FEATURE_EXTRACTORS
    assert "FBNet.roi_head_mask" in registry.ROI_MASK_FEATURE_EXTRACTORS
    assert "FBNet.roi_head_keypoints" in registry.ROI_KEYPOINT_FEATURE_EXTRACTORS


def test_unify_arch_def_flattens_runs_into_blocks():
    arch = fbnet_builder.unify_arch_def(fbnet_modeldef.MODEL_ARCH["default"])
    per_stage = [sum(1 for b in arch["stages"] if b["stage_idx"] == s) for s in range(7)]
    assert per_stage == [1, 2, 3, 7, 4, 3, 5]
    assert fbnet_builder.get_num_stages(arch) == 7
    stage3 = [b["block"] for b in arch["stages"] if b["stage_idx"] == 3]
    # [6, 64, 4, 2] then [6, 96, 3, 1]: only the first block of a run keeps its stride.
    assert stage3 == [[6, 64, 1, 2]] + [[6, 64, 1, 1]] * 3 + [[6, 96, 1, 1]] * 3
    assert arch["backbone"] == [0, 1, 2, 3] and arch["rpn"] == [5] and arch["first"] == [32, 2]
    picked = fbnet_builder.get_blocks(arch, stage_indices=[4], block_indices=[0, 3])["stages"]
    assert [(b["stage_idx"], b["block_idx"]) for b in picked] == [(4, 0), (4, 3)]
    bad = {"block_op_type": [["ir_k3"]], "block_cfg": {"first": [8, 2], "stages": [[[1, 8, 2, 1]]]}}
    with pytest.raises(ValueError, match="2 blocks but 1"):
        fbnet_builder.unify_arch_def(bad)


@pytest.mark.parametrize("arch, channels", [("default", 96), ("cham_v1a", 88), ("xirb16d_dsmask", 128)])
def test_trunk_is_stride_16_with_the_last_trunk_width(arch, channels):
    backbone = build_backbone(_cfg(ARCH=arch)).eval()
    assert backbone.out_channels == channels
    with torch.no_grad():
        (features,) = backbone(torch.rand(1, 3, 64, 96))
    assert features.shape == (1, channels, 4, 6)
    assert [n for n, _ in backbone.body.stages.named_children()][:3] == ["xif0_0", "xif1_0", "xif1_1"]


def test_arch_def_from_json_and_errors():
    custom = {
        "block_op_type": [["ir_k3"], ["ir_k5_e3_se"], ["skip"]],
        "block_cfg": {
            "first": [8, 2],
            "stages": [[[1, 8, 1, 2]], [[3, 16, 1, 4]], [[1, 16, 1, 1]]],
            "last": [0, 0.0],
            "backbone": [0, 1],
            "rpn": [2],
            "bbox": [2],
        },
    }
    c = _cfg(ARCH="my_arch", ARCH_DEF=json.dumps(custom))
    backbone = build_backbone(c)
    assert backbone.out_channels == 16
    assert backbone(torch.rand(1, 3, 32, 32))[0].shape == (1, 16, 2, 2)
    with pytest.raises(ValueError, match="differs from the built-in"):
        fbnet.create_builder(_cfg(ARCH="default", ARCH_DEF=json.dumps(custom)))
    with pytest.raises(KeyError, match="not a built-in architecture"):
        fbnet.create_builder(_cfg(ARCH="no_such_arch"))
    custom["rpn_stride"] = 8
    with pytest.raises(ValueError, match="ANCHOR_STRIDE"):
        fbnet.create_builder(_cfg(ARCH="my_arch", ARCH_DEF=json.dumps(custom)))


def test_heads_follow_the_head_options():
    c = _cfg(RPN_HEAD_BLOCKS=1, DET_HEAD_BLOCKS=[0, 1], DET_HEAD_STRIDE=1, DET_HEAD_LAST_SCALE=-2.0)
    model = build_detection_model(c)
    rpn_head = model.rpn.head
    assert list(rpn_head[0].head._modules) == ["xif5_2"]  # only the last RPN block
    assert isinstance(rpn_head[1], RPNHeadConvRegressor)
    assert rpn_head[1].cls_logits.out_channels == 15  # 5 sizes x 3 ratios
    box = model.roi_heads.box.feature_extractor
    assert list(box.head.blocks._modules) == ["xif4_0", "xif4_1"]
    assert box.head.blocks.xif4_0.dw.conv.stride == (1, 1)  # DET_HEAD_STRIDE 1 overrides stride 2
    assert box.head.last.conv.out_channels == 2 * 160 == box.out_channels  # last scale -2: twice the blocks' width
    pooled = [torch.rand(1, model.backbone.out_channels, 8, 8)]
    proposals = [BoxList(torch.tensor([[0.0, 0.0, 60.0, 60.0], [10.0, 20.0, 90.0, 100.0]]), (128, 128))]
    assert box.eval()(pooled, proposals).shape == (2, 320, 6, 6)


@pytest.mark.parametrize("name", FBNET_CONFIGS)
def test_config_infers_with_the_documented_outputs(name):
    c = _cfg(name)
    c.MODEL.ROI_HEADS.SCORE_THRESH = 0.0  # random weights: keep every detection
    torch.manual_seed(0)
    model = build_detection_model(c).eval()
    keys = list(model.state_dict())
    rpn_stage = fbnet_modeldef.MODEL_ARCH[c.MODEL.FBNET.ARCH]["block_cfg"]["rpn"][0]
    assert f"rpn.head.0.head.xif{rpn_stage}_0.pw.conv.weight" in keys
    assert {"rpn.head.1.cls_logits.weight", "rpn.head.1.bbox_pred.weight", "backbone.body.first.conv.weight"} <= set(
        keys
    )
    assert "roi_heads.box.feature_extractor.head.blocks.xif4_0.pw.conv.weight" in keys
    with torch.no_grad():
        (result,) = model(to_image_list([torch.randn(3, 96, 128) * 50], c.DATALOADER.SIZE_DIVISIBILITY))
    assert len(result) > 0 and result.size == (128, 96)
    assert result.bbox.shape[1] == 4 and torch.isfinite(result.bbox).all()
    if c.MODEL.MASK_ON:
        assert model.roi_heads.mask.predictor.mask_fcn_logits.kernel_size == (1, 1)
        # Mask probabilities at MODEL.ROI_MASK_HEAD.RESOLUTION (12: pooled 6, upsampled x2 by the blocks).
        assert result.get_field("mask").shape == (len(result), 1, 12, 12)
