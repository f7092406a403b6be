"""DetectorGraph: a GeneralizedRCNN's inference as one tensor-in, tensors-out module, for export.

    graph = DetectorGraph(model)             # model: built, weights loaded, eval(); shares its modules
    outputs = graph(images, image_sizes)     # a tuple of tensors, names in graph.output_names

Inputs:
- images: float32 [B, 3, H, W], the normalised images zero-padded to a common size: exactly what
  GeneralizedRCNN takes as an ImageList's tensors (docs/DEPLOY.md#pre-processing).
- image_sizes: int64 [B, 2], (height, width) of each image before padding (ImageList.image_sizes).

Outputs (D detections of the whole batch, grouped by image in ascending order; within an image in
the eager model's order: class ascending, then proposal order):
- boxes: float32 [D, 4], (x1, y1, x2, y2) in network-input pixels, inclusive (+1) convention;
- scores: float32 [D]; labels: int64 [D] (contiguous class ids, 0 is the background, never output);
- batch_index: int64 [D], the image of each detection;
- masks (Mask R-CNN): float32 [D, 1, M, M], the mask probabilities of each detection's class (not
  pasted: the caller pastes them, docs/DEPLOY.md#masks);
- keypoint_heatmaps (Keypoint R-CNN): float32 [D, K, S, S], the keypoint logits (the caller decodes
  them, docs/DEPLOY.md#keypoints).

The same modules as the eager model run (backbone, RPN head, each head's layers after its pooler,
predictors); the post-processing between them is deploy/graph_ops.py. Everything is float32.
"""

import copy
from typing import List, Tuple

import torch
from torch import Tensor, nn

from ..modeling.detector.generalized_rcnn import _preferred_layout
from ..modeling.roi_heads.box_head.inference import PostProcessor
from ..modeling.rpn.inference import RPNPostProcessor
from . import graph_ops
from .support import check_model_exportable


class _PooledInput(nn.Module):
    """Stands in for a feature extractor's pooler: returns the features pooled before the call."""

    def forward(self, features, pooled: Tensor) -> Tensor:
        return pooled


def _after_pooler(extractor: nn.Module) -> nn.Module:
    """A shallow copy of a RoI feature extractor (same parameters and submodules) whose pooler
    returns its second argument: calling it with (features, pooled) runs the extractor's own forward
    on already pooled RoI features."""
    tail = copy.copy(extractor)
    tail._modules = {**extractor._modules, "pooler": _PooledInput()}
    return tail


class _RoIHead(nn.Module):
    """The layers of one RoI head: pooler, the extractor's layers after it, the predictor."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.pooler = head.feature_extractor.pooler
        self.extractor = _after_pooler(head.feature_extractor)
        self.predictor = head.predictor

    def forward(self, features: List[Tensor], boxes: Tensor, image: Tensor):
        pooled = graph_ops.pool(self.pooler, features, boxes, image)
        return self.predictor(self.extractor(features, pooled))


class DetectorGraph(nn.Module):
    """See the module docstring. `model` is a GeneralizedRCNN (checked by support.check_model_exportable)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        check_model_exportable(model)
        self.backbone = model.backbone
        self.rpn_head = model.rpn.head
        self.anchor_generator = model.rpn.anchor_generator
        self.rpn_post: RPNPostProcessor = model.rpn.box_selector_test
        heads = model.roi_heads
        self.box_head = _RoIHead(heads.box)
        self.box_post: PostProcessor = heads.box.post_processor
        self.mask_head = _RoIHead(heads.mask) if "mask" in heads else None
        self.keypoint_head = _RoIHead(heads.keypoint) if "keypoint" in heads else None
        self.output_names = ["boxes", "scores", "labels", "batch_index"]
        if self.mask_head is not None:
            self.output_names.append("masks")
        if self.keypoint_head is not None:
            self.output_names.append("keypoint_heatmaps")
        self.eval()

    def forward(self, images: Tensor, image_sizes: Tensor) -> Tuple[Tensor, ...]:
        features = self.backbone(_preferred_layout(images, training=False))  # as the eager model
        proposals, proposal_image = self._proposals(features, image_sizes)
        class_logits, box_regression = self.box_head(features, proposals, proposal_image)
        post = self.box_post
        boxes, scores, labels, image = graph_ops.box_detections(
            class_logits,
            box_regression,
            proposals,
            proposal_image,
            image_sizes,
            post.box_coder,
            post.cls_agnostic_bbox_reg,
            post.score_thresh,
            post.nms,
            post.detections_per_img,
        )
        outputs = [boxes, scores, labels, image]
        if self.mask_head is not None:
            mask_logits = self.mask_head(features, boxes, image)
            # MaskPostProcessor: the channel of each detection's class, NaN logits as probability 0.
            mask_prob = mask_logits.float().sigmoid()
            mask_prob = mask_prob[torch.arange(mask_prob.shape[0], device=labels.device), labels][:, None]
            outputs.append(torch.nan_to_num(mask_prob, nan=0.0))
        if self.keypoint_head is not None:
            outputs.append(self.keypoint_head(features, boxes, image).float())
        return tuple(outputs)

    def _proposals(self, features: List[Tensor], image_sizes: Tensor) -> Tuple[Tensor, Tensor]:
        objectness, box_regression = self.rpn_head(features)
        grid_sizes = [tuple(f.shape[-2:]) for f in features]
        anchors = self.anchor_generator.grid_anchors(grid_sizes)
        post = self.rpn_post
        candidates = [
            graph_ops.top_candidates(a, o, r, post.pre_nms_top_n, post.box_coder)
            for a, o, r in zip(anchors, objectness, box_regression)
        ]
        boxes, _, image = graph_ops.select_proposals(
            candidates,
            image_sizes,
            post.min_size,
            post.nms_thresh,
            post.post_nms_top_n,
            post.fpn_post_nms_top_n,
        )
        return boxes, image
