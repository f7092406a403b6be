"""Operations on `BoxList`s: NMS, small-box removal, pairwise IoU, concatenation.

All use the original's inclusive-pixel convention: a box `(x1, y1, x2, y2)` is
`(x2 - x1 + 1) x (y2 - y1 + 1)` pixels.
"""

from typing import Any, List, Sequence

import torch

from .bounding_box import BoxList

_TO_REMOVE = 1


def _compiled_nms():
    """The project's NMS op (`maskrcnn_benchmark.layers.nms`), imported on first use so that the
    structures package imports without the compiled extension."""
    from maskrcnn_benchmark.layers import nms

    if not callable(nms):  # the submodule `layers/nms.py`, when the package does not re-export it
        nms = nms.nms
    return nms


def boxlist_nms(boxlist: BoxList, nms_thresh: float, max_proposals: int = -1, score_field: str = "scores") -> BoxList:
    """Greedy non-maximum suppression on the boxes of one BoxList (docs/CONVENTIONS.md#nms).

    Arguments:
        boxlist: N boxes with a `[N]` score field.
        nms_thresh: IoU threshold; `<= 0` returns `boxlist` unchanged.
        max_proposals: if > 0, keep only the first `max_proposals` kept indices (the highest-scoring
            boxes when the input is sorted by descending score, as the RPN's is).
        score_field: name of the score field.

    Returns the kept boxes (every field) in the op's order, in `boxlist`'s mode.
    """
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    score = boxlist.get_field(score_field)
    if len(boxlist) == 0:
        return boxlist.convert(mode)
    keep = _compiled_nms()(boxlist.bbox.detach(), score.detach(), nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode)


def boxes_large_enough(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """[...] bool for xyxy boxes [..., 4]: width and height (`x2 - x1 + 1`, `y2 - y1 + 1`) both
    >= min_size (False for NaN)."""
    ws = boxes[..., 2] - boxes[..., 0] + _TO_REMOVE
    hs = boxes[..., 3] - boxes[..., 1] + _TO_REMOVE
    return (ws >= min_size) & (hs >= min_size)


def large_enough(boxlist: BoxList, min_size: float) -> torch.Tensor:
    """[N] bool: the boxes of `boxlist` that pass `boxes_large_enough`."""
    return boxes_large_enough(boxlist.convert("xyxy").bbox, min_size)


def remove_small_boxes(boxlist: BoxList, min_size: float) -> BoxList:
    """Keep the boxes whose width and height (`x2 - x1 + 1`, `y2 - y1 + 1`) are both >= min_size."""
    return boxlist[torch.nonzero(large_enough(boxlist, min_size)).squeeze(1)]


def boxlist_iou(boxlist1: BoxList, boxlist2: BoxList) -> torch.Tensor:
    """`[N, M]` IoU between the N boxes of `boxlist1` and the M boxes of `boxlist2`.

    Widths, heights and intersections count with +1 (`x2 - x1 + 1`). Both lists must belong to the
    same image size (RuntimeError otherwise).
    """
    if tuple(boxlist1.size) != tuple(boxlist2.size):
        raise RuntimeError("boxlists should have same image size, got {}, {}".format(boxlist1, boxlist2))
    boxlist1 = boxlist1.convert("xyxy")
    boxlist2 = boxlist2.convert("xyxy")
    area1 = boxlist1.area()
    area2 = boxlist2.area()
    box1, box2 = boxlist1.bbox, boxlist2.bbox

    lt = torch.max(box1[:, None, :2], box2[None, :, :2])  # [N, M, 2]
    rb = torch.min(box1[:, None, 2:], box2[None, :, 2:])  # [N, M, 2]
    wh = (rb - lt + _TO_REMOVE).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """`torch.cat` that returns a lone tensor as is (no copy)."""
    assert isinstance(tensors, (list, tuple))
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def _cat_field(name: str, values: List[Any]) -> Any:
    """Concatenate one field over several BoxLists: tensors, SegmentationMask or Keypoints."""
    from .keypoint import Keypoints
    from .segmentation_mask import SegmentationMask

    first = values[0]
    if len(values) == 1:
        return first
    if all(isinstance(v, torch.Tensor) for v in values):
        return torch.cat(values, dim=0)
    if all(isinstance(v, SegmentationMask) for v in values):
        return SegmentationMask.cat(values)
    if all(type(v) is type(first) for v in values) and isinstance(first, Keypoints):
        return type(first).cat(values)
    raise TypeError(
        "cannot concatenate field '{}' of types {}".format(name, sorted({type(v).__name__ for v in values}))
    )


def cat_boxlist(bboxes: Sequence[BoxList]) -> BoxList:
    """Concatenate BoxLists of one image (same size, mode and field names) into one.

    Fields are concatenated too (tensors along dim 0; SegmentationMask and Keypoints fields by
    their instances). ValueError names what differs.
    """
    if not isinstance(bboxes, (list, tuple)):
        raise TypeError("cat_boxlist expects a list or tuple of BoxList, got {}".format(type(bboxes)))
    if len(bboxes) == 0:
        raise ValueError("cat_boxlist needs at least one BoxList")
    for i, bbox in enumerate(bboxes):
        if not isinstance(bbox, BoxList):
            raise TypeError("cat_boxlist: element {} is a {}, not a BoxList".format(i, type(bbox)))

    size, mode = tuple(bboxes[0].size), bboxes[0].mode
    fields = set(bboxes[0].fields())
    for i, bbox in enumerate(bboxes[1:], start=1):
        if tuple(bbox.size) != size:
            raise ValueError(
                "cat_boxlist: image sizes differ: element 0 has {}, element {} has {}".format(size, i, tuple(bbox.size))
            )
        if bbox.mode != mode:
            raise ValueError("cat_boxlist: modes differ: element 0 is {}, element {} is {}".format(mode, i, bbox.mode))
        if set(bbox.fields()) != fields:
            raise ValueError(
                "cat_boxlist: fields differ: element 0 has {}, element {} has {}".format(
                    sorted(fields), i, sorted(bbox.fields())
                )
            )

    cat_boxes = BoxList(_cat([b.bbox for b in bboxes], dim=0), bboxes[0].size, mode)
    for field in bboxes[0].fields():
        cat_boxes.add_field(field, _cat_field(field, [b.get_field(field) for b in bboxes]))
    return cat_boxes
