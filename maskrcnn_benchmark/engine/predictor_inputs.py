"""Turn the image types users hold into the one the test pipeline reads: an RGB PIL image.

Accepted (anything else is a ValueError naming the image and what was expected):
- numpy uint8 [H, W, 3] in **BGR** order (what cv2.imread / cv2.VideoCapture give), or [H, W] grey;
- PIL images in any mode (converted to RGB by data/image_modes.py: alpha dropped, 16-bit scaled);
- torch tensors [3, H, W] in **RGB** order: uint8 0..255, or floating point 0..1 (torchvision's
  to_tensor convention), on any device.

Every input goes through the same PIL image and then the dataset's test transform, so a prediction
does not depend on which of these types held the pixels (float tensors are rounded to 8 bits).
"""

import os
from typing import Any, Tuple

import numpy as np
import torch
from PIL import Image

from ..data.image_modes import to_rgb

EXPECTED = (
    "a numpy uint8 [H, W, 3] BGR array (OpenCV's order) or [H, W] grey array, a PIL image, or a torch "
    "[3, H, W] RGB tensor (uint8 0..255 or float 0..1)"
)


def _describe(image: Any) -> str:
    if isinstance(image, (np.ndarray, torch.Tensor)):
        return f"{type(image).__module__.split('.')[0]} {image.dtype} array of shape {tuple(image.shape)}"
    return type(image).__name__


def _fail(name: str, image: Any, why: str = "") -> ValueError:
    reason = f" ({why})" if why else ""
    return ValueError(f"{name}: expected {EXPECTED}; got a {_describe(image)}{reason}")


def _check_size(name: str, image: Any, height: int, width: int) -> None:
    if height == 0 or width == 0:
        raise _fail(name, image, "the image is empty")


def check_image(image: Any, name: str = "image") -> Tuple[int, int]:
    """(width, height) of an accepted image; ValueError naming `name` ("image 3") otherwise."""
    if isinstance(image, Image.Image):
        _check_size(name, image, image.height, image.width)
        return image.width, image.height
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise _fail(name, image, "numpy images must be uint8; use image.astype(np.uint8) for 0..255 values")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise _fail(name, image, "numpy images are [H, W, 3] (channels last) or [H, W]")
        _check_size(name, image, *image.shape[:2])
        return image.shape[1], image.shape[0]
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            why = "tensors are [3, H, W] (channels first)"
            if image.dim() == 4:
                why += "; pass a batch as a list of images, e.g. list(batch)"
            raise _fail(name, image, why)
        _check_size(name, image, *image.shape[1:])
        if image.is_floating_point():
            pixels = image.detach().float()
            if not torch.isfinite(pixels).all():
                raise _fail(name, image, "it holds NaN or infinite values")
            low, high = pixels.min().item(), pixels.max().item()
            if low < 0.0 or high > 1.0:
                raise _fail(
                    name,
                    image,
                    f"float tensors hold values in 0..1, these range {low:g}..{high:g}; "
                    f"divide 0..255 values by 255 or pass a uint8 tensor",
                )
        elif image.dtype != torch.uint8:
            raise _fail(name, image, "tensors must be uint8 or floating point")
        return image.shape[2], image.shape[1]
    raise _fail(name, image, _type_hint(image))


def _type_hint(image: Any) -> str:
    """Why a common wrong type was passed, and what to do instead."""
    if image is None:
        return "cv2.imread returns None when it cannot read the file: check the path"
    if isinstance(image, (str, os.PathLike)):
        return f"a path is not loaded for you: pass cv2.imread({str(image)!r}) or PIL.Image.open(...)"
    if isinstance(image, (list, tuple)):
        return "nested lists are not images: pass a list of images"
    return ""


def to_rgb_pil(image: Any, name: str = "image") -> Image.Image:
    """`image` (see the module docstring) as an RGB PIL image; `name` labels errors ("image 3")."""
    check_image(image, name)
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else to_rgb(image)
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
        return Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))  # BGR -> RGB
    pixels = image.detach().cpu()
    if pixels.is_floating_point():
        pixels = (pixels.float() * 255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy())
