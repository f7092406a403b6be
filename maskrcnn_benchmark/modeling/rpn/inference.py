"""Turn RPN outputs into proposals (RPNPostProcessor).

The selection (top PRE_NMS_TOP_N, decode, clip, MIN_SIZE, NMS, POST_NMS_TOP_N, FPN_POST_NMS_TOP_N)
and the order of each image's proposals are the original's: docs/CONVENTIONS.md#rpn-proposals.

The whole batch is processed at once: every (image, level) pair is one group of a single batched
NMS, and the per-group and per-image limits are ranks computed on the device. Three values are read
on the host per call (the number of valid boxes, NMS's output, the proposals per image) instead of
two per image and level.

Degenerate inputs (a diverged model, NaN pixels): NaN objectness ranks last in the top-k and is
then dropped with the small boxes, as are boxes with a NaN coordinate (+-inf ones are clipped into
the image first), so every proposal is finite. An image may end with no proposal at all: it gets
an empty BoxList with the "objectness" field. Finite inputs give the same proposals as before.
"""

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ...layers.nms import batched_nms
from ...structures.bounding_box import BoxList
from ...structures.boxlist_ops import boxes_large_enough, cat_boxlist
from ..box_coder import BoxCoder
from ..utils import nonzero_per_image, order_by_group_then_score, rank_within_sorted_groups
from .utils import permute_and_flatten


def _clip(boxes: torch.Tensor, image_sizes: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """Boxes [N, K, 4] xyxy clamped to [0, w-1] x [0, h-1] of their image (size (w, h)); NaN stays."""
    upper = boxes.new_empty(len(image_sizes), 1, 4)
    for i, (w, h) in enumerate(image_sizes):  # scalar fills: no host->device copy, no sync
        upper[i, :, 0::2] = w - 1
        upper[i, :, 1::2] = h - 1
    return torch.minimum(boxes.clamp(min=0), upper)


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

    def top_candidates(
        self, anchors: Sequence[BoxList], objectness: torch.Tensor, box_regression: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One level: anchors, one BoxList per image; objectness [N, A, H, W]; box_regression
        [N, A*4, H, W]. Returns the PRE_NMS_TOP_N decoded boxes [N, k, 4] (not clipped) and their
        scores [N, k], highest first (NaN scores as -inf)."""
        N, A, H, W = objectness.shape
        objectness = permute_and_flatten(objectness, N, A, 1, H, W).view(N, -1).float().sigmoid()
        # topk ranks NaN above everything: make it -inf so that it ranks last (dropped later).
        objectness = objectness.masked_fill(torch.isnan(objectness), float("-inf"))
        box_regression = permute_and_flatten(box_regression, N, A, 4, H, W).float()

        pre_nms_top_n = min(self.pre_nms_top_n, A * H * W)
        objectness, topk_idx = objectness.topk(pre_nms_top_n, dim=1, sorted=True)
        batch_idx = torch.arange(N, device=objectness.device)[:, None]
        box_regression = box_regression[batch_idx, topk_idx]
        concat_anchors = torch.cat([a.bbox for a in anchors], dim=0).reshape(N, -1, 4)[batch_idx, topk_idx]
        proposals = self.box_coder.decode(box_regression.reshape(-1, 4), concat_anchors.reshape(-1, 4))
        return proposals.view(N, -1, 4), objectness

    def proposals(
        self,
        anchors: Sequence[Sequence[BoxList]],
        objectness: Sequence[torch.Tensor],
        box_regression: Sequence[torch.Tensor],
        merge_levels: bool,
    ) -> List[BoxList]:
        """anchors: per level, one BoxList per image; objectness/box_regression: per level. One
        BoxList per image (field "objectness"); with `merge_levels` the FPN_POST_NMS_TOP_N rule."""
        candidates = [self.top_candidates(a, o, b) for a, o, b in zip(anchors, objectness, box_regression)]
        image_sizes = [tuple(a.size) for a in anchors[0]]
        num_images, num_levels = len(image_sizes), len(candidates)
        device = candidates[0][0].device
        boxes = _clip(torch.cat([c[0] for c in candidates], dim=1), image_sizes)  # [N, K, 4]
        scores = torch.cat([c[1] for c in candidates], dim=1)  # [N, K]
        per_image = boxes.shape[1]
        level = torch.cat([torch.full((c[1].shape[1],), i, device=device) for i, c in enumerate(candidates)])
        group = torch.arange(num_images, device=device)[:, None] * num_levels + level  # (image, level)

        valid = boxes_large_enough(boxes, self.min_size) & torch.isfinite(scores)
        boxes, scores, group = boxes.view(-1, 4), scores.view(-1), group.view(-1)
        kept = torch.nonzero(valid.view(-1)).squeeze(1)  # host read 1: how many are valid
        if self.nms_thresh > 0:
            # Host read 2. Kept indices come by group, then index: highest score first in a group.
            kept = kept[batched_nms(boxes[kept], scores[kept], group[kept], self.nms_thresh)]
            in_limit = rank_within_sorted_groups(group[kept]) < self.post_nms_top_n
        else:  # the original skipped NMS and its POST_NMS_TOP_N limit
            in_limit = torch.ones_like(kept, dtype=torch.bool)
        image = kept // per_image
        if merge_levels:
            order, chosen = self.select_top_n(scores[kept], image, in_limit)
            kept, image = kept[order], image[order]
        else:
            chosen = in_limit
        return self._per_image(boxes, scores, kept, image, chosen, image_sizes)

    def select_top_n(
        self, scores: torch.Tensor, image: torch.Tensor, candidate: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The FPN_POST_NMS_TOP_N rule over M boxes (ascending `image` [M]) of which `candidate` [M]
        may be chosen. Returns (order [M], chosen [M] in that order): per image by descending
        score, or over the whole batch keeping the input order (training, FPN_POST_NMS_PER_BATCH)."""
        scores = scores.masked_fill(~candidate, float("-inf"))  # non-candidates rank last
        top_n = min(self.fpn_post_nms_top_n, len(scores))
        if self.training and self.fpn_post_nms_per_batch:
            top = torch.zeros_like(candidate).scatter_(0, scores.topk(top_n, sorted=False).indices, True)
            return torch.arange(len(scores), device=scores.device), top & candidate
        order = order_by_group_then_score(scores, image)
        return order, candidate[order] & (rank_within_sorted_groups(image[order]) < top_n)

    @staticmethod
    def _per_image(
        boxes: torch.Tensor,
        scores: torch.Tensor,
        kept: torch.Tensor,
        image: torch.Tensor,
        chosen: torch.Tensor,
        image_sizes: Sequence[Tuple[int, int]],
    ) -> List[BoxList]:
        """Cut the chosen `kept` rows of flat boxes [M, 4] / scores [M] into one BoxList per image
        (`image` [len(kept)] ascending), keeping their order. Host read 3: the counts per image."""
        result = []
        for chosen_per_image, size in zip(nonzero_per_image(chosen, image, len(image_sizes)), image_sizes):
            rows_per_image = kept[chosen_per_image]
            boxlist = BoxList(boxes[rows_per_image], size, mode="xyxy")
            boxlist.add_field("objectness", scores[rows_per_image])
            result.append(boxlist)
        return result

    def forward_for_single_feature_map(
        self, anchors: Sequence[BoxList], objectness: torch.Tensor, box_regression: torch.Tensor
    ) -> List[BoxList]:
        """anchors: one BoxList per image for this level; objectness [N, A, H, W]; box_regression
        [N, A*4, H, W]. Returns per image a BoxList with field "objectness" (sorted descending)."""
        return self.proposals([anchors], [objectness], [box_regression], merge_levels=False)

    def select_over_all_levels(self, boxlists: List[BoxList]) -> List[BoxList]:
        """The FPN_POST_NMS_TOP_N rule on one BoxList per image (field "objectness")."""
        boxes = torch.cat([b.convert("xyxy").bbox for b in boxlists])
        scores = torch.cat([b.get_field("objectness") for b in boxlists])
        image = torch.cat([torch.full((len(b),), i, device=boxes.device) for i, b in enumerate(boxlists)])
        order, chosen = self.select_top_n(scores, image, torch.ones_like(scores, dtype=torch.bool))
        return self._per_image(boxes, scores, order, image[order], chosen, [b.size for b in boxlists])

    def forward(
        self,
        anchors: Sequence[Sequence[BoxList]],
        objectness: Sequence[torch.Tensor],
        box_regression: Sequence[torch.Tensor],
        targets: Optional[Sequence[BoxList]] = None,
    ) -> List[BoxList]:
        """anchors: per image, per level; objectness/box_regression: per level. One BoxList of
        proposals per image, field "objectness"."""
        per_level_anchors = list(zip(*anchors))
        boxlists = self.proposals(per_level_anchors, objectness, box_regression, merge_levels=len(objectness) > 1)
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
