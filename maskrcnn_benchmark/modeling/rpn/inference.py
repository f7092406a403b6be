"""Turn RPN outputs into proposals (RPNPostProcessor).

Per image and level: sigmoid scores, top PRE_NMS_TOP_N, decode against the anchors, clip to the
image, drop boxes smaller than MIN_SIZE, NMS at NMS_THRESH keeping POST_NMS_TOP_N. With several
levels (FPN) the levels are merged and FPN_POST_NMS_TOP_N proposals kept: over the whole batch in
training when FPN_POST_NMS_PER_BATCH (the original's default), else per image. In training the
ground-truth boxes are appended to the proposals (objectness 1).

Degenerate inputs (a diverged model, NaN pixels): NaN objectness ranks last in the top-k and is
then dropped with the small boxes, as are boxes with a NaN coordinate (+-inf ones are clipped into
the image first), so every proposal is finite. An image may end with no proposal at all: it gets
an empty BoxList with the "objectness" field. Finite inputs give the same proposals as before.
"""
from typing import List, Optional, Sequence

import torch
from torch import nn

from ...structures.bounding_box import BoxList
from ...structures.boxlist_ops import boxlist_nms, cat_boxlist, large_enough
from ..box_coder import BoxCoder
from .utils import permute_and_flatten


def _keep_valid_proposals(boxlist: BoxList, min_size: float) -> BoxList:
    """The boxes at least `min_size` wide and high (+1 convention, as remove_small_boxes) with a
    finite objectness. One mask, one index: the same host synchronisation as remove_small_boxes. A
    NaN coordinate fails the size comparisons, so such boxes go too.
    """
    keep = large_enough(boxlist, min_size) & torch.isfinite(boxlist.get_field("objectness"))
    return boxlist[torch.nonzero(keep).squeeze(1)]


class RPNPostProcessor(nn.Module):
    def __init__(
        self,
        pre_nms_top_n: int,
        post_nms_top_n: int,
        nms_thresh: float,
        min_size: float,
        box_coder: Optional[BoxCoder] = None,
        fpn_post_nms_top_n: Optional[int] = None,
        fpn_post_nms_per_batch: bool = True,
    ):
        super().__init__()
        self.pre_nms_top_n = pre_nms_top_n
        self.post_nms_top_n = post_nms_top_n
        self.nms_thresh = nms_thresh
        self.min_size = min_size
        self.box_coder = box_coder or BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.fpn_post_nms_top_n = post_nms_top_n if fpn_post_nms_top_n is None else fpn_post_nms_top_n
        self.fpn_post_nms_per_batch = fpn_post_nms_per_batch

    def add_gt_proposals(self, proposals: List[BoxList], targets: Sequence[BoxList]) -> List[BoxList]:
        merged = []
        for proposal, target in zip(proposals, targets):
            gt_box = target.copy_with_fields([])
            gt_box.add_field("objectness", torch.ones(len(gt_box), device=proposal.bbox.device))
            merged.append(cat_boxlist((proposal, gt_box.to(proposal.bbox.device))))
        return merged

    def forward_for_single_feature_map(
        self, anchors: Sequence[BoxList], objectness: torch.Tensor, box_regression: torch.Tensor
    ) -> List[BoxList]:
        """anchors: one BoxList per image for this level; objectness [N, A, H, W]; box_regression
        [N, A*4, H, W]. Returns per image a BoxList with field "objectness" (sorted descending)."""
        N, A, H, W = objectness.shape
        objectness = permute_and_flatten(objectness, N, A, 1, H, W).view(N, -1).float().sigmoid()
        # topk ranks NaN above everything: make it -inf so that it ranks last (dropped below).
        objectness = objectness.masked_fill(torch.isnan(objectness), float("-inf"))
        box_regression = permute_and_flatten(box_regression, N, A, 4, H, W).float()

        pre_nms_top_n = min(self.pre_nms_top_n, A * H * W)
        objectness, topk_idx = objectness.topk(pre_nms_top_n, dim=1, sorted=True)
        batch_idx = torch.arange(N, device=objectness.device)[:, None]
        box_regression = box_regression[batch_idx, topk_idx]
        concat_anchors = torch.cat([a.bbox for a in anchors], dim=0).reshape(N, -1, 4)[batch_idx, topk_idx]
        proposals = self.box_coder.decode(box_regression.reshape(-1, 4), concat_anchors.reshape(-1, 4)).view(N, -1, 4)

        result = []
        for proposal, score, anchors_per_image in zip(proposals, objectness, anchors):
            boxlist = BoxList(proposal, anchors_per_image.size, mode="xyxy")
            boxlist.add_field("objectness", score)
            boxlist = boxlist.clip_to_image(remove_empty=False)
            boxlist = _keep_valid_proposals(boxlist, self.min_size)
            result.append(boxlist_nms(boxlist, self.nms_thresh, self.post_nms_top_n, score_field="objectness"))
        return result

    def select_over_all_levels(self, boxlists: List[BoxList]) -> List[BoxList]:
        if self.training and self.fpn_post_nms_per_batch:
            # Top-N over the whole batch (Detectron's behaviour); keeps each image's level order.
            objectness = torch.cat([b.get_field("objectness") for b in boxlists])
            top_n = min(self.fpn_post_nms_top_n, len(objectness))
            keep = torch.zeros_like(objectness, dtype=torch.bool)
            keep[torch.topk(objectness, top_n, dim=0, sorted=True).indices] = True
            return [b[k] for b, k in zip(boxlists, keep.split([len(b) for b in boxlists]))]
        selected = []
        for boxlist in boxlists:
            objectness = boxlist.get_field("objectness")
            top_n = min(self.fpn_post_nms_top_n, len(objectness))
            selected.append(boxlist[torch.topk(objectness, top_n, dim=0, sorted=True).indices])
        return selected

    def forward(
        self,
        anchors: Sequence[Sequence[BoxList]],
        objectness: Sequence[torch.Tensor],
        box_regression: Sequence[torch.Tensor],
        targets: Optional[Sequence[BoxList]] = None,
    ) -> List[BoxList]:
        """anchors: per image, per level; objectness/box_regression: per level. One BoxList of
        proposals per image, field "objectness"."""
        per_level = [
            self.forward_for_single_feature_map(a, o, b)
            for a, o, b in zip(zip(*anchors), objectness, box_regression)
        ]
        boxlists = [cat_boxlist(list(per_image)) for per_image in zip(*per_level)]
        if len(objectness) > 1:
            boxlists = self.select_over_all_levels(boxlists)
        if self.training and targets is not None:
            boxlists = self.add_gt_proposals(boxlists, targets)
        return boxlists


def make_rpn_postprocessor(config, rpn_box_coder: BoxCoder, is_train: bool) -> RPNPostProcessor:
    rpn = config.MODEL.RPN
    return RPNPostProcessor(
        pre_nms_top_n=rpn.PRE_NMS_TOP_N_TRAIN if is_train else rpn.PRE_NMS_TOP_N_TEST,
        post_nms_top_n=rpn.POST_NMS_TOP_N_TRAIN if is_train else rpn.POST_NMS_TOP_N_TEST,
        nms_thresh=rpn.NMS_THRESH,
        min_size=rpn.MIN_SIZE,
        box_coder=rpn_box_coder,
        fpn_post_nms_top_n=rpn.FPN_POST_NMS_TOP_N_TRAIN if is_train else rpn.FPN_POST_NMS_TOP_N_TEST,
        fpn_post_nms_per_batch=rpn.FPN_POST_NMS_PER_BATCH,
    )
