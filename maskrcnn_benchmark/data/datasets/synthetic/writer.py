"""Write a synthetic dataset to disk in COCO's layout, deterministically and atomically.

Layout (like COCO's; the names come from config/paths_catalog.synthetic_split_files):
    output_dir/<split>/<zero-padded image id>.jpg          RGB JPEG, quality 95, no chroma subsampling
    output_dir/annotations/instances_<split>.json          for kind "shapes"
    output_dir/annotations/person_keypoints_<split>.json   for kind "persons"

Image i (0-based) of a split is drawn from its own numpy Generator seeded with (seed, kind, split,
i) (names turned into integers with CRC-32, which unlike Python's hash() is not salted per
process), so splits are independent streams (val is held out from train) and the same arguments
give byte-identical files (with the same numpy / OpenCV / pycocotools versions).
"""

import json
import os
import shutil
import tempfile
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from ....config.paths_catalog import synthetic_split_files
from . import persons, shapes

KINDS: Dict[str, Tuple[Callable, List[dict]]] = {
    # kind: (image renderer, categories); file names: config/paths_catalog.synthetic_split_files
    "shapes": (shapes.render_shapes_image, shapes.CATEGORIES),
    "persons": (persons.render_persons_image, persons.CATEGORIES),
}
DEFAULT_SPLITS: Dict[str, Dict[str, int]] = {
    "shapes": {"train": 1000, "val": 200},
    "persons": {"train": 1000, "val": 200},
}
JPEG_PARAMS = [
    cv2.IMWRITE_JPEG_QUALITY,
    95,
    # Full-resolution colour: small objects are told apart from the background by colour.
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
]


def _stable_int(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def image_rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """The Generator that draws image `index` (0-based) of `split`."""
    return np.random.default_rng([seed, _stable_int(kind), _stable_int(split), index])


def render_image(kind: str, seed: int, split: str, index: int, image_size: Tuple[int, int]):
    """(uint8 RGB image, Scene, annotations with "layer" keys) of one image, as the writer draws it."""
    renderer = KINDS[kind][0]
    return renderer(image_rng(seed, kind, split, index), image_size[0], image_size[1])


def images_path(output_dir: str, kind: str, split: str) -> str:
    return os.path.join(output_dir, synthetic_split_files(kind, split)[0])


def annotation_path(output_dir: str, kind: str, split: str) -> str:
    return os.path.join(output_dir, synthetic_split_files(kind, split)[1])


def _write_split(root: str, kind: str, split: str, count: int, seed: int, image_size: Tuple[int, int]) -> None:
    height, width = image_size
    image_dir = images_path(root, kind, split)
    os.makedirs(image_dir)
    digits = max(6, len(str(count)))
    images, annotations = [], []
    for index in range(count):
        image_id = index + 1
        file_name = f"{image_id:0{digits}d}.jpg"
        image, _, objects = render_image(kind, seed, split, index, image_size)
        ok, jpeg = cv2.imencode(".jpg", image[:, :, ::-1], JPEG_PARAMS)  # OpenCV wants BGR
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {split}/{file_name}")
        with open(os.path.join(image_dir, file_name), "wb") as f:
            f.write(jpeg.tobytes())
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for obj in objects:
            obj = {k: v for k, v in obj.items() if k != "layer"}
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, **obj))
    dataset = {
        "info": {
            "description": f"Synthetic {kind} dataset, {split} split",
            "generator": "maskrcnn_benchmark.data.datasets.synthetic",
            "kind": kind,
            "split": split,
            "seed": seed,
            "image_size": [height, width],
            "version": 1,
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": KINDS[kind][1],
    }
    path = annotation_path(root, kind, split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(json.dumps(dataset, separators=(",", ":")))  # the C encoder; json.dump is pure Python


def generate_synthetic_dataset(
    output_dir: str,
    kind: str = "shapes",
    splits: Optional[Dict[str, int]] = None,
    seed: int = 0,
    image_size: Tuple[int, int] = (256, 320),
) -> Dict[str, Tuple[str, str]]:
    """Generate a synthetic COCO-format dataset into `output_dir` (replacing whatever is there).

    Arguments:
        output_dir: the dataset folder to create.
        kind: "shapes" (4 categories, ids 1, 3, 7, 12) or "persons" (stick figures with keypoints).
        splits: {split name: number of images}; default {"train": 1000, "val": 200}.
        seed: a non-negative integer.
        image_size: (height, width) of every image.
    Returns:
        {split: (images folder, annotation json path)}.

    Everything is written into a temporary folder next to `output_dir` that is renamed into place
    at the end, so an interrupted run never leaves a dataset that looks complete.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    splits = dict(DEFAULT_SPLITS[kind] if splits is None else splits)
    if not splits:
        raise ValueError("splits is empty")
    for split, count in splits.items():
        if not split or os.sep in split or split in (".", "..", "annotations"):
            raise ValueError(f"bad split name {split!r}")
        if int(count) != count or count < 0:
            raise ValueError(f"split {split!r}: the number of images must be a non-negative integer, got {count!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    height, width = (int(v) for v in image_size)
    if height < 32 or width < 32:
        raise ValueError(f"image_size (height, width) must be at least 32 x 32, got {image_size!r}")

    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset should not be
        for split, count in splits.items():
            _write_split(tmp, kind, split, int(count), int(seed), (height, width))
        if os.path.lexists(output_dir):
            # Move the old dataset aside first: a rename cannot replace a non-empty folder.
            old = tmp + ".old"
            os.rename(output_dir, old)
            os.rename(tmp, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {split: (images_path(output_dir, kind, split), annotation_path(output_dir, kind, split)) for split in splits}
