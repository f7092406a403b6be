"""engine/inference.py with COCO datasets: results encoded per batch (compute_on_dataset's encoder), only
compact results gathered, predictions.pth kept, the same numbers as evaluating the BoxLists with
pycocotools, the time of each phase logged. With 2 processes: tests/engine/test_inference_distributed.py."""

import json
import logging
import os
import sys
from typing import List

import pytest
import torch
from torch import nn

import maskrcnn_benchmark.engine.inference as inference_module
from maskrcnn_benchmark.data.datasets.evaluation.coco import do_coco_evaluation
from maskrcnn_benchmark.data.datasets.evaluation.coco.compact import CocoResultEncoder, ImageResults
from maskrcnn_benchmark.engine.inference import compute_on_dataset, inference
from maskrcnn_benchmark.structures.image_list import to_image_list

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks")
sys.path.insert(0, os.path.abspath(BENCHMARKS))
import synthetic_coco  # noqa: E402

LOGGER = "maskrcnn_benchmark.inference"
NUM_IMAGES = 9


class Loader(object):
    """Batches (ImageList, targets, dataset indices) of the given indices; a pixel holds the index."""

    def __init__(self, dataset, indices: List[int], batch_size: int = 2):
        self.dataset = dataset
        self.batches = []
        for start in range(0, len(indices), batch_size):
            ids = tuple(indices[start : start + batch_size])
            images = to_image_list([torch.full((3, 8, 8), float(i)) for i in ids])
            self.batches.append((images, (None,) * len(ids), ids))

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class SyntheticModel(nn.Module):
    """Returns the synthetic detector output of each image (found from its pixels)."""

    def __init__(self, gt, keypoints: bool = False):
        super().__init__()
        self.gt, self.keypoints = gt, keypoints

    def forward(self, images):
        return [
            synthetic_coco.make_prediction(self.gt, int(t[0, 0, 0]), 5, 25, masks=not self.keypoints)
            for t in images.tensors
        ]


def make(keypoints: bool = False, num_images: int = NUM_IMAGES):
    gt = synthetic_coco.make_ground_truth(num_images, seed=5, keypoints=keypoints)
    synthetic_coco.index_by_image(gt)
    return synthetic_coco.COCODataset(gt), SyntheticModel(gt, keypoints)


@pytest.mark.parametrize("keypoints", [False, True])
def test_inference_equals_pycocotools_on_the_boxlists(tmp_path, caplog, keypoints):
    dataset, model = make(keypoints)
    iou_types = ("bbox", "keypoints") if keypoints else ("bbox", "segm")
    out = str(tmp_path / "inference")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        results, coco_results = inference(
            model, Loader(dataset, list(range(NUM_IMAGES))), "synthetic", iou_types, device="cpu", output_folder=out
        )
    predictions = torch.load(os.path.join(out, "predictions.pth"), weights_only=False)
    assert [len(p) for p in predictions] == [25] * NUM_IMAGES  # the BoxLists, as the model gave them
    assert (
        predictions[3].get_field("scores").tolist()
        == model(Loader(dataset, [3]).batches[0][0])[0].get_field("scores").tolist()
    )
    reference, reference_results = do_coco_evaluation(
        dataset, predictions, False, None, iou_types, (), 4, coco_eval_backend="pycocotools"
    )
    assert results.results == reference.results and 0.05 < results.results["bbox"]["AP"] < 0.95
    assert coco_results == reference_results
    for iou_type in iou_types:
        with open(os.path.join(out, iou_type + ".json")) as f:
            assert json.load(f) == coco_results[iou_type]
    for phase in ("Model inference time", "Result encoding time", "Gathering results", "COCO evaluation (bbox)"):
        assert phase in caplog.text, phase
    assert "Evaluation time" in caplog.text and "Evaluating predictions with faster_coco_eval" in caplog.text


def test_without_an_output_folder_nothing_but_compact_results_is_kept(monkeypatch):
    dataset, model = make(num_images=5)
    sent = []

    def spy(data, dst=0):
        sent.append(data)
        return [data]

    monkeypatch.setattr(inference_module, "gather", spy)
    results, _ = inference(
        model,
        Loader(dataset, list(range(5))),
        "synthetic",
        ("bbox", "segm"),
        device="cpu",
        coco_eval_backend="pycocotools",
    )
    assert len(sent) == 1 and sorted(sent[0]) == list(range(5))  # no BoxLists gathered
    assert all(isinstance(v, ImageResults) for v in sent[0].values())
    assert results.results["segm"]["AP"] > 0


def test_compute_on_dataset_feeds_the_encoder():
    dataset, model = make(num_images=4)
    encoder = CocoResultEncoder(dataset, ("bbox", "segm"))
    kept = compute_on_dataset(model, Loader(dataset, [3, 1, 0, 2]), "cpu", encoder=encoder, keep_predictions=False)
    assert kept == {} and sorted(encoder.results) == [0, 1, 2, 3]
    kept = compute_on_dataset(model, Loader(dataset, [0, 1]), "cpu", encoder=CocoResultEncoder(dataset, ("bbox",)))
    assert sorted(kept) == [0, 1] and kept[0].get_field("mask").shape == (25, 1, 28, 28)
