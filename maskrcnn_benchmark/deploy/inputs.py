"""Pre-processing for an exported detector: images -> the graph's (images, image_sizes) inputs.

The steps are the Predictor's (engine/predictor.py), i.e. the dataset's test transform, so that the
exported graph sees the tensors the eager model sees (docs/DEPLOY.md#pre-processing):
1. any accepted image (engine/predictor_inputs.py: BGR numpy, PIL, RGB tensor) -> RGB PIL image;
2. resize so the short side is INPUT.MIN_SIZE_TEST unless the long side would exceed
   INPUT.MAX_SIZE_TEST (PIL bilinear, engine/../data/transforms Resize's rounding);
3. to a float tensor [3, h, w]: with INPUT.TO_BGR255, BGR order in 0..255, else RGB in 0..1;
   minus INPUT.PIXEL_MEAN, divided by INPUT.PIXEL_STD;
4. zero-pad the batch at the bottom and right to a common size: the largest h and w rounded up to
   DATALOADER.SIZE_DIVISIBILITY (dynamic-size exports), or exactly the exported size (fixed-size
   exports; results then equal the eager model's on that same padded batch).
"""

import math
from typing import Any, List, Optional, Sequence, Tuple

import torch

from ..engine.predictor_inputs import to_rgb_pil


def preprocess(transform: Any, image: Any, name: str = "image") -> Tuple[torch.Tensor, Tuple[int, int]]:
    """One image -> (normalised network input [3, h, w] float32, original (width, height))."""
    pil = to_rgb_pil(image, name)
    return transform(pil)[0], pil.size


def padded_size(height: int, width: int, size_divisibility: int) -> Tuple[int, int]:
    """(height, width) rounded up to multiples of size_divisibility (unchanged when it is <= 0)."""
    if size_divisibility > 0:
        return (
            math.ceil(height / size_divisibility) * size_divisibility,
            math.ceil(width / size_divisibility) * size_divisibility,
        )
    return height, width


def batch(
    tensors: Sequence[torch.Tensor], size_divisibility: int, fixed_size: Optional[Tuple[int, int]] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """[3, h_i, w_i] tensors -> (images [B, 3, H, W] float32 zero-padded, image_sizes [B, 2] int64 (h_i, w_i)).

    H, W: `fixed_size` if given (ValueError for a larger image), else the largest h and w rounded up
    to size_divisibility (as structures.image_list.to_image_list)."""
    sizes: List[Tuple[int, int]] = [(int(t.shape[1]), int(t.shape[2])) for t in tensors]
    if fixed_size is not None:
        height, width = fixed_size
        too_big = [s for s in sizes if s[0] > height or s[1] > width]
        if too_big:
            raise ValueError(
                f"the file was exported for {height}x{width} inputs, but a resized image is {too_big[0][0]}x"
                f"{too_big[0][1]} (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST): export with a larger --image-size or dynamic"
            )
    else:
        height, width = padded_size(max(s[0] for s in sizes), max(s[1] for s in sizes), size_divisibility)
    images = torch.zeros((len(tensors), 3, height, width), dtype=torch.float32)
    for image, tensor in zip(images, tensors):
        image[:, : tensor.shape[1], : tensor.shape[2]].copy_(tensor)
    return images, torch.tensor(sizes, dtype=torch.int64).reshape(-1, 2)
