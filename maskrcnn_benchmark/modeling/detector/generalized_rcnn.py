"""GeneralizedRCNN: backbone -> RPN -> ROI heads.

forward(images, targets=None):
- images: list of [3, H, W] tensors, a batched tensor, or an ImageList (already normalized; a list is
  zero-padded into a batch here without size divisibility, as the original did).
- training: targets (one BoxList per image with "labels" and, as needed, "masks" / "keypoints")
  are required; returns a dict of losses.
- inference: returns one BoxList per image, in network-input pixels, with "scores" and "labels"
  (plus "mask" [N, 1, M, M] probabilities and/or "keypoints"); RPN-only models return proposals
  with "objectness". Nothing non-finite is returned: proposals and detections with NaN scores or
  boxes (a diverged model, NaN pixels) are dropped by the RPN and box-head post-processors, so an
  image may get an empty BoxList, which still has every field ([0, 4] boxes, [0] scores, ...).
- training with an image whose targets were all removed treats it as background only.
"""

import functools
from typing import Dict, List, Optional, Union

import torch
from torch import nn

from ...config import CfgNode
from ...config.cfg_constructor import cfg_constructor
from ...structures.bounding_box import BoxList
from ...structures.image_list import ImageList, to_image_list
from ..backbone import build_backbone
from ..roi_heads.roi_heads import build_roi_heads
from ..rpn.rpn import build_rpn


@functools.lru_cache(maxsize=None)
def _cpu_has_avx512() -> bool:
    return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def _preferred_layout(images: torch.Tensor, training: bool) -> torch.Tensor:
    """Channels-last on GPUs under autocast (tensor-core convolutions) and on the CPU (oneDNN's
    convolutions are faster in it), except for training on CPUs without AVX-512, whose channels-last
    convolution backward is 2.7x slower than in NCHW (AVX2, 3x3 256-channel convolution of a
    2x256x100x136 input: 6.8 s against 2.6 s). The rest of the model follows the images' layout."""
    if images.device.type == "cpu":
        if training and not _cpu_has_avx512():
            return images
        return images.contiguous(memory_format=torch.channels_last)
    if torch.is_autocast_enabled(images.device.type):
        return images.contiguous(memory_format=torch.channels_last)
    return images


def _detector_arguments(cfg: CfgNode) -> Dict[str, nn.Module]:
    backbone = build_backbone(cfg)
    return dict(
        backbone=backbone,
        rpn=build_rpn(cfg, backbone.out_channels),
        roi_heads=build_roi_heads(cfg, backbone.out_channels),
    )


@cfg_constructor(_detector_arguments)
class GeneralizedRCNN(nn.Module):
    """The two-stage detector: features, proposals, then per-proposal heads (see the module docstring
    for what forward takes and returns).

    Arguments:
        backbone: images [N, 3, H, W] -> list of feature maps (one, or one per FPN level, finest
            first); has `out_channels`.
        rpn: (ImageList, features, targets or None) -> (proposals: one BoxList per image in input
            pixels, losses dict); the RPN of modeling/rpn.
        roi_heads: (features, proposals, targets or None) -> (features, detections, losses dict), the
            box head and optional mask / keypoint heads of modeling/roi_heads; empty ([] or None)
            for RPN-only models.

    Build one from a config with `GeneralizedRCNN(cfg)`, as the original, or `from_config(cfg)` (what
    build_detection_model does, after checking the config); the state_dict keys are the original's
    ("backbone.body...", "rpn.head...", "roi_heads.box...").
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: Union[nn.Module, list, None]):
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "GeneralizedRCNN":
        return cls(cfg)

    def forward(
        self,
        images: Union[List[torch.Tensor], torch.Tensor, ImageList],
        targets: Optional[List[BoxList]] = None,
    ) -> Union[Dict[str, torch.Tensor], List[BoxList]]:
        if self.training and targets is None:
            raise ValueError("In training mode, targets should be passed")
        images = to_image_list(images)
        features = self.backbone(_preferred_layout(images.tensors, self.training))
        proposals, proposal_losses = self.rpn(images, features, targets)
        if self.roi_heads:
            x, result, detector_losses = self.roi_heads(features, proposals, targets)
        else:
            # RPN-only: the proposals are the detections.
            result, detector_losses = proposals, {}
        if self.training:
            return {**detector_losses, **proposal_losses}
        return result
