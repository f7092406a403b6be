"""COCO run-length encoding of pasted masks, batched, without image-sized masks.

A COCO RLE lists the lengths of alternating runs of 0s and 1s over the image's pixels in column-major
order (index `x * H + y`), starting with 0s; pycocotools stores it as a string (`counts`). Here the runs
come from where each column of a mask changes value, found for all masks of an image together, and
only inside each mask's pasted region (paste.py): what lies outside is 0. The strings are written with
pycocotools' code (each count, minus the count two before it from the fourth on, in 5-bit groups
with a continuation bit, plus 48), so they equal `pycocotools.mask.encode`'s; areas and boxes equal
`pycocotools.mask.area` and `toBbox` of them (tests/data/datasets/evaluation/coco/test_rle.py).
"""

from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import torch

from .....modeling.roi_heads.mask_head.paste import paste_layout, resized_groups


class EncodedMasks(NamedTuple):
    """N masks of one H x W image: `counts[k]` is the compressed RLE string of mask k, `areas[k]` its
    pixel count (int64), `boxes[k]` pycocotools' toBbox of it ([x, y, w, h], float64)."""

    counts: List[str]
    areas: np.ndarray
    boxes: np.ndarray
    height: int
    width: int

    def rles(self) -> List[Dict[str, Any]]:
        """The masks as COCO RLE dicts {"size": [H, W], "counts": str}, as results json holds them."""
        size = [self.height, self.width]
        return [{"size": size, "counts": c} for c in self.counts]


def _runs(
    parts: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], height: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge per-part (mask ids, global change positions, kinds) into sorted runs (ids, starts, ends)."""
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    pos = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")  # each mask's changes are already in pixel order
    ids, pos = ids[order], pos[order]
    starts, ends, run_ids = pos[0::2], pos[1::2], ids[0::2]
    # A run reaching the bottom of a column goes on at the top of the next one when the mask has a 1
    # there (masks spanning the image's height): one run for pycocotools, so join them.
    join = (ends[:-1] == starts[1:]) & (run_ids[:-1] == run_ids[1:])
    if join.any():
        keep_start = np.concatenate([[True], ~join])
        keep_end = np.concatenate([~join, [True]])
        starts, ends, run_ids = starts[keep_start], ends[keep_end], run_ids[keep_start]
    return run_ids, starts, ends


def _counts(run_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, n: int, total: int):
    """(counts of all masks concatenated, number of counts of each mask) from their runs of 1s."""
    runs_per_mask = np.bincount(run_ids, minlength=n)
    # Per mask: [0, s0, e0, s1, e1, ..., total]; its consecutive differences are the counts.
    values = np.concatenate([np.zeros(n, np.int64), np.stack([starts, ends], 1).reshape(-1), np.full(n, total)])
    owner = np.concatenate([np.arange(n), np.repeat(run_ids, 2), np.arange(n)])
    rank = np.concatenate([np.zeros(n, np.int8), np.ones(2 * len(starts), np.int8), np.full(n, 2, np.int8)])
    order = np.lexsort((rank, owner))
    values, owner = values[order], owner[order]
    counts = np.diff(values)
    same = owner[1:] == owner[:-1]
    counts, count_owner = counts[same], owner[1:][same]
    lengths = 2 * runs_per_mask + 1
    # pycocotools has no trailing count of 0s when a mask ends with a 1.
    last = np.cumsum(lengths) - 1
    drop = last[counts[last] == 0]
    if drop.size:
        counts = np.delete(counts, drop)
        lengths = lengths - np.isin(np.arange(n), count_owner[drop])
    return counts, lengths


def _strings(counts: np.ndarray, lengths: np.ndarray) -> List[str]:
    """pycocotools' compressed strings of the concatenated counts (split by `lengths`)."""
    first = np.cumsum(lengths) - lengths
    index = np.arange(counts.size) - np.repeat(first, lengths)
    x = counts.astype(np.int64)
    later = np.flatnonzero(index > 2)
    x[later] -= counts[later - 2]
    chars = np.empty((x.size, 7), dtype=np.uint8)  # 32-bit counts: at most 7 groups of 5 bits
    used = np.ones(x.size, dtype=np.int64)
    todo = np.arange(x.size)
    for k in range(7):  # most counts need one or two characters: go on with the others only
        c = x & 0x1F
        x = x >> 5  # arithmetic shift: negative differences end at -1
        more = np.where(c & 0x10, x != -1, x != 0)
        chars[todo, k] = (c | (more.astype(np.int64) << 5)) + 48
        if not more.any():
            break
        todo, x = todo[more], x[more]
        used[todo] += 1
    text = chars[np.arange(7) < used[:, None]].tobytes().decode("ascii")
    bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(used, first))]).tolist()
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _boxes(run_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, n: int, height: int) -> np.ndarray:
    """pycocotools' toBbox: the columns and rows of the first and last pixel of every run of 1s; a run
    over several columns spans all rows."""
    boxes = np.zeros((n, 4), dtype=np.float64)
    if run_ids.size == 0:
        return boxes
    x0, y0 = np.divmod(starts, height)
    x1, y1 = np.divmod(ends - 1, height)
    y0 = np.where(x1 > x0, 0, y0)
    y1 = np.where(x1 > x0, height - 1, y1)
    has = np.bincount(run_ids, minlength=n) > 0
    xs, ys = np.full(n, np.iinfo(np.int64).max), np.full(n, np.iinfo(np.int64).max)
    xe, ye = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.minimum.at(xs, run_ids, x0)
    np.minimum.at(ys, run_ids, np.minimum(y0, y1))
    np.maximum.at(xe, run_ids, x1)
    np.maximum.at(ye, run_ids, np.maximum(y0, y1))
    boxes[has] = np.stack([xs, ys, xe - xs + 1, ye - ys + 1], 1)[has]
    return boxes


def _finish(parts, n: int, height: int, width: int) -> EncodedMasks:
    run_ids, starts, ends = _runs(parts, height)
    counts, lengths = _counts(run_ids, starts, ends, n, height * width)
    areas = np.bincount(run_ids, weights=ends - starts, minlength=n).astype(np.int64)
    return EncodedMasks(_strings(counts, lengths), areas, _boxes(run_ids, starts, ends, n, height), height, width)


def _changes(
    flat: np.ndarray,
    blocks: np.ndarray,
    heights: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    ids: np.ndarray,
    image_height: int,
) -> Tuple[np.ndarray, np.ndarray]:
    """(mask ids, image positions) of the value changes of masks stored one after the other in the
    bool array `flat`, mask k as `blocks[k]` values: its columns top to bottom, each `heights[k]` rows
    followed by a 0, its top-left pixel at (x0[k], y0[k]) in the image. Per mask, in pixel order,
    alternately the first 1 of a run and the first 0 after it."""
    starts = np.cumsum(blocks) - blocks
    pos = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat.size and flat[0]:
        pos = np.concatenate([[0], pos])
    mask = np.searchsorted(starts, pos, "right") - 1
    column, row = np.divmod(pos - starts[mask], heights[mask] + 1)
    return ids[mask], (x0[mask] + column) * image_height + y0[mask] + row


def encode_binary_masks(masks: torch.Tensor) -> EncodedMasks:
    """[N, H, W] (bool or 0/1) masks of one image -> their RLEs (pycocotools.mask.encode's strings)."""
    n, height, width = masks.shape
    if n == 0 or height == 0 or width == 0:
        return _finish([], n, height, width)
    buf = np.zeros((n, width, height + 1), dtype=bool)  # column-major, a 0 after each column
    buf[:, :, :height] = masks.detach().cpu().numpy().astype(bool, copy=False).transpose(0, 2, 1)
    zeros = np.zeros(n, np.int64)
    changes = _changes(
        buf.reshape(-1), np.full(n, width * (height + 1)), np.full(n, height), zeros, zeros, np.arange(n), height
    )
    return _finish([changes], n, height, width)


def encode_pasted_masks(
    masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int, thresh: float = 0.5, padding: int = 1
) -> EncodedMasks:
    """The RLEs of `[N, M, M]` probabilities pasted into an H x W image at [N, 4] xyxy `boxes`, equal to
    encoding `Masker(thresh, padding)`'s full-size masks (docs/CONVENTIONS.md#mask-pasting).

    Each mask is resized by F.interpolate (one call per size, paste.py); only its part inside the image
    is copied, column-major, into one buffer for all masks, which one pass scans for changes."""
    layout = paste_layout(boxes, masks.shape[-1], height, width, padding)
    regions, offsets = layout.regions, layout.offsets
    rows, cols = regions[:, 3] - regions[:, 1], regions[:, 2] - regions[:, 0]
    blocks = cols * (rows + 1)
    starts = np.concatenate([[0], np.cumsum(blocks)]).tolist()
    flat = np.zeros(starts[-1], dtype=bool)
    # groups whose masks all lie inside the image: one copy each
    whole = (rows == layout.sizes[:, 0]) & (cols == layout.sizes[:, 1])
    whole_group = np.logical_and.reduceat(whole, [a for a, _ in layout.groups]).tolist() if len(whole) else []
    for (a, b, resized), all_inside in zip(resized_groups(masks, layout, padding), whole_group):
        binary = (resized.cpu().numpy() > thresh).transpose(0, 2, 1)  # NaN compares False, as in the Masker
        rw, rh = binary.shape[1:]
        if all_inside:
            flat[starts[a] : starts[b]].reshape(b - a, rw, rh + 1)[:, :, :rh] = binary
            continue
        for j in range(a, b):  # some clipped at the image border: only the part inside
            (ox, oy), h, w = offsets[j].tolist(), int(rows[j]), int(cols[j])
            flat[starts[j] : starts[j + 1]].reshape(w, h + 1)[:, :h] = binary[j - a, ox : ox + w, oy : oy + h]
    changes = _changes(flat, blocks, rows, regions[:, 0], regions[:, 1], layout.index, height)
    return _finish([changes], masks.shape[0], height, width)
