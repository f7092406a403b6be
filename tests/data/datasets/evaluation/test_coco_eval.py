"""COCO evaluation: ground truth as predictions scores 100%, our numbers equal plain pycocotools',
resizing back to the original size, box proposals AR, empty inputs, per-class AP, expected results.

The ground truth is a small COCO json written into tmp_path: 4 images of different sizes (one
without annotations), 3 categories with non-contiguous json ids (1, 3, 7), small/medium/large
objects, a crowd region, and person keypoints.
"""

import json
import logging
import os
from collections import OrderedDict

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.nn import functional as F

from maskrcnn_benchmark.data.datasets.evaluation import evaluate
from maskrcnn_benchmark.data.datasets.evaluation.coco import (
    COCOResults,
    check_expected_results,
    do_coco_evaluation,
    evaluate_box_proposals,
    evaluate_predictions_on_coco,
    prepare_for_coco_detection,
)
from maskrcnn_benchmark.data.datasets.evaluation.coco.results import compute_per_class_ap
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

LOGGER = "maskrcnn_benchmark.inference"
PERSON, CAR, DOG = 1, 3, 7  # json category ids (contiguous: 1, 2, 3)
IMAGES = [(42, 640, 480), (7, 300, 500), (100, 200, 200), (5, 120, 100)]  # (id, width, height)
ORDER = [42, 7, 100, 5]  # dataset index -> image id


def _octagon(x, y, w, h):
    c = min(w, h) / 4.0
    return [
        x + c,
        y,
        x + w - c,
        y,
        x + w,
        y + c,
        x + w,
        y + h - c,
        x + w - c,
        y + h,
        x + c,
        y + h,
        x,
        y + h - c,
        x,
        y + c,
    ]


def _keypoints(rng, x, y, w, h):
    kps = []
    for i in range(17):
        if i % 5 == 3:  # some invisible points: COCO stores them as (0, 0, 0)
            kps += [0, 0, 0]
        else:
            kps += [float(x + rng.uniform(0, w)), float(y + rng.uniform(0, h)), 2]
    return kps


def _write_gt(path):
    rng = np.random.RandomState(0)
    sizes = {i: (w, h) for i, w, h in IMAGES}
    objects = [  # (image id, category, x, y, w, h)
        (42, PERSON, 300, 50, 150, 300),  # large
        (42, CAR, 20, 300, 70, 60),  # medium
        (42, DOG, 500, 400, 20, 15),  # small
        (42, CAR, 600, 20, 12, 10),  # small
        (7, PERSON, 50, 100, 40, 90),  # medium
        (7, DOG, 100, 250, 180, 200),  # large
        (100, DOG, 10, 10, 60, 50),  # medium
    ]
    anns = []
    for k, (img, cat, x, y, w, h) in enumerate(objects):
        width, height = sizes[img]
        poly = _octagon(x, y, w, h)
        rle = mask_util.merge(mask_util.frPyObjects([poly], height, width))
        ann = {
            "id": 10 + k,
            "image_id": img,
            "category_id": cat,
            "segmentation": [poly],
            "area": float(mask_util.area(rle)),
            "bbox": [x, y, w, h],
            "iscrowd": 0,
            "num_keypoints": 0,
        }
        if cat == PERSON:
            ann["keypoints"] = _keypoints(rng, x, y, w, h)
            ann["num_keypoints"] = sum(1 for v in ann["keypoints"][2::3] if v > 0)
        anns.append(ann)
    crowd = np.zeros((200, 200), dtype=np.uint8, order="F")
    crowd[100:190, 100:190] = 1
    crowd_rle = mask_util.encode(crowd)
    anns.append(
        {
            "id": 99,
            "image_id": 100,
            "category_id": CAR,
            "iscrowd": 1,
            "num_keypoints": 0,
            "segmentation": {"size": [200, 200], "counts": crowd_rle["counts"].decode()},
            "area": float(mask_util.area(crowd_rle)),
            "bbox": [100, 100, 90, 90],
        }
    )
    gt = {
        "images": [{"id": i, "width": w, "height": h, "file_name": "{}.jpg".format(i)} for i, w, h in IMAGES],
        "annotations": anns,
        "categories": [
            {
                "id": PERSON,
                "name": "person",
                "supercategory": "person",
                "keypoints": PersonKeypoints.NAMES,
                "skeleton": [],
            },
            {"id": CAR, "name": "car", "supercategory": "vehicle"},
            {"id": DOG, "name": "dog", "supercategory": "animal"},
        ],
    }
    with open(path, "w") as f:
        json.dump(gt, f)


class COCODataset(object):
    """Stand-in with the attributes the evaluation uses (the real one reads images too)."""

    def __init__(self, ann_file):
        self.coco = COCO(ann_file)
        self.id_to_img_map = dict(enumerate(ORDER))
        cat_ids = sorted(self.coco.getCatIds())
        self.json_category_id_to_contiguous_id = {c: i + 1 for i, c in enumerate(cat_ids)}
        self.contiguous_category_id_to_json_id = {v: k for k, v in self.json_category_id_to_contiguous_id.items()}

    def get_img_info(self, idx):
        return self.coco.imgs[self.id_to_img_map[idx]]

    def __len__(self):
        return len(self.id_to_img_map)


@pytest.fixture
def gt_file(tmp_path):
    path = str(tmp_path / "gt.json")
    _write_gt(path)
    return path


@pytest.fixture
def dataset(gt_file):
    return COCODataset(gt_file)


def _unpasted(full_mask, box, m=28):
    """An M x M probability mask of the box's (inclusive xyxy) crop, like the mask head's."""
    x1, y1, x2, y2 = (int(v) for v in box)
    crop = full_mask[y1 : y2 + 1, x1 : x2 + 1].float()[None, None]
    return F.interpolate(crop, size=(m, m), mode="bilinear", align_corners=False)[0]


def gt_predictions(dataset, masks="pasted", person_only=False):
    """The non-crowd ground truth of each image as detections at the original size: legacy
    xyxy boxes (x2 = x + w - 1), contiguous labels, scores 1, masks, keypoints."""
    preds = []
    for idx in range(len(dataset)):
        info = dataset.get_img_info(idx)
        w, h = info["width"], info["height"]
        anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=dataset.id_to_img_map[idx]))
        anns = [a for a in anns if not a["iscrowd"] and (a["category_id"] == PERSON or not person_only)]
        boxes = torch.tensor(
            [
                [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2] - 1, a["bbox"][1] + a["bbox"][3] - 1]
                for a in anns
            ],
            dtype=torch.float32,
        ).reshape(-1, 4)
        pred = BoxList(boxes, (w, h), mode="xyxy")
        pred.add_field("scores", torch.ones(len(anns)))
        pred.add_field(
            "labels",
            torch.tensor(
                [dataset.json_category_id_to_contiguous_id[a["category_id"]] for a in anns], dtype=torch.int64
            ),
        )
        full = [torch.from_numpy(dataset.coco.annToMask(a)) for a in anns]
        if masks == "pasted":
            pasted = torch.stack(full)[:, None].bool() if full else torch.zeros(0, 1, h, w, dtype=torch.bool)
            pred.add_field("mask", pasted)
        elif masks == "unpasted":
            pred.add_field(
                "mask",
                torch.stack([_unpasted(m, b) for m, b in zip(full, boxes)]) if full else torch.zeros(0, 1, 28, 28),
            )
        kps = [a.get("keypoints", [0.0] * 51) for a in anns]
        pred.add_field("keypoints", PersonKeypoints(torch.tensor(kps, dtype=torch.float32).reshape(-1, 17, 3), (w, h)))
        preds.append(pred)
    return preds


def _plain_cocoeval(gt_file, res_file, iou_type):
    gt = COCO(gt_file)
    coco_eval = COCOeval(gt, gt.loadRes(res_file), iou_type)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval


# ------------------------------------------------------------------------- ground truth = 100 %
def test_gt_as_predictions_gives_perfect_bbox_and_segm(dataset, tmp_path):
    out = str(tmp_path)
    results, coco_results = do_coco_evaluation(
        dataset,
        gt_predictions(dataset),
        box_only=False,
        output_folder=out,
        iou_types=("bbox", "segm"),
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    assert isinstance(results, COCOResults)
    for task in ("bbox", "segm"):
        assert list(results.results[task]) == COCOResults.METRICS[task]
        for metric, value in results.results[task].items():
            assert value == pytest.approx(1.0), (task, metric, value)
        assert len(coco_results[task]) == 7  # the non-crowd objects
    for name in ("bbox.json", "segm.json", "coco_results.pth"):
        assert os.path.isfile(os.path.join(out, name))
    saved = torch.load(os.path.join(out, "coco_results.pth"), weights_only=False)
    assert saved.results == results.results
    with open(os.path.join(out, "segm.json")) as f:
        assert isinstance(json.load(f)[0]["segmentation"]["counts"], str)


def test_gt_keypoints_give_perfect_keypoint_ap(dataset, tmp_path):
    results, coco_results = do_coco_evaluation(
        dataset, gt_predictions(dataset, person_only=True), False, str(tmp_path), ("keypoints",), (), 4
    )
    assert list(results.results["keypoints"]) == ["AP", "AP50", "AP75", "APm", "APl"]
    for metric, value in results.results["keypoints"].items():
        assert value == pytest.approx(1.0), (metric, value)
    kp = coco_results["keypoints"][0]
    assert len(kp["keypoints"]) == 51 and kp["category_id"] == PERSON and kp["score"] == 1.0
    assert os.path.isfile(str(tmp_path / "keypoints.json"))


def test_unpasted_masks_are_pasted_with_masker(dataset):
    results, _ = do_coco_evaluation(dataset, gt_predictions(dataset, masks="unpasted"), False, None, ("segm",), (), 4)
    segm = results.results["segm"]
    # 28x28 masks lose detail (small objects most), but every object still matches at IoU 0.5.
    assert segm["AP50"] == pytest.approx(1.0)
    assert segm["AP"] > 0.6
    assert segm["APl"] > 0.9


def test_predictions_at_input_size_are_resized_back(dataset):
    preds = []
    for pred in gt_predictions(dataset):
        w, h = pred.size
        scaled = pred.resize((2 * w, 2 * h))  # the network saw the image twice as large
        masks = pred.get_field("mask").float()
        scaled.add_field("mask", F.interpolate(masks, size=(2 * h, 2 * w), mode="nearest").bool())
        preds.append(scaled)
    results, _ = do_coco_evaluation(dataset, preds, False, None, ("bbox", "segm"), (), 4)
    # keypoint models detect persons only (pycocotools needs GT keypoints for each det's class)
    persons = [p[p.get_field("labels") == 1] for p in preds]
    kp_results, _ = do_coco_evaluation(dataset, persons, False, None, ("keypoints",), (), 4)
    results.results.update(kp_results.results)
    for task, metrics in results.results.items():
        for metric, value in metrics.items():
            assert value == pytest.approx(1.0), (task, metric, value)


def test_non_uniform_resize_of_boxes_and_keypoints(dataset):
    preds = [p.resize((p.size[0] * 1.5, p.size[1] * 0.75)) for p in gt_predictions(dataset, masks=None)]
    results, coco_results = do_coco_evaluation(dataset, preds, False, None, ("bbox",), (), 4)
    assert results.results["bbox"]["AP"] == pytest.approx(1.0)
    first = coco_results["bbox"][0]  # image 42, the large person at [300, 50, 150, 300]
    assert first["image_id"] == 42 and first["category_id"] == PERSON
    assert first["bbox"] == pytest.approx([300, 50, 150, 300], abs=1e-3)


# ------------------------------------------------------------------- same numbers as pycocotools
def _jittered_predictions(dataset, seed=0):
    rng = np.random.RandomState(seed)
    preds = []
    for pred in gt_predictions(dataset):
        w, h = pred.size
        n = len(pred)
        keep = torch.from_numpy(rng.rand(n) > 0.2) if n else torch.zeros(0, dtype=torch.bool)
        pred = pred[keep]
        n = len(pred)
        boxes = pred.bbox + torch.from_numpy(rng.uniform(-6, 6, size=(n, 4))).float()
        # false positives: random boxes, random labels
        nfp = 3
        x1 = torch.from_numpy(rng.uniform(0, w / 2, nfp)).float()
        y1 = torch.from_numpy(rng.uniform(0, h / 2, nfp)).float()
        fp = torch.stack(
            [
                x1,
                y1,
                x1 + torch.from_numpy(rng.uniform(5, w / 2, nfp)).float(),
                y1 + torch.from_numpy(rng.uniform(5, h / 2, nfp)).float(),
            ],
            dim=1,
        )
        out = BoxList(torch.cat([boxes, fp]), (w, h))
        out.add_field("scores", torch.from_numpy(rng.rand(n + nfp)).float())
        out.add_field("labels", torch.cat([pred.get_field("labels"), torch.from_numpy(rng.randint(1, 4, nfp)).long()]))
        masks = pred.get_field("mask")
        shifted = torch.roll(masks, shifts=(int(rng.randint(-3, 4)), int(rng.randint(-3, 4))), dims=(2, 3))
        fp_masks = torch.zeros(nfp, 1, h, w, dtype=torch.bool)
        for k, (a, b, c, d) in enumerate(fp.round().long().tolist()):
            fp_masks[k, 0, b:d, a:c] = True
        out.add_field("mask", torch.cat([shifted, fp_masks]))
        kps = pred.get_field("keypoints").keypoints.clone()
        kps[..., :2] += torch.from_numpy(rng.normal(0, 3, size=kps[..., :2].shape)).float()
        kps = torch.cat([kps, torch.zeros(nfp, 17, 3)])
        out.add_field("keypoints", PersonKeypoints(kps, (w, h)))
        preds.append(out)
    return preds


def test_bbox_json_holds_legacy_xywh_json_ids_and_scores(dataset, tmp_path):
    preds = _jittered_predictions(dataset)
    do_coco_evaluation(dataset, preds, False, str(tmp_path), ("bbox",), (), 4)
    with open(str(tmp_path / "bbox.json")) as f:
        written = json.load(f)
    expected = []
    json_ids = {1: PERSON, 2: CAR, 3: DOG}
    for idx, pred in enumerate(preds):
        for (x1, y1, x2, y2), s, lab in zip(
            pred.bbox.tolist(), pred.get_field("scores").tolist(), pred.get_field("labels").tolist()
        ):
            expected.append((ORDER[idx], json_ids[lab], [x1, y1, x2 - x1 + 1, y2 - y1 + 1], s))
    assert len(written) == len(expected)
    for r, (img, cat, box, score) in zip(written, expected):
        assert r["image_id"] == img and r["category_id"] == cat
        assert r["bbox"] == pytest.approx(box, abs=1e-4)
        assert r["score"] == pytest.approx(score)


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_numbers_equal_plain_pycocotools(dataset, gt_file, tmp_path, iou_type):
    preds = _jittered_predictions(dataset)
    if iou_type == "keypoints":
        preds = [p[p.get_field("labels") == 1] for p in preds]
    results, coco_results = do_coco_evaluation(dataset, preds, False, str(tmp_path), (iou_type,), (), 4)
    plain = _plain_cocoeval(gt_file, str(tmp_path / (iou_type + ".json")), iou_type)
    assert 0.05 < plain.stats[0] < 0.95  # imperfect predictions, not a degenerate case
    ours = list(results.results[iou_type].values())
    assert ours == plain.stats[: len(ours)].tolist()
    # the in-memory path (no output folder) gives all 12 (keypoints: 10) stats identically
    in_memory = evaluate_predictions_on_coco(dataset.coco, coco_results[iou_type], None, iou_type)
    np.testing.assert_array_equal(in_memory.stats, plain.stats)


# ------------------------------------------------------------------------------- box proposals
def _proposals(dataset, gt_first=True):
    preds = []
    for pred in gt_predictions(dataset, masks=None):
        w, h = pred.size
        junk = torch.tensor([[0.0, 0.0, 3.0, 3.0]] * 5)
        boxes = torch.cat([pred.bbox, junk]) if gt_first else torch.cat([junk, pred.bbox])
        out = BoxList(boxes, (w, h))
        # objectness decides the order; the GT boxes score lower when not gt_first
        scores = torch.linspace(1.0, 0.1, len(boxes))
        out.add_field("objectness", scores)
        preds.append(out)
    return preds


def test_gt_boxes_as_proposals_give_full_recall(dataset):
    preds = _proposals(dataset)
    for area in ("all", "small", "medium", "large"):
        stats = evaluate_box_proposals(preds, dataset, area=area, limit=100)
        assert stats["ar"].item() == pytest.approx(1.0), area
    assert evaluate_box_proposals(preds, dataset, area="all")["num_pos"] == 7  # crowd excluded
    # only the top-`limit` proposals by objectness count
    late = _proposals(dataset, gt_first=False)
    assert evaluate_box_proposals(late, dataset, limit=5)["ar"].item() == 0.0
    assert evaluate_box_proposals(late, dataset, limit=100)["ar"].item() == pytest.approx(1.0)
    # resized proposals (network input size) are scaled back
    scaled = [p.resize((p.size[0] * 2, p.size[1] * 2)) for p in preds]
    assert evaluate_box_proposals(scaled, dataset)["ar"].item() == pytest.approx(1.0)


def test_no_proposals_give_zero_recall(dataset):
    empty = []
    for idx in range(len(dataset)):
        info = dataset.get_img_info(idx)
        b = BoxList(torch.zeros(0, 4), (info["width"], info["height"]))
        b.add_field("objectness", torch.zeros(0))
        empty.append(b)
    stats = evaluate_box_proposals(empty, dataset, area="all", limit=1000)
    assert stats["ar"].item() == 0.0 and stats["num_pos"] == 7
    assert evaluate_box_proposals(empty, dataset, area="512-inf")["ar"].item() == -1  # no such GT


def test_box_only_evaluation_saves_box_proposals(dataset, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        out = do_coco_evaluation(
            dataset, _proposals(dataset), True, str(tmp_path), ("bbox",), [["box_proposal", "AR@100", 1.0, 0.01]], 4
        )
    assert out is None  # like the original: RPN-only results are logged and saved
    res = torch.load(str(tmp_path / "box_proposals.pth"), weights_only=False)
    assert list(res.results["box_proposal"]) == COCOResults.METRICS["box_proposal"]
    assert all(v == pytest.approx(1.0) for v in res.results["box_proposal"].values())
    assert "PASS: box_proposal > AR@100" in caplog.text


# ------------------------------------------------------------------------ empty and edge cases
def _empty_predictions(dataset):
    preds = []
    for idx in range(len(dataset)):
        info = dataset.get_img_info(idx)
        b = BoxList(torch.zeros(0, 4), (info["width"], info["height"]))
        b.add_field("scores", torch.zeros(0))
        b.add_field("labels", torch.zeros(0, dtype=torch.int64))
        b.add_field("mask", torch.zeros(0, 1, 28, 28))
        b.add_field("keypoints", PersonKeypoints(torch.zeros(0, 17, 3), b.size))
        preds.append(b)
    return preds


def test_empty_predictions_give_zero_ap(dataset, tmp_path):
    results, coco_results = do_coco_evaluation(
        dataset,
        _empty_predictions(dataset),
        False,
        str(tmp_path),
        ("bbox", "segm", "keypoints"),
        (),
        4,
        per_class_ap=True,
    )
    assert coco_results == {"bbox": [], "segm": [], "keypoints": []}
    for task in ("bbox", "segm"):
        assert all(v == 0.0 for v in results.results[task].values()), results
    assert all(v == 0.0 for v in results.results["keypoints"].values())
    assert results.per_class["bbox"] == OrderedDict([("person", 0.0), ("car", 0.0), ("dog", 0.0)])
    with open(str(tmp_path / "bbox.json")) as f:
        assert json.load(f) == []


def test_per_class_ap(dataset, caplog):
    # perfect person and car, no dog detections at all
    preds = [p[p.get_field("labels") != 3] for p in gt_predictions(dataset)]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        results, _ = do_coco_evaluation(dataset, preds, False, None, ("bbox", "segm"), (), 4, per_class_ap=True)
    for task in ("bbox", "segm"):
        per_class = results.per_class[task]
        assert list(per_class) == ["person", "car", "dog"]
        assert per_class["person"] == pytest.approx(1.0) and per_class["car"] == pytest.approx(1.0)
        assert per_class["dog"] == 0.0
        assert results.results[task]["AP"] == pytest.approx(np.mean(list(per_class.values())))
    assert "Per-category bbox AP" in caplog.text and "person" in caplog.text
    # without the option nothing per class is computed
    results, _ = do_coco_evaluation(dataset, preds, False, None, ("bbox",), (), 4)
    assert results.per_class == {}


def test_per_class_ap_matches_precision_of_plain_cocoeval(dataset, gt_file, tmp_path):
    preds = _jittered_predictions(dataset, seed=3)
    results, _ = do_coco_evaluation(dataset, preds, False, str(tmp_path), ("bbox",), (), 4, per_class_ap=True)
    plain = _plain_cocoeval(gt_file, str(tmp_path / "bbox.json"), "bbox")
    for k, name in enumerate(["person", "car", "dog"]):
        p = plain.eval["precision"][:, :, k, 0, 2]
        assert results.per_class["bbox"][name] == pytest.approx(float(np.mean(p[p > -1])))
    assert compute_per_class_ap(plain) == results.per_class["bbox"]


def test_check_expected_results_pass_and_fail(caplog):
    res = COCOResults("bbox", "segm")
    res.results["bbox"]["AP"] = 0.378
    res.results["segm"]["AP"] = 0.342
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ok = check_expected_results(res, [["bbox", "AP", 0.378, 0.002], ["segm", "AP", 0.36, 0.002]], 4)
    assert ok is False
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    assert records[0][0] == "INFO" and records[0][1].startswith("PASS: bbox > AP sanity check")
    assert records[1][0] == "ERROR" and records[1][1].startswith("FAIL: segm > AP sanity check")
    assert "range=(0.3520, 0.3680)" in records[1][1]
    caplog.clear()
    # the original code's (mean, std) pair form; no expectations -> nothing logged, True
    assert check_expected_results(res, [("bbox", "AP", (0.378, 0.002))], 4) is True
    assert check_expected_results(res, [], 4) is True


def test_coco_results_repr_and_update(dataset):
    results, _ = do_coco_evaluation(dataset, gt_predictions(dataset), False, None, ("bbox",), (), 4)
    text = repr(results)
    assert "Task: bbox\nAP, AP50, AP75, APs, APm, APl\n1.0000, 1.0000" in text
    with pytest.raises(ValueError):
        COCOResults("bogus")
    fresh = COCOResults("keypoints")
    assert all(v == -1 for v in fresh.results["keypoints"].values())


def test_zero_predictions_for_some_images(dataset):
    preds = gt_predictions(dataset)
    preds[0] = preds[0][torch.zeros(len(preds[0]), dtype=torch.bool)]  # image 42 gets nothing
    results, coco_results = do_coco_evaluation(dataset, preds, False, None, ("bbox", "segm"), (), 4)
    assert all(r["image_id"] != 42 for r in coco_results["bbox"])
    assert 0.0 < results.results["bbox"]["AP"] < 1.0
    assert prepare_for_coco_detection(preds[:1], dataset) == []


# ------------------------------------------------------------------------------------ dispatch
def test_evaluate_dispatches_on_dataset_class(dataset, tmp_path):
    results, _ = evaluate(
        dataset,
        gt_predictions(dataset),
        str(tmp_path),
        box_only=False,
        iou_types=("bbox",),
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    assert results.results["bbox"]["AP"] == pytest.approx(1.0)

    class MyCOCO(COCODataset):  # subclasses are COCO too
        pass

    sub = MyCOCO.__new__(MyCOCO)
    sub.__dict__.update(dataset.__dict__)
    results, _ = evaluate(sub, gt_predictions(dataset), None, iou_types=("bbox",))
    assert results.results["bbox"]["AP"] == pytest.approx(1.0)

    class FancyDataset(object):
        pass

    with pytest.raises(NotImplementedError, match="FancyDataset"):
        evaluate(FancyDataset(), [], None)
