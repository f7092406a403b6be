"""Any PIL image mode -> 8-bit RGB, without PIL's silent clipping of high-bit-depth images.

PIL's own convert("RGB") clips 16-bit ("I;16", "I") and float ("F") pixels to 255, so a 16-bit PNG
becomes almost white. Here:
- 16-bit and 32-bit integer modes ("I;16", "I;16B", "I;16L", "I;16N", "I") are read as 0..65535
  and scaled to 0..255 (the modes PIL opens 16-bit PNG / TIFF files in);
- "F" (float) pixels are read as 0..255 values, rounded and clipped;
- palette images with transparency go through RGBA (PIL warns otherwise); alpha is dropped;
- every other mode (L, 1, P, LA, RGBA, CMYK, YCbCr...) uses PIL's conversion.
A multi-frame image (GIF, TIFF) gives its current frame (the first one after opening).
"""

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as a new, fully decoded 8-bit RGB image (see the module docstring)."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode != "F":
            pixels = pixels / 257.0  # 65535 -> 255
        grey = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")
