"""What the Predictor accepts as an image (engine/predictor_inputs.py), without building a model."""

import pathlib

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.engine.predictor_inputs import check_image, to_rgb_pil


@pytest.mark.parametrize(
    "image",
    [
        Image.new("I;16", (7, 5), 40000),
        Image.new("RGBA", (7, 5)),
        Image.new("CMYK", (7, 5)),
        Image.new("P", (7, 5)),
        Image.new("1", (7, 5)),
        Image.new("F", (7, 5), 12.0),
    ],
)
def test_pil_images_of_any_mode_become_rgb(image):
    rgb = to_rgb_pil(image)
    assert rgb.mode == "RGB" and rgb.size == (7, 5)


def test_16_bit_pil_image_is_scaled():
    assert to_rgb_pil(Image.new("I;16", (2, 2), 65535)).getpixel((0, 0)) == (255, 255, 255)


def test_one_pixel_images():
    assert check_image(np.zeros((1, 1, 3), np.uint8)) == (1, 1)
    assert to_rgb_pil(np.zeros((1, 1), np.uint8)).size == (1, 1)


@pytest.mark.parametrize(
    "image, hint",
    [
        (None, "cv2.imread returns None"),
        ("photo.jpg", "cv2.imread('photo.jpg')"),
        (pathlib.Path("dir/photo.png"), "a path is not loaded for you"),
        ([[np.zeros((4, 4, 3), np.uint8)]], "nested lists"),
        (np.zeros((0, 0), np.uint8), "empty"),
        (np.zeros((5, 6, 1), np.uint8), "[H, W, 3]"),
        (np.zeros((5, 6, 4), np.uint8), "[H, W, 3]"),
        (np.zeros((5, 6, 3), np.float64), "uint8"),
        (np.zeros((5, 6, 3), bool), "uint8"),
        (torch.zeros((1, 5, 6)), "channels first"),
        (torch.full((3, 5, 6), float("nan")), "NaN"),
        (12, "got a int"),
    ],
)
def test_wrong_inputs_say_what_is_expected(image, hint):
    with pytest.raises(ValueError) as error:
        to_rgb_pil(image, "image 2")
    message = str(error.value)
    assert message.startswith("image 2: expected") and hint in message, message
