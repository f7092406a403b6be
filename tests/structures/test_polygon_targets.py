"""polygons_in_boxes against the per-instance crop / resize / rasterise of SegmentationMask."""

import numpy as np
import torch

from maskrcnn_benchmark.structures._polygon_targets import polygons_in_boxes
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask


def test_equals_crop_resize_rasterise_bit_for_bit():
    rng = np.random.default_rng(0)
    instances = []
    for _ in range(150):  # 1-3 parts each, some concave or self-intersecting
        parts = rng.integers(1, 4)
        instances.append([list((rng.random((rng.integers(3, 12), 2)) * [120, 90]).reshape(-1)) for _ in range(parts)])
    masks = SegmentationMask(instances, (120, 90))
    boxes = []
    for _ in range(len(masks)):
        # Inside the image, across its border, sub-pixel and zero-sized boxes.
        x1, y1 = rng.random(2) * [130, 100] - 10
        w, h = rng.random(2) * 80 * rng.choice([1, 0.01, 0])
        boxes.append([float(np.float32(v)) for v in (x1, y1, x1 + w, y1 + h)])
    fast = polygons_in_boxes(masks.instances.polygons, boxes, 28)
    assert fast.dtype == torch.uint8 and fast.shape == (len(masks), 28, 28)
    for i, box in enumerate(boxes):
        w, h = box[2] - box[0], box[3] - box[1]
        if w == 0 or h == 0:  # the per-instance path divides by the size; here it counts as 1
            continue
        expected = masks[i].crop(torch.tensor(box)).resize((28, 28)).get_mask_tensor().reshape(28, 28)
        assert torch.equal(fast[i], expected), i
    assert fast.sum() > 1000  # not trivially empty


def test_no_polygons_give_empty_masks():
    assert polygons_in_boxes([], [], 14).shape == (0, 14, 14)
