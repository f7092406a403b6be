"""Check a COCO RLE mask without decoding it with pycocotools.

pycocotools trusts its input: counts that do not sum to height*width make it fail with
"Invalid RLE mask representation" (or read out of bounds), and malformed compressed strings are
undefined behaviour in its C decoder. Here the run lengths are decoded with numpy from the string
(or taken from the list) and must be non-negative and sum to exactly height*width; nothing of the
image's size is allocated.

Compressed counts (pycocotools' `rleToString`): each run length, from the fourth on as the
difference to the one two places before, is written as 5-bit groups, least significant first, as
characters '0' + group (+ 32 when another group follows); the last group's bit 16 is the sign.
"""

from typing import Optional, Tuple

import numpy as np

from .coco_problems import SEGM_BAD_RLE, SEGM_EMPTY_RLE

# A run length of an image within MAX_IMAGE_PIXELS = 2**28 (and its difference to another) fits in
# 6 groups (30 bits with the sign); longer values also overflow pycocotools' decoder.
MAX_GROUPS_PER_VALUE = 6

RleResult = Tuple[Optional[Tuple[str, str]], int]  # ((kind, why) or None, the mask's area)


def decode_counts_string(counts: str) -> Tuple[Optional[np.ndarray], str]:
    """The run lengths (int64) of a compressed counts string, or (None, why it is malformed)."""
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        return None, "non-ASCII character in 'counts'"
    groups = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if groups.size == 0:
        return None, "empty 'counts'"
    if ((groups < 0) | (groups > 63)).any():
        return None, "character outside '0'..'o' in 'counts'"
    more = (groups & 0x20) != 0
    if more[-1]:
        return None, "'counts' ends inside a value"
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    sizes = ends - starts + 1
    if sizes.max() > MAX_GROUPS_PER_VALUE:
        return None, f"a value of more than {MAX_GROUPS_PER_VALUE} characters in 'counts'"
    shift = 5 * (np.arange(groups.size) - np.repeat(starts, sizes))
    values = np.add.reduceat((groups & 0x1F) << shift, starts)
    negative = (groups[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * sizes[negative])  # two's complement of 5*k bits
    # Undo the differences: counts[i] = values[i] + counts[i - 2] for i >= 3.
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs, ""


def rle_problem(segm: dict, height: int, width: int) -> RleResult:
    """(None or (kind, why), area) of an RLE segmentation of an image of height x width."""
    size, counts = segm.get("size"), segm.get("counts")
    if not (
        type(size) is list
        and len(size) == 2
        and size[0] == height
        and size[1] == width
        and all(type(v) is int for v in size)
    ):
        return (SEGM_BAD_RLE, f"'size' must be the image's [height, width] = [{height}, {width}]"), 0
    if type(counts) is str:
        runs, why = decode_counts_string(counts)
        if runs is None:
            return (SEGM_BAD_RLE, why), 0
        if (runs < 0).any():
            return (SEGM_BAD_RLE, "'counts' decodes to a negative run length"), 0
        total, area = int(runs.sum()), int(runs[1::2].sum())
    elif type(counts) is list:
        if not {int}.issuperset(map(type, counts)):
            return (SEGM_BAD_RLE, "uncompressed 'counts' must be a list of integers"), 0
        if counts and min(counts) < 0:
            return (SEGM_BAD_RLE, "negative run length in 'counts'"), 0
        total, area = sum(counts), sum(counts[1::2])
    else:
        return (SEGM_BAD_RLE, "'counts' must be a compressed string or a list of run lengths"), 0
    if total != height * width:
        return (SEGM_BAD_RLE, f"the run lengths sum to {total}, not height*width = {height * width}"), 0
    if area <= 0:
        return (SEGM_EMPTY_RLE, "the mask has no pixel"), 0
    return None, area
