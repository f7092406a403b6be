"""The evaluator's ground truth is the validated annotation file.

A file with a NaN polygon, a garbage RLE, a missing segmentation, a 3-value box, a duplicate
annotation id and a broken image entry evaluates with DATASETS.ON_BAD_INPUT "skip" exactly like the
same file with those entries removed by hand, and the evaluation log says what was dropped.
"""

import copy
import json
import logging

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.data.datasets.evaluation.coco import do_coco_evaluation
from maskrcnn_benchmark.structures.bounding_box import BoxList

LOGGER = "maskrcnn_benchmark.inference"
IMAGES = [(1, 64, 48), (2, 40, 40), (3, 50, 30)]  # (id, width, height)
BAD_IDS = (20, 21, 22, 23, 24, 25)


def _box_polygon(x, y, w, h):
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _good_annotations():
    objects = [
        (1, 1, 4, 4, 20, 16),
        (2, 1, 30, 10, 25, 30),
        (3, 1, 5, 5, 30, 20),
        (4, 2, 1, 1, 12, 12),
        (5, 3, 20, 2, 25, 20),
        (6, 2, 28, 20, 20, 20),
    ]  # (id, image, x, y, w, h)
    anns = [
        {
            "id": i,
            "image_id": img,
            "category_id": 1 + i % 2,
            "bbox": [x, y, w, h],
            "iscrowd": 0,
            "area": float(w * h),
            "segmentation": _box_polygon(x, y, w, h),
        }
        for i, img, x, y, w, h in objects
    ]
    crowd = np.zeros((40, 40), np.uint8)
    crowd[25:35, 25:35] = 1
    runs = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(crowd.flatten(order="F"))) + 1, [1600]])).tolist()
    anns.append(
        {
            "id": 7,
            "image_id": 2,
            "category_id": 1,
            "bbox": [25, 25, 10, 10],
            "iscrowd": 1,
            "area": 100.0,
            "segmentation": {"size": [40, 40], "counts": runs},
        }
    )
    return anns


def _bad_annotations():
    def ann(ann_id, img, **fields):
        out = {
            "id": ann_id,
            "image_id": img,
            "category_id": 1,
            "bbox": [8, 20, 20, 12],
            "iscrowd": 0,
            "area": 240.0,
            "segmentation": _box_polygon(8, 20, 20, 12),
        }
        out.update(fields)
        return out

    return [
        ann(20, 1, segmentation=[[8, 20, float("nan"), 20, 28, 32, 8, 32]]),
        ann(21, 1, segmentation={"size": [48, 64], "counts": "garbage counts"}),
        ann(22, 3, segmentation=None),
        ann(23, 3, bbox=[8, 20, 20]),
        ann(24, 1),
        ann(24, 2, bbox=[2, 20, 10, 10], segmentation=_box_polygon(2, 20, 10, 10)),  # duplicate ids
        ann(25, 9),  # of the broken image entry
    ]


def _write(folder, anns, broken_image):
    images = [{"id": i, "file_name": f"{i}.png", "width": w, "height": h} for i, w, h in IMAGES]
    if broken_image:
        images.append({"id": 9, "file_name": "9.png", "width": 0, "height": 30})
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    folder.mkdir()
    (folder / "images").mkdir()
    (folder / "ann.json").write_text(json.dumps(data))
    return str(folder / "ann.json"), str(folder / "images")


@pytest.fixture
def datasets(tmp_path):
    dirty = _write(tmp_path / "dirty", _good_annotations() + _bad_annotations(), broken_image=True)
    clean = _write(tmp_path / "clean", _good_annotations(), broken_image=False)
    return (
        COCODataset(*dirty, remove_images_without_annotations=False),
        COCODataset(*clean, remove_images_without_annotations=False),
    )


def _predictions(dataset):
    """Per image: boxes near each object (also where the dropped ones were) and a stray box."""
    rng = np.random.RandomState(0)
    out = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        w, h = info["width"], info["height"]
        boxes = [
            [4, 4, 24, 20],
            [30, 10, 54, 40],
            [5, 5, 34, 24],
            [1, 1, 13, 13],
            [20, 2, 44, 21],
            [28, 20, 47, 39],
            [8, 20, 28, 32],
            [2, 20, 12, 30],
            [25, 25, 35, 35],
        ]
        boxes = torch.tensor(boxes, dtype=torch.float32) + torch.from_numpy(rng.uniform(-2, 2, (9, 4))).float()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
        pred = BoxList(boxes, (w, h), mode="xyxy")
        pred.add_field("scores", torch.from_numpy(rng.uniform(0.1, 1, 9)).float())
        pred.add_field("objectness", pred.get_field("scores"))
        pred.add_field("labels", torch.from_numpy(rng.randint(1, 3, 9)))
        masks = torch.zeros(9, 1, h, w)
        for k, (x1, y1, x2, y2) in enumerate(boxes.round().long().tolist()):
            masks[k, 0, y1 : y2 + 1, x1 : x2 + 1] = 1
        pred.add_field("mask", masks)
        out.append(pred)
    return out


def _evaluate(dataset, predictions, **kwargs):
    return do_coco_evaluation(
        dataset, predictions, output_folder=None, expected_results=(), expected_results_sigma_tol=4, **kwargs
    )


def test_evaluation_of_the_validated_file_equals_the_hand_cleaned_one(datasets, caplog):
    dirty, clean = datasets
    assert dirty.ids == clean.ids == [1, 2, 3]  # the broken image entry is not evaluated
    assert sorted(dirty.coco.anns) == sorted(clean.coco.anns) == [1, 2, 3, 4, 5, 6, 7]
    predictions = _predictions(clean)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        dirty_results, _ = _evaluate(dirty, predictions, box_only=False, iou_types=("bbox", "segm"))
    note = [r.getMessage() for r in caplog.records if "as validated" in r.getMessage()]
    assert len(note) == 1
    assert "1 of 4 image(s) and 7 of 14 annotation(s) of the file were dropped (1 with their images)" in note[0]
    assert "annotation: duplicate id: 2" in note[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        clean_results, _ = _evaluate(clean, predictions, box_only=False, iou_types=("bbox", "segm"))
    assert "as validated" not in caplog.text
    assert dirty_results.results == clean_results.results
    assert 0 < clean_results.results["bbox"]["AP"] < 1 and 0 < clean_results.results["segm"]["AP"] < 1


def test_proposal_recall_of_the_validated_file_equals_the_hand_cleaned_one(datasets, tmp_path):
    dirty, clean = datasets
    predictions = _predictions(clean)
    (tmp_path / "d").mkdir()
    (tmp_path / "c").mkdir()
    do_coco_evaluation(
        dirty,
        predictions,
        box_only=True,
        output_folder=str(tmp_path / "d"),
        iou_types=("bbox",),
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    do_coco_evaluation(
        clean,
        predictions,
        box_only=True,
        output_folder=str(tmp_path / "c"),
        iou_types=("bbox",),
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    dirty_ar = torch.load(str(tmp_path / "d" / "box_proposals.pth"), weights_only=False).results
    clean_ar = torch.load(str(tmp_path / "c" / "box_proposals.pth"), weights_only=False).results
    assert dirty_ar == clean_ar and clean_ar["box_proposal"]["AR@100"] > 0


def test_training_targets_come_from_the_same_annotations(datasets):
    dirty, clean = datasets
    for index in range(len(clean)):
        a = dirty._build_target(index, tuple(dirty.get_img_info(index)[k] for k in ("width", "height")))
        b = clean._build_target(index, tuple(clean.get_img_info(index)[k] for k in ("width", "height")))
        assert torch.equal(a.bbox, b.bbox) and torch.equal(a.get_field("labels"), b.get_field("labels"))


def test_error_mode_names_the_first_bad_annotation(tmp_path):
    ann_file, root = _write(tmp_path / "dirty", _good_annotations() + _bad_annotations(), broken_image=True)
    with pytest.raises(ValueError, match=r"image id 9: field 'width, height' = \[0, 30\]"):
        COCODataset(ann_file, root, False, on_bad_input="error")
    data = json.loads(open(ann_file).read())
    data["images"] = data["images"][:3]
    clean_images = copy.deepcopy(data)
    (tmp_path / "ann2.json").write_text(json.dumps(clean_images))
    with pytest.raises(ValueError, match=r"image id 1, annotation id 20: field 'segmentation\[0\]'.*nan"):
        COCODataset(str(tmp_path / "ann2.json"), root, False, on_bad_input="error")
