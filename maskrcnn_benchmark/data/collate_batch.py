"""Batch collation: pad images into one tensor, keep targets and indices as tuples."""

from typing import Sequence, Tuple

from ..structures.image_list import ImageList, to_image_list


class BatchCollator:
    """[(image, target, idx), ...] -> (ImageList padded to a multiple of size_divisible, targets
    tuple, indices tuple)."""

    def __init__(self, size_divisible: int = 0):
        self.size_divisible = size_divisible

    def __call__(self, batch: Sequence) -> Tuple[ImageList, tuple, tuple]:
        images, targets, img_ids = tuple(zip(*batch))
        return to_image_list(images, self.size_divisible), targets, img_ids


class BBoxAugCollator:
    """For test-time augmentation: images stay a list (each augmentation batches them itself)."""

    def __call__(self, batch: Sequence):
        return list(zip(*batch))
