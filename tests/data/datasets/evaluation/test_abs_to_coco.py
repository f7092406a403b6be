"""COCO evaluation of an AbstractDataset through its conversion to COCO format."""

import pytest
import torch

from maskrcnn_benchmark.data.datasets.abstract import AbstractDataset
from maskrcnn_benchmark.data.datasets.evaluation.coco.abs_to_coco import convert_abstract_to_coco, masks_to_rles
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

# Two 40 x 30 (w x h) images: boxes xyxy (inclusive), labels.
ITEMS = [
    ([[2.0, 3.0, 11.0, 9.0], [20.0, 5.0, 35.0, 25.0]], [1, 2]),
    ([[5.0, 5.0, 14.0, 24.0]], [2]),
]


def _masks(boxes):
    masks = torch.zeros(len(boxes), 30, 40, dtype=torch.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        masks[k, int(y1) : int(y2) + 1, int(x1) : int(x2) + 1] = 1
    return masks


class Shapes(AbstractDataset):
    CLASSES = ("__background__", "square", "bar")

    def __init__(self):
        super().__init__()
        self.initMaps()

    def __getitem__(self, idx):
        boxes, labels = ITEMS[idx]
        target = BoxList(torch.tensor(boxes), (40, 30), mode="xyxy")
        target.add_field("labels", torch.tensor(labels))
        target.add_field("masks", SegmentationMask(_masks(boxes), (40, 30), mode="mask"))
        return torch.zeros(3, 30, 40), target, idx

    def get_img_info(self, idx):
        return {"width": 40, "height": 30}

    def __len__(self):
        return len(ITEMS)


def test_conversion_gives_coco_images_annotations_and_categories():
    coco = convert_abstract_to_coco(Shapes())
    assert [(i["id"], i["width"], i["height"]) for i in coco["images"]] == [(1, 40, 30), (2, 40, 30)]
    assert coco["categories"] == [{"id": 1, "name": "square"}, {"id": 2, "name": "bar"}]
    first = coco["annotations"][0]
    assert first["bbox"] == [2.0, 3.0, 10.0, 7.0]  # xywh with the +1 width / height
    assert first["area"] == 70 and first["category_id"] == 1 and first["image_id"] == 1
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3]
    assert masks_to_rles(_masks([[2, 3, 11, 9]]))[0] == first["segmentation"]


def _perfect_predictions():
    predictions = []
    for boxes, labels in ITEMS:
        pred = BoxList(torch.tensor(boxes), (40, 30), mode="xyxy")
        pred.add_field("labels", torch.tensor(labels))
        pred.add_field("scores", torch.ones(len(labels)))
        pred.add_field("mask", _masks(boxes)[:, None].bool())  # already pasted at the image size
        predictions.append(pred)
    return predictions


def test_perfect_predictions_score_one(tmp_path):
    from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval_wrapper import do_coco_evaluation

    results, _ = do_coco_evaluation(Shapes(), _perfect_predictions(), False, str(tmp_path), ("bbox", "segm"), (), 4)
    for iou_type in ("bbox", "segm"):
        assert results.results[iou_type]["AP"] == pytest.approx(1.0), iou_type
    assert (tmp_path / "Shapes.json").is_file()


def test_a_wrong_label_lowers_the_ap():
    from maskrcnn_benchmark.data.datasets.evaluation.coco.coco_eval_wrapper import do_coco_evaluation

    predictions = _perfect_predictions()
    predictions[1].add_field("labels", torch.tensor([1]))  # the bar called a square
    results, _ = do_coco_evaluation(Shapes(), predictions, False, None, ("bbox",), (), 4)
    assert results.results["bbox"]["AP"] < 0.9


def test_evaluate_dispatches_an_abstract_dataset_to_coco_evaluation():
    from maskrcnn_benchmark.data.datasets.evaluation import evaluate

    results, _ = evaluate(
        Shapes(),
        _perfect_predictions(),
        None,
        box_only=False,
        iou_types=("bbox",),
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    assert results.results["bbox"]["AP"] == pytest.approx(1.0)
