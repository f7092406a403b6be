r"""Read Cityscapes `*_instanceIds.png` files into per-class instance dicts with polygon contours.

    python tools/cityscapes/instances2dict_with_polygons.py a_gtFine_instanceIds.png [b_...png ...]

In an instanceIds image a pixel holds `label_id * 1000 + k` for the k-th instance of a class that has
instances, and the plain label id (< 1000) elsewhere, crowd regions included; only the values
>= 1000 are instances. Each instance becomes {"instID", "labelID", "pixelCount", "contours"}:
"contours" are the outer borders of its pixels (OpenCV, every border pixel kept), each a flat
[x0, y0, x1, y1, ...] list. cityscapesscripts is not needed: the label table below is the part of
its `labels.py` this uses (held by maskrcnn_benchmark.data.datasets.cityscapes).
"""

import os
import sys
from typing import Dict, List, Sequence, Union

import cv2
import numpy as np
from PIL import Image

from maskrcnn_benchmark.data.datasets.cityscapes import INSTANCE_LABELS as CITYSCAPES_INSTANCE_LABELS
from maskrcnn_benchmark.utils import cv2_util

# Cityscapes label id -> name, for the classes that have instances (cityscapesscripts' labels with
# hasInstances=True; the dataset owns the table).
INSTANCE_LABELS: Dict[int, str] = dict(CITYSCAPES_INSTANCE_LABELS)


def instance_label_id(instance_id: int) -> int:
    """The label id of an instanceIds value (values below 1000 are label ids themselves)."""
    return instance_id if instance_id < 1000 else instance_id // 1000


def instances2dict_with_polygons(image_files: Union[str, Sequence[str]], verbose: bool = False) -> Dict[str, dict]:
    """{absolute path: {class name: [instance dict, ...]}} for each instanceIds PNG (see the module
    docstring); every instance class has an entry, possibly empty."""
    if isinstance(image_files, str):
        image_files = [image_files]
    result: Dict[str, dict] = {}
    for count, path in enumerate(image_files, 1):
        with Image.open(path) as f:
            ids = np.array(f)
        if ids.ndim != 2:
            raise ValueError(f"{path}: an instanceIds image has one channel, this one has shape {ids.shape}")
        instances: Dict[str, List[dict]] = {name: [] for name in INSTANCE_LABELS.values()}
        for value in np.unique(ids).tolist():
            if value < 1000:
                continue
            label = instance_label_id(value)
            name = INSTANCE_LABELS.get(label)
            if name is None:
                raise ValueError(f"{path}: instance id {value} has label id {label}, which has no instances")
            mask = (ids == value).astype(np.uint8)
            contours, _ = cv2_util.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            instances[name].append(
                {
                    "instID": int(value),
                    "labelID": label,
                    "pixelCount": int(mask.sum()),
                    "contours": [c.reshape(-1).tolist() for c in contours],
                }
            )
        result[os.path.abspath(path)] = instances
        if verbose:
            print(f"\rImages processed: {count}", end="", flush=True)
    if verbose:
        print()
    return result


def main(argv: Sequence[str]) -> None:
    files = [a for a in argv if a.endswith(".png")]
    for path, instances in instances2dict_with_polygons(files, verbose=True).items():
        counts = {name: len(v) for name, v in instances.items() if v}
        print(path, counts)


if __name__ == "__main__":
    main(sys.argv[1:])
