"""Every PIL image mode becomes 8-bit RGB without PIL's clipping of 16-bit pixels (data/image_modes.py)."""

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from maskrcnn_benchmark.data.image_modes import to_rgb


def _reopened(image: Image.Image, fmt: str, **kwargs) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    buffer.seek(0)
    return Image.open(buffer)


def test_16_bit_png_is_scaled_not_clipped():
    pixels = np.array([[0, 257, 32896], [65535, 1000, 50000]], dtype=np.uint16)
    opened = _reopened(Image.fromarray(pixels), "PNG")
    assert opened.mode.startswith("I")  # PIL's own convert("RGB") would make it all 255
    rgb = np.asarray(to_rgb(opened))
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == [[0, 1, 128], [255, 4, 195]]
    assert (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize(
    "mode, pixels, expected",
    [
        ("I", np.array([[0, 65535]], dtype=np.int32), [0, 255]),
        ("F", np.array([[-3.0, 127.6]], dtype=np.float32), [0, 128]),
        ("F", np.array([[300.0, 1.2]], dtype=np.float32), [255, 1]),
    ],
)
def test_integer_and_float_modes(mode, pixels, expected):
    image = Image.fromarray(pixels)
    assert image.mode == mode
    assert np.asarray(to_rgb(image))[0, :, 1].tolist() == expected


@pytest.mark.parametrize("mode", ["L", "1", "LA", "RGBA", "CMYK", "YCbCr", "P", "RGB"])
def test_other_modes_become_rgb(mode):
    image = Image.new("RGB", (5, 4), (200, 100, 50)).convert(mode)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (5, 4) and rgb is not image


def test_palette_with_transparency_does_not_warn():
    image = Image.new("P", (3, 3), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = b"\x00\xff"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.asarray(to_rgb(image))[0, 0].tolist() == [255, 0, 0]


def test_tiny_and_multi_frame_images():
    assert to_rgb(Image.new("I;16", (1, 1), 65535)).getpixel((0, 0)) == (255, 255, 255)
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    gif.seek(0)
    opened = Image.open(gif)
    assert getattr(opened, "n_frames", 1) == 2
    assert to_rgb(opened).size == (4, 4)  # the first frame


def test_coco_dataset_reads_16_bit_and_grey_files(tmp_path):
    from maskrcnn_benchmark.data.datasets.coco import COCODataset

    names = {1: ("deep.png", np.full((6, 8), 65535, np.uint16)), 2: ("grey.png", np.full((6, 8), 90, np.uint8))}
    images, annotations = [], []
    for image_id, (name, pixels) in names.items():
        Image.fromarray(pixels).save(tmp_path / name)
        images.append({"id": image_id, "file_name": name, "width": 8, "height": 6})
        annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [1, 1, 4, 3],
                "area": 12,
                "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]],
            }
        )
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}))
    dataset = COCODataset(str(ann), str(tmp_path), True)
    by_name = {dataset.get_img_info(i)["file_name"]: dataset[i][0] for i in range(len(dataset))}
    assert by_name["deep.png"].mode == "RGB" and by_name["deep.png"].getpixel((0, 0)) == (255, 255, 255)
    assert by_name["grey.png"].getpixel((3, 3)) == (90, 90, 90)
