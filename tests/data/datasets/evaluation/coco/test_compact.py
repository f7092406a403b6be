"""coco/compact.py and prepare.py: the result dicts equal the original's path (benchmarks/eval_baseline.py:
per-box paste, one pycocotools encode per mask) for every kind of "mask" field; bad fields fail clearly."""

import os
import sys

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.data.datasets.evaluation.coco.compact import (
    CocoResultEncoder,
    encode_predictions,
    result_dicts,
)
from maskrcnn_benchmark.data.datasets.evaluation.coco.prepare import (
    _masks_at_image_size,
    masks_to_rles,
    prepare_for_coco_detection,
    prepare_for_coco_keypoint,
    prepare_for_coco_segmentation,
)
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[".."] * 5, "benchmarks")
sys.path.insert(0, os.path.abspath(BENCHMARKS))
import eval_baseline  # noqa: E402
import synthetic_coco  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the per-box reference allocates an image-sized canvas per mask: threads only add overhead
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    gt = synthetic_coco.make_ground_truth(12, seed=7)
    return synthetic_coco.COCODataset(gt), list(
        synthetic_coco.iter_predictions(gt, range(12), seed=7, dets_per_image=30)
    )


@pytest.fixture(scope="module")
def keypoint_data():
    gt = synthetic_coco.make_ground_truth(8, seed=8, keypoints=True)
    preds = list(synthetic_coco.iter_predictions(gt, range(8), seed=8, dets_per_image=15, masks=False))
    return synthetic_coco.COCODataset(gt), preds


def _original(preds, dataset, iou_types):
    times = {"paste": 0.0, "encode": 0.0, "dicts": 0.0}
    return eval_baseline.prepare(preds, dataset, iou_types, times)


def test_results_equal_the_original_path(data, keypoint_data):
    dataset, preds = data
    original = _original(preds, dataset, ("bbox", "segm"))
    assert len(original["segm"]) == 12 * 30  # every image has detections
    assert prepare_for_coco_detection(preds, dataset) == original["bbox"]
    assert prepare_for_coco_segmentation(preds, dataset) == original["segm"]
    kp_dataset, kp_preds = keypoint_data
    assert (
        prepare_for_coco_keypoint(kp_preds, kp_dataset) == _original(kp_preds, kp_dataset, ("keypoints",))["keypoints"]
    )


def test_streaming_encoder_equals_encoding_the_list(data):
    dataset, preds = data
    encoder = CocoResultEncoder(dataset, ("bbox", "segm"))
    for index in (5, 0, 11, 3, 1, 2, 4, 6, 7, 8, 9, 10):  # any order, as processes and batches give them
        encoder(index, preds[index])
    merged = encoder.merged(
        [{k: v for k, v in encoder.results.items() if k % 2}, {k: v for k, v in encoder.results.items() if not k % 2}]
    )
    listed = encode_predictions(preds, dataset, ("bbox", "segm"))
    for iou_type in ("bbox", "segm"):
        assert result_dicts(merged.images, iou_type) == result_dicts(listed, iou_type)
    assert encoder.seconds > 0 and len(merged) == 12


def _reference_segm(pred, dataset, index):
    """The former prepare.py: Masker / resize + threshold, then one pycocotools call per image."""
    info = dataset.get_img_info(index)
    resized = pred.copy_with_fields(["scores", "labels"]).resize((info["width"], info["height"]))
    masks = _masks_at_image_size(pred.get_field("mask"), resized, pred.size, Masker(0.5, 1))
    return masks_to_rles(masks)


def test_every_kind_of_mask_field(data):
    dataset, preds = data
    pred = preds[2][:10]
    index = 2
    info = dataset.get_img_info(index)
    in_w, in_h = pred.size
    variants = {}
    probs = pred.get_field("mask")
    pasted_input = Masker(0.5, 1)([probs], pred)[0]  # pasted by the model (POSTPROCESS_MASKS): input size
    variants["input size, bool"] = pasted_input
    variants["input size, float"] = pasted_input.float() * 0.9
    full = F.interpolate(pasted_input.float(), size=(info["height"], info["width"]), mode="nearest")
    variants["image size, bool"] = full > 0.5
    variants["image size, float, [N, H, W]"] = full[:, 0] * 0.7
    for name, field in variants.items():
        p = pred.copy_with_fields(["scores", "labels"])
        p.add_field("mask", field)
        got = [r["segmentation"] for r in prepare_for_coco_segmentation([p] * 3, dataset)[20:30]]  # index 2
        assert got == _reference_segm(p, dataset, index), name
    # RLEs of the input-size masks (MaskPostProcessorCOCOFormat, predictions.pth of pasted masks)
    kept = CocoResultEncoder.compact(_with_mask(pred, pasted_input))
    assert isinstance(kept.get_field("mask"), list) and kept.get_field("scores") is pred.get_field("scores")
    as_rles = prepare_for_coco_segmentation([kept] * 3, dataset)[20:30]
    assert as_rles == prepare_for_coco_segmentation([_with_mask(pred, pasted_input)] * 3, dataset)[20:30]
    # probabilities are not "pasted masks": kept as they are
    assert CocoResultEncoder.compact(pred).get_field("mask") is probs


def _with_mask(pred, masks):
    out = pred.copy_with_fields(["scores", "labels"])
    out.add_field("mask", masks)
    return out


def test_bad_fields_fail_naming_the_field(data):
    dataset, preds = data
    bad_labels = preds[0][:3]
    bad_labels.add_field("labels", torch.tensor([1, 2, 999]))
    with pytest.raises(ValueError, match="'labels' holds 999"):
        prepare_for_coco_detection([bad_labels], dataset)
    bad_mask = _with_mask(preds[0][:3], torch.zeros(3, 28, 28, 2))
    with pytest.raises(ValueError, match="field 'mask' has shape"):
        prepare_for_coco_segmentation([bad_mask], dataset)
    with pytest.raises(ValueError, match="unknown iou_types"):
        CocoResultEncoder(dataset, ("bbox", "masks"))
    with pytest.raises(ValueError, match="unknown iou_type"):
        result_dicts([], "box")
