"""COCODataset on hand-written COCO jsons: targets, filtering, id maps and bad inputs."""

import copy
import json
import logging
import os
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.datasets import COCODataset, ConcatDataset
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

LOGGER = "maskrcnn_benchmark.data.datasets"


def _square(x, y, s):
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _instances_json():
    """Categories with non-contiguous, unsorted ids; images listed out of id order."""
    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((5, 5), np.uint8), ((0, 25), (0, 35)))))
    rle["counts"] = rle["counts"].decode("ascii")
    return {
        "categories": [{"id": 12, "name": "bird"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
        "images": [
            {"id": 5, "file_name": "im5.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "im2.png", "width": 20, "height": 50},
            {"id": 9, "file_name": "im9.png", "width": 30, "height": 30},  # no annotation
            {"id": 4, "file_name": "im4.png", "width": 30, "height": 20},  # crowd only
            {"id": 6, "file_name": "im6.png", "width": 25, "height": 25},  # no annotation
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 5,
                "category_id": 7,
                "bbox": [2, 3, 10, 5],
                "iscrowd": 0,
                "area": 50,
                "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]],
            },
            {
                "id": 2,
                "image_id": 5,
                "category_id": 12,
                "bbox": [30, 20, 20, 20],
                "iscrowd": 0,
                "area": 400,
                "segmentation": [_square(30, 20, 20)],
            },
            {
                "id": 3,
                "image_id": 5,
                "category_id": 3,
                "bbox": [0, 0, 5, 5],
                "iscrowd": 1,
                "area": 25,
                "segmentation": rle,
            },
            {
                "id": 4,
                "image_id": 2,
                "category_id": 3,
                "bbox": [1, 1, 5, 5],
                "iscrowd": 0,
                "area": 25,
                "segmentation": [_square(1, 1, 5)],
            },
            {
                "id": 5,
                "image_id": 4,
                "category_id": 3,
                "bbox": [0, 0, 5, 5],
                "iscrowd": 1,
                "area": 25,
                "segmentation": [_square(0, 0, 5)],
            },
        ],
    }


def _write(tmp_path, data, name="ann.json", gray=()):
    """Write `data` and a PNG for each of its images; returns (ann_file, image folder)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    for img in data["images"]:
        mode = "L" if img["id"] in gray else "RGB"
        Image.new(mode, (img["width"], img["height"]), 128).save(img_dir / img["file_name"])
    ann_file = tmp_path / name
    ann_file.write_text(json.dumps(data))
    return str(ann_file), str(img_dir)


@pytest.fixture
def instances(tmp_path):
    return _write(tmp_path, _instances_json(), gray=(2,))


def test_training_targets(instances):
    ann_file, root = instances
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert ds.ids == [2, 5]  # 9 and 6 (none), 4 (crowd only) removed; sorted
    assert ds.id_to_img_map == {0: 2, 1: 5}
    img, target, idx = ds[1]
    assert idx == 1 and isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (40, 30)
    assert isinstance(target, BoxList) and target.mode == "xyxy" and target.size == (40, 30)
    # legacy xyxy: x2 = x + w - 1; box 2 clipped to (W-1, H-1); the crowd box is not a target
    assert target.bbox.tolist() == [[2, 3, 11, 7], [30, 20, 39, 29]]
    assert target.get_field("labels").tolist() == [2, 3]  # json 7 -> 2, 12 -> 3
    assert target.get_field("labels").dtype == torch.int64
    masks = target.get_field("masks")
    assert isinstance(masks, SegmentationMask) and masks.mode == "poly" and len(masks) == 2
    assert masks.get_mask_tensor()[0].sum() > 0
    assert not target.has_field("keypoints")
    img2, _, _ = ds[0]
    assert img2.mode == "RGB"  # a grayscale file comes out RGB


def test_test_mode_keeps_every_image(instances):
    ann_file, root = instances
    ds = COCODataset(ann_file, root, remove_images_without_annotations=False)
    assert ds.ids == [2, 4, 5, 6, 9] and len(ds) == 5
    _, target, _ = ds[4]  # image 9: no annotation
    assert len(target) == 0 and target.get_field("labels").shape == (0,) and len(target.get_field("masks")) == 0
    _, target, _ = ds[1]  # image 4: crowd only
    assert len(target) == 0
    assert ds.get_img_info(2) == {"id": 5, "file_name": "im5.png", "width": 40, "height": 30}
    assert ds[-1][2] == 4 and len(list(ds)) == 5  # negative indices; iteration stops on IndexError


def test_category_maps_and_names(instances):
    ds = COCODataset(*instances, remove_images_without_annotations=True)
    assert ds.json_category_id_to_contiguous_id == {3: 1, 7: 2, 12: 3}
    assert ds.contiguous_category_id_to_json_id == {1: 3, 2: 7, 3: 12}
    assert ds.categories == {12: "bird", 3: "cat", 7: "dog"}
    assert ds.class_names == ["__background", "cat", "dog", "bird"]
    assert len(ds.coco.anns) == 5  # the evaluator's ground truth: every valid annotation, crowd included
    assert ds.coco.anns[3]["iscrowd"] == 1


def test_transforms_receive_image_and_target(instances):
    calls = []

    def transforms(image, target):
        calls.append((image.size, len(target)))
        return torch.zeros(3, image.size[1], image.size[0]), target

    ds = COCODataset(*instances, remove_images_without_annotations=True, transforms=transforms)
    img, target, _ = ds[1]
    assert calls == [((40, 30), 2)] and img.shape == (3, 30, 40)


def test_rle_instances_make_binary_masks(tmp_path):
    data = _instances_json()
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 5:15] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    data["annotations"].append(
        {
            "id": 8,
            "image_id": 5,
            "category_id": 3,
            "bbox": [5, 10, 10, 10],
            "iscrowd": 0,
            "area": 100,
            "segmentation": rle,
        }
    )
    ds = COCODataset(*_write(tmp_path, data), remove_images_without_annotations=True)
    _, target, _ = ds[1]
    masks = target.get_field("masks")
    assert masks.mode == "mask" and len(masks) == len(target) == 3
    tensor = masks.get_mask_tensor()
    assert torch.equal(tensor[2], torch.from_numpy(mask))
    assert tensor[0][3:8, 2:12].all()  # the polygon instance rasterised alongside


def _keypoints_json(visible_per_image):
    images, anns = [], []
    for i, visible in enumerate(visible_per_image, start=1):
        images.append({"id": i, "file_name": f"p{i}.png", "width": 50, "height": 40})
        kps = []
        for k in range(17):
            kps += [10 + k, 5 + k, 2] if k < visible else [0, 0, 0]
        anns.append(
            {
                "id": 100 + i,
                "image_id": i,
                "category_id": 1,
                "bbox": [5, 5, 30, 30],
                "iscrowd": 0,
                "area": 900,
                "num_keypoints": visible,
                "keypoints": kps,
                "segmentation": [_square(5, 5, 30)],
            }
        )
    cats = [{"id": 1, "name": "person", "keypoints": PersonKeypoints.NAMES, "skeleton": []}]
    return {"categories": cats, "images": images, "annotations": anns}


def test_keypoints_and_min_visible_keypoints(tmp_path):
    ann_file, root = _write(tmp_path, _keypoints_json([10, 9]))
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert ds.ids == [1]  # image 2 has 9 < 10 visible keypoints
    _, target, _ = ds[0]
    kps = target.get_field("keypoints")
    assert isinstance(kps, PersonKeypoints) and kps.keypoints.shape == (1, 17, 3)
    assert kps.keypoints[0, 0].tolist() == [10, 5, 2] and kps.keypoints[0, 16].tolist() == [0, 0, 0]
    assert COCODataset(ann_file, root, remove_images_without_annotations=False).ids == [1, 2]


# ------------------------------------------------------------------------------ bad annotations
def _set(ann_id, **fields):
    def edit(data):
        ann = next(a for a in data["annotations"] if a["id"] == ann_id)
        ann.update(fields)

    return edit


def _rle_of_another_size():
    """An RLE string of a 20x40 mask declared as the 30x40 image's: its runs do not sum to 30*40."""
    rle = mask_utils.encode(np.asfortranarray(np.ones((20, 40), np.uint8)))
    return {"size": [30, 40], "counts": rle["counts"].decode("ascii")}


BAD_ANNOTATIONS = {
    "few_points": (_set(1, segmentation=[[2, 3, 12, 3]]), "segmentation[0]", "[2, 3, 12, 3]"),
    "odd_count": (_set(1, segmentation=[[2, 3, 12, 3, 12, 8, 2]]), "segmentation[0]", "[2, 3, 12, 3, 12, 8, 2]"),
    "non_finite_polygon": (_set(1, segmentation=[[2, 3, 12, float("nan"), 12, 8, 2, 8]]), "segmentation[0]", "nan"),
    "polygon_far_outside": (_set(1, segmentation=[[2, 3, 12, 3, 12, 1e9, 2, 8]]), "segmentation[0]", "1000000000.0"),
    "string_in_polygon": (_set(1, segmentation=[[2, 3, 12, "3", 12, 8, 2, 8]]), "segmentation[0]", "'3'"),
    "negative_box": (_set(1, bbox=[2, 3, -10, 5]), "bbox", "[2, 3, -10, 5]"),
    "zero_size_box": (_set(1, bbox=[2, 3, 10, 0]), "bbox", "[2, 3, 10, 0]"),
    "negative_zero_box": (_set(1, bbox=[2, 3, -0.0, 5]), "bbox", "-0.0"),
    "non_finite_box": (_set(1, bbox=[2, 3, float("inf"), 5]), "bbox", "inf"),
    "huge_box": (_set(1, bbox=[2, 3, 1e308, 5]), "bbox", "1e+308"),
    "three_value_box": (_set(1, bbox=[2, 3, 10]), "bbox", "[2, 3, 10]"),
    "string_box": (_set(1, bbox="2,3,10,5"), "bbox", "'2,3,10,5'"),
    "bool_in_box": (_set(1, bbox=[2, 3, True, 5]), "bbox", "True"),
    "box_outside_the_image": (_set(1, bbox=[45, 35, 5, 5]), "bbox", "[45, 35, 5, 5]"),
    "box_left_of_the_image": (_set(1, bbox=[-7, 3, 7, 5]), "bbox", "[-7, 3, 7, 5]"),  # ends at x = 0
    "unknown_category": (_set(1, category_id=99), "category_id", "99"),
    "string_category": (_set(1, category_id="7"), "category_id", "'7'"),
    "missing_segmentation": (_set(1, segmentation=None), "segmentation", "None"),
    "garbage_rle": (_set(1, segmentation={"size": [30, 40], "counts": "garbage"}), "segmentation", "garbage"),
    "rle_runs_do_not_sum": (_set(1, segmentation=_rle_of_another_size()), "segmentation", "'size': [30, 40]"),
    "rle_of_wrong_size": (_set(1, segmentation={"size": [3, 4], "counts": [12]}), "segmentation", "[3, 4]"),
    "segmentation_a_string": (_set(1, segmentation="polygon"), "segmentation", "'polygon'"),
    "iscrowd_2": (_set(1, iscrowd=2), "iscrowd", "2"),
    "negative_area": (_set(1, area=-5), "area", "-5"),
    "nan_area": (_set(1, area=float("nan")), "area", "nan"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_raises_with_error(tmp_path, case):
    edit, field, value = BAD_ANNOTATIONS[case]
    data = _instances_json()
    edit(data)
    ann_file, root = _write(tmp_path, data)
    with pytest.raises(ValueError) as info:
        COCODataset(ann_file, root, remove_images_without_annotations=True, on_bad_input="error")
    message = str(info.value)
    for part in (ann_file, "image id 5", "annotation id 1", repr(field), value):
        assert part in message, (part, message)


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_is_dropped_and_logged_once_with_skip(tmp_path, caplog, case):
    edit, field, value = BAD_ANNOTATIONS[case]
    data = _instances_json()
    edit(data)
    ann_file, root = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    for part in (ann_file, "1 annotation(s) dropped", "image id 5", "annotation id 1", repr(field), value):
        assert part in message, (part, message)
    assert sum(ds.bad_input_counts.values()) == 1
    _, target, _ = ds[1]
    assert target.get_field("labels").tolist() == [3]  # only annotation 2 is left in image 5


def test_summary_counts_every_kind(tmp_path, caplog):
    data = _instances_json()
    _set(1, bbox=[2, 3, 0, 5])(data)
    _set(3, category_id=42)(data)  # crowd annotations are checked too
    _set(4, bbox=[1, 1, -1, 5])(data)
    ann_file, root = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "bbox: zero or negative width/height: 2" in record.getMessage()
    assert "category_id: not in the categories: 1" in record.getMessage()
    assert "3 annotation(s) dropped" in record.getMessage()
    assert ds.ids == [5]  # image 2 lost its only annotation; image 5 keeps annotation 2
    assert ds[0][1].get_field("labels").tolist() == [3]
    assert sorted(ds.coco.anns) == [2, 5]  # the evaluator's ground truth lost the same three


def test_an_image_whose_boxes_all_lie_outside_it_is_not_trained_on(tmp_path, caplog):
    data = _instances_json()
    _set(4, bbox=[20, 50, 5, 5])(data)  # image 2 is 20x50: the box starts below it
    data["annotations"].append(
        {
            "id": 8,
            "image_id": 2,
            "category_id": 3,
            "bbox": [-9, 1, 9, 5],
            "iscrowd": 0,
            "area": 45,
            "segmentation": [_square(1, 1, 5)],
        }
    )  # ends at x2 = -1
    ann_file, root = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert ds.ids == [5] and len(ds[0][1]) == 2  # every training image has ground truth
    assert ds.bad_input_counts == {"bbox: outside the image": 2}
    assert "image id 2, annotation id 4" in caplog.text
    assert 2 in COCODataset(ann_file, root, remove_images_without_annotations=False).ids  # still tested


def test_an_image_whose_valid_boxes_the_clipping_empties_is_not_trained_on_but_evaluated(tmp_path):
    # A box one pixel wide (x2 = x + w - 1 = x1) is valid COCO, not bad input: the evaluator keeps it,
    # training cannot use it (and an image with nothing else is not a training image).
    data = _instances_json()
    _set(4, bbox=[3, 3, 1, 5])(data)
    ann_file, root = _write(tmp_path, data)
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True, on_bad_input="error")
    assert ds.ids == [5] and ds.bad_input_counts == {}
    assert 4 in ds.coco.anns


def test_one_bad_polygon_among_good_ones_is_removed(tmp_path, caplog):
    data = _instances_json()
    _set(1, segmentation=[[2, 3, 12, 3, 12, 8, 2, 8], [1, 1, 2, 2]])(data)
    ann_file, root = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert "1 bad polygon(s) removed" in caplog.text
    _, target, _ = ds[1]
    assert target.get_field("labels").tolist() == [2, 3]
    assert len(target.get_field("masks").instances.polygons[0].polygons) == 1


def test_keypoints_of_wrong_length(tmp_path, caplog):
    data = _keypoints_json([12, 12])
    data["annotations"][1]["keypoints"] = data["annotations"][1]["keypoints"][:50]
    ann_file, root = _write(tmp_path, data)
    with pytest.raises(ValueError, match=r"image id 2, annotation id 102: field 'keypoints'.*50 values"):
        COCODataset(ann_file, root, remove_images_without_annotations=True, on_bad_input="error")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert ds.ids == [1] and "keypoints: wrong length: 1" in caplog.text


def test_invalid_on_bad_input_value(instances):
    with pytest.raises(ValueError, match="on_bad_input"):
        COCODataset(*instances, remove_images_without_annotations=True, on_bad_input="ignore")


# ---------------------------------------------------------------------------------- bad images
def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


@pytest.fixture
def corrupt(tmp_path):
    """The instances dataset with image 2 (training index 0) saved as a noisy JPEG cut in half."""
    data = _instances_json()
    data["images"][1]["file_name"] = "im2.jpg"
    ann_file, root = _write(tmp_path, data)
    noise = np.random.RandomState(0).randint(0, 255, (50, 20, 3), dtype=np.uint8)
    path = os.path.join(root, "im2.jpg")
    Image.fromarray(noise).save(path, quality=95)
    _truncate(path)
    return ann_file, root, path


def test_corrupt_image_is_skipped_in_training(corrupt, caplog):
    ann_file, root, path = corrupt
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        img, target, idx = ds[0]
    assert idx == 1 and img.size == (40, 30) and len(target) == 2  # the next image, deterministically
    assert ds.num_unreadable_images == 1
    assert path in caplog.text and "image id 2" in caplog.text and "1 unreadable image(s) skipped" in caplog.text
    assert ds[0][2] == 1 and ds.num_unreadable_images == 1


def test_corrupt_image_raises_at_test_time(corrupt):
    ann_file, root, path = corrupt
    ds = COCODataset(ann_file, root, remove_images_without_annotations=False)
    with pytest.raises(OSError) as info:
        ds[0]
    assert path in str(info.value) and "image id 2" in str(info.value)


def test_corrupt_image_raises_with_error(corrupt):
    ann_file, root, path = corrupt
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True, on_bad_input="error")
    with pytest.raises(OSError, match="image id 2"):
        ds[0]


def _resize_image_file(root, name, size):
    Image.new("RGB", size, 128).save(os.path.join(root, name))


def test_image_of_another_size_than_the_file_says_is_skipped_in_training(instances, caplog):
    ann_file, root = instances
    _resize_image_file(root, "im2.png", (21, 50))  # the json says 20x50
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        img, target, idx = ds[0]
    assert idx == 1 and img.size == (40, 30)  # the next image instead
    assert "image id 2" in caplog.text and "21x50" in caplog.text and "20x50" in caplog.text
    assert ds.num_unreadable_images == 1


@pytest.mark.parametrize("train,on_bad_input", [(False, "skip"), (True, "error"), (False, "error")])
def test_image_of_another_size_than_the_file_says_raises(instances, train, on_bad_input):
    ann_file, root = instances
    _resize_image_file(root, "im2.png", (20, 49))
    ds = COCODataset(ann_file, root, remove_images_without_annotations=train, on_bad_input=on_bad_input)
    with pytest.raises(ValueError) as info:
        ds[0]
    message = str(info.value)
    for part in ("im2.png", "image id 2", ann_file, "20x49", "20x50"):
        assert part in message, (part, message)
    assert ("ON_BAD_INPUT 'skip'" in message) == train


def test_missing_image_file_is_skipped_in_training(instances):
    ann_file, root = instances
    os.remove(os.path.join(root, "im5.png"))
    ds = COCODataset(ann_file, root, remove_images_without_annotations=True)
    assert ds[1][2] == 0  # wraps around to the first image


# --------------------------------------------------------------------- missing files, build_dataset
class _Catalog:
    """A minimal catalog (the DatasetCatalog protocol) for build_dataset."""

    def __init__(self, entries):
        self.entries = entries

    def get(self, name):
        if name not in self.entries:
            raise RuntimeError(f"Dataset not available: {name!r}")
        return copy.deepcopy(self.entries[name])

    def data_dir(self):
        return "/nowhere"


def _coco_entry(ann_file, root):
    return {"factory": "COCODataset", "args": {"ann_file": ann_file, "root": root}}


def test_missing_annotation_file_and_image_folder_name_the_dataset(instances, tmp_path):
    ann_file, root = instances
    missing_ann = str(tmp_path / "nope.json")
    catalog = _Catalog(
        {"a_train": _coco_entry(missing_ann, root), "b_train": _coco_entry(ann_file, str(tmp_path / "no_images"))}
    )
    with pytest.raises(FileNotFoundError) as info:
        build_dataset(["a_train"], None, catalog)
    assert missing_ann in str(info.value) and "'a_train'" in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        build_dataset(["b_train"], None, catalog)
    assert str(tmp_path / "no_images") in str(info.value) and "'b_train'" in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        COCODataset(missing_ann, root, True)


def test_build_dataset_train_concat_and_test_list(instances):
    catalog = _Catalog({"x": _coco_entry(*instances), "y": _coco_entry(*instances)})
    (train,) = build_dataset(["x", "y"], None, catalog, is_train=True)
    assert isinstance(train, ConcatDataset) and len(train) == 4
    assert train.get_idxs(3) == (1, 1) and train.get_img_info(3)["id"] == 5
    assert train[3][2] == 3  # the global index
    tests = build_dataset(["x", "y"], None, catalog, is_train=False)
    assert [len(d) for d in tests] == [5, 5] and tests[0].name == "x"
    (single,) = build_dataset(["x"], None, catalog, is_train=True)
    assert isinstance(single, COCODataset) and len(single) == 2


def test_build_dataset_errors(instances):
    unknown_factory = {"factory": "NoSuchDataset", "args": {}}
    catalog = _Catalog({"custom": unknown_factory})
    with pytest.raises(RuntimeError, match="Dataset not available"):
        build_dataset(["unknown"], None, catalog)
    with pytest.raises(NotImplementedError, match="NoSuchDataset"):
        build_dataset(["custom"], None, catalog)
    bad = {"x": _coco_entry(*instances)}
    with pytest.raises(ValueError):
        build_dataset(["x"], None, _Catalog(bad), on_bad_input="maybe")


def test_synthetic_names_are_generated_first(tmp_path, monkeypatch):
    calls = []

    def ensure_synthetic_dataset(name, data_dir):  # stands in for the generator
        calls.append((name, data_dir))
        _write(tmp_path, _instances_json())

    fake = types.ModuleType("maskrcnn_benchmark.data.datasets.synthetic")
    fake.ensure_synthetic_dataset = ensure_synthetic_dataset
    fake.SYNTHETIC_DATASETS = {"synthetic_shapes_train": ("shapes", "train")}
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    entry = _coco_entry(str(tmp_path / "ann.json"), str(tmp_path / "images"))
    catalog = _Catalog({"synthetic_shapes_train": entry})
    (dataset,) = build_dataset(["synthetic_shapes_train"], None, catalog)
    assert calls == [("synthetic_shapes_train", "/nowhere")] and len(dataset) == 2
