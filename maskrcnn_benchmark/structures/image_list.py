"""`ImageList`: a zero-padded batch of images of different sizes plus each image's own size."""

import math
from typing import Any, Sequence, Union

import torch


class ImageList(object):
    """A batch of images padded to a common size.

    Attributes:
        tensors: `[B, C, H_pad, W_pad]` tensor.
        image_sizes: one `torch.Size([h, w])` (height first) per image: its size before padding.
    """

    def __init__(self, tensors: torch.Tensor, image_sizes: Sequence[Any]) -> None:
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, *args: Any, **kwargs: Any) -> "ImageList":
        """`tensors.to(*args, **kwargs)` with the same image sizes."""
        return ImageList(self.tensors.to(*args, **kwargs), self.image_sizes)


def _pad_batch(images: Sequence[torch.Tensor], size_divisible: int) -> ImageList:
    if len(images) == 0:
        raise ValueError("to_image_list needs at least one image")
    for i, img in enumerate(images):
        if not isinstance(img, torch.Tensor) or img.dim() != 3:
            raise ValueError(
                "to_image_list: image {} should be a [C, H, W] tensor, got {}".format(
                    i, tuple(img.shape) if isinstance(img, torch.Tensor) else type(img)
                )
            )
    max_size = [max(s) for s in zip(*[img.shape for img in images])]
    if size_divisible > 0:
        stride = size_divisible
        max_size[1] = int(math.ceil(max_size[1] / stride) * stride)
        max_size[2] = int(math.ceil(max_size[2] / stride) * stride)
    batched = images[0].new_zeros((len(images),) + tuple(max_size))
    for img, pad_img in zip(images, batched):
        pad_img[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
    return ImageList(batched, [img.shape[-2:] for img in images])


def to_image_list(
    tensors: Union[ImageList, torch.Tensor, Sequence[torch.Tensor]], size_divisible: int = 0
) -> ImageList:
    """Batch images into an ImageList.

    - an ImageList is returned as is;
    - a `[C, H, W]` or `[B, C, H, W]` tensor is used as the batch (every image of size `(H, W)`);
      with `size_divisible > 0` it is zero-padded so H and W are multiples of it;
    - a list/tuple of `[C, H, W]` tensors is zero-padded to the largest H and W (and channel count),
      each rounded up to a multiple of `size_divisible` when it is > 0.

    `image_sizes` holds `torch.Size([h, w])` per image. TypeError for any other input.
    """
    if isinstance(tensors, ImageList):
        return tensors
    if isinstance(tensors, torch.Tensor):
        if tensors.dim() == 3:
            tensors = tensors[None]
        if tensors.dim() != 4:
            raise ValueError(
                "to_image_list: a tensor should be [C, H, W] or [B, C, H, W], got shape {}".format(tuple(tensors.shape))
            )
        if size_divisible > 0:
            return _pad_batch(list(tensors.unbind(0)), size_divisible)
        return ImageList(tensors, [t.shape[-2:] for t in tensors])
    if isinstance(tensors, (tuple, list)):
        return _pad_batch(tensors, size_divisible)
    raise TypeError("Unsupported type for to_image_list: {}".format(type(tensors)))
