"""Box head inference (PostProcessor): class scores + deltas -> final detections per image.

Softmax over classes; every class's box decoded and clipped; per class j >= 1, boxes with score >
SCORE_THRESH go through NMS (threshold NMS); classes are concatenated in class order; if more than
DETECTIONS_PER_IMG remain, those scoring >= the DETECTIONS_PER_IMG-th best score are kept (ties may
keep a few more, as in the original). Output: BoxList in network-input pixels with "scores" and
"labels".

Degenerate inputs: images without proposals (or a batch without any) give empty BoxLists with the
usual fields; (box, class) pairs whose score or decoded box is not finite (a diverged model: NaN
logits or deltas) are never candidates, so no NaN reaches NMS or the output. For finite inputs
this changes nothing.
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ....layers.nms import batched_nms
from ....structures.bounding_box import BoxList
from ...box_coder import BoxCoder


class PostProcessor(nn.Module):
    def __init__(
        self,
        score_thresh: float = 0.05,
        nms: float = 0.5,
        detections_per_img: int = 100,
        box_coder: BoxCoder = None,
        cls_agnostic_bbox_reg: bool = False,
        bbox_aug_enabled: bool = False,
    ):
        super().__init__()
        self.score_thresh = score_thresh
        self.nms = nms
        self.detections_per_img = detections_per_img
        self.box_coder = box_coder or BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.cls_agnostic_bbox_reg = cls_agnostic_bbox_reg
        self.bbox_aug_enabled = bbox_aug_enabled

    def forward(self, x: Tuple[torch.Tensor, torch.Tensor], boxes: Sequence[BoxList]) -> List[BoxList]:
        """x = (class_logits [K, C], box_regression [K, 4C or 8]); boxes: the proposals per image."""
        class_logits, box_regression = x
        class_prob = torch.softmax(class_logits.float(), -1)
        box_regression = box_regression.float()
        boxes_per_image = [len(b) for b in boxes]
        concat_boxes = torch.cat([b.bbox for b in boxes], dim=0)
        if self.cls_agnostic_bbox_reg:
            box_regression = box_regression[:, -4:]
        # flatten(1), not view(K, -1): K may be 0 (no proposals in the whole batch).
        proposals = self.box_coder.decode(box_regression.flatten(1), concat_boxes)
        num_classes = class_prob.shape[1]
        if self.cls_agnostic_bbox_reg:
            proposals = proposals.repeat(1, num_classes)

        results = []
        for prob, boxes_per_img, proposal in zip(
            class_prob.split(boxes_per_image), proposals.split(boxes_per_image), boxes
        ):
            boxlist = BoxList(boxes_per_img.reshape(-1, 4), proposal.size, mode="xyxy")
            boxlist.add_field("scores", prob.reshape(-1))
            boxlist = boxlist.clip_to_image(remove_empty=False)
            if not self.bbox_aug_enabled:
                boxlist = self.filter_results(boxlist, num_classes)
            results.append(boxlist)
        return results

    def filter_results(self, boxlist: BoxList, num_classes: int) -> BoxList:
        """Score threshold, per-class NMS and the per-image limit (see the module docstring)."""
        boxes = boxlist.bbox.reshape(-1, num_classes, 4)
        scores = boxlist.get_field("scores").reshape(-1, num_classes)
        # NaN scores fail the comparison; NaN boxes (clipping maps +-inf into the image, not NaN)
        # are dropped here so that NMS and the output only see finite boxes.
        candidates = (scores > self.score_thresh) & torch.isfinite(boxes).all(dim=2)
        candidates[:, 0] = False  # background
        # Candidates in (box, class) order, so within a class they stay in box order.
        box_idx, labels = torch.nonzero(candidates, as_tuple=True)
        cand_boxes = boxes[box_idx, labels]
        cand_scores = scores[box_idx, labels]
        # One NMS call for all classes; kept indices come back by class, then box order: the
        # original's class-by-class concatenation.
        keep = batched_nms(cand_boxes, cand_scores, labels, self.nms)
        result = BoxList(cand_boxes[keep], boxlist.size, mode="xyxy")
        result.add_field("scores", cand_scores[keep])
        result.add_field("labels", labels[keep])

        num_detections = len(result)
        if num_detections > self.detections_per_img > 0:
            cls_scores = result.get_field("scores")
            image_thresh, _ = torch.kthvalue(cls_scores.cpu(), num_detections - self.detections_per_img + 1)
            result = result[torch.nonzero(cls_scores >= image_thresh.item()).squeeze(1)]
        return result


def make_roi_box_post_processor(cfg) -> PostProcessor:
    heads = cfg.MODEL.ROI_HEADS
    return PostProcessor(
        heads.SCORE_THRESH,
        heads.NMS,
        heads.DETECTIONS_PER_IMG,
        BoxCoder(weights=heads.BBOX_REG_WEIGHTS),
        cfg.MODEL.CLS_AGNOSTIC_BBOX_REG,
        cfg.TEST.BBOX_AUG.ENABLED,
    )
