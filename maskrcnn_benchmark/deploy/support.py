"""What can be exported, checked before any tracing so that the tools fail with a clear message.

Exported: the inference of a GeneralizedRCNN with an RPN and RoI heads (Faster, Mask and Keypoint
R-CNN, C4 and FPN, ResNet / ResNeXt bodies, frozen batch norm or GroupNorm) in eval mode, in float32.
Not exported (NotExportableError):
- training mode (losses, sampling, ground-truth matching);
- test-time augmentation (TEST.BBOX_AUG.ENABLED): several resized and flipped forward passes whose
  detections are merged on the host (engine/bbox_aug.py);
- RetinaNet (MODEL.RETINANET_ON) and RPN-only models (MODEL.RPN_ONLY): their detections come from
  other post-processors, which the exported graph does not implement;
- FBNet bodies (MODEL.BACKBONE.CONV_BODY "FBNet"): their RoI heads use BatchNorm2d, and torch 2.14's
  batch_norm asks whether its input is empty, which torch.export cannot answer for a data-dependent
  number of RoIs (GuardOnDataDependentSymNode);
- deformable convolutions (MODEL.RESNETS.STAGE_WITH_DCN): not tried (no test covers them).
"""

from typing import Optional

from torch import nn

from ..config import CfgNode

FORMATS = ("onnx", "pt2")


class NotExportableError(ValueError):
    """The model or config asks for something that the exported graph does not implement."""


def check_config_exportable(cfg: CfgNode, fmt: Optional[str] = None) -> None:
    """Raise NotExportableError if a model built from `cfg` cannot be exported (to `fmt`, if given)."""
    if fmt is not None and fmt not in FORMATS:
        raise NotExportableError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}")
    model = cfg.MODEL
    if model.META_ARCHITECTURE != "GeneralizedRCNN":
        raise NotExportableError(f"MODEL.META_ARCHITECTURE {model.META_ARCHITECTURE!r}: only GeneralizedRCNN exports")
    if model.RETINANET_ON:
        raise NotExportableError(
            "RetinaNet (MODEL.RETINANET_ON True) cannot be exported: the exported graph implements the "
            "RPN + RoI-heads post-processing only"
        )
    if model.RPN_ONLY:
        raise NotExportableError(
            "RPN-only models (MODEL.RPN_ONLY True) cannot be exported: the exported graph ends with the box head"
        )
    if cfg.TEST.BBOX_AUG.ENABLED:
        raise NotExportableError(
            "test-time augmentation (TEST.BBOX_AUG.ENABLED True) cannot be exported: it merges several "
            "forward passes on the host; export with TEST.BBOX_AUG.ENABLED False"
        )
    if model.BACKBONE.CONV_BODY.startswith("FBNet"):
        raise NotExportableError(
            "FBNet models cannot be exported: their RoI heads' BatchNorm2d checks for an empty input, which "
            "torch.export cannot decide for a data-dependent number of RoIs"
        )
    if any(model.RESNETS.STAGE_WITH_DCN):
        raise NotExportableError(
            "deformable convolutions (MODEL.RESNETS.STAGE_WITH_DCN) are not supported by the export (not tested)"
        )


def check_model_exportable(model: nn.Module) -> None:
    """Raise NotExportableError unless `model` is a GeneralizedRCNN with RoI heads in eval mode."""
    from ..modeling.detector.generalized_rcnn import GeneralizedRCNN
    from ..modeling.rpn.rpn import RPNModule

    if not isinstance(model, GeneralizedRCNN):
        raise NotExportableError(f"only GeneralizedRCNN models can be exported, got {type(model).__name__}")
    if model.training:
        raise NotExportableError(
            "training mode cannot be exported (losses, sampling and matching need targets): call model.eval() first"
        )
    if not isinstance(model.rpn, RPNModule):
        raise NotExportableError(
            "only RPN-based detectors can be exported (RetinaNet cannot), got an rpn of type "
            f"{type(model.rpn).__name__}"
        )
    if not model.roi_heads:
        raise NotExportableError("RPN-only models (no RoI heads) cannot be exported")
    if model.roi_heads.box.post_processor.bbox_aug_enabled:
        raise NotExportableError(
            "test-time augmentation (TEST.BBOX_AUG.ENABLED True) cannot be exported: the box head returns "
            "unfiltered boxes for it"
        )
