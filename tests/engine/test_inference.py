"""engine.inference: running a (stub) model over a list-based data loader, gathering, saving
predictions.pth, evaluating (ground truth as predictions -> AP 100%), non-main ranks."""

import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO
from torch import nn
from torch.nn import functional as F

import maskrcnn_benchmark.engine.inference as inference_module
from maskrcnn_benchmark.engine.inference import (
    _accumulate_predictions_from_multiple_gpus,
    compute_on_dataset,
    inference,
)
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList, to_image_list
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints
from maskrcnn_benchmark.utils.timer import Timer

LOGGER = "maskrcnn_benchmark.inference"
IMAGES = [(11, 320, 240), (3, 90, 140), (8, 64, 64)]  # (coco id, width, height); id 8 has no objects
OBJECTS = [(11, 1, 20, 10, 150, 200), (11, 4, 100, 60, 40, 30), (3, 4, 5, 5, 12, 10), (3, 1, 30, 20, 50, 110)]
SCALE = 2  # the network input is twice the original size


def _write_gt(path):
    rng = np.random.RandomState(1)
    sizes = {i: (w, h) for i, w, h in IMAGES}
    anns = []
    for k, (img, cat, x, y, w, h) in enumerate(OBJECTS):
        width, height = sizes[img]
        poly = [x, y, x + w, y, x + w / 2.0, y + h]  # a triangle
        rle = mask_util.merge(mask_util.frPyObjects([poly], height, width))
        kps = [0.0] * 51
        if cat == 1:
            kps = sum(([float(x + rng.uniform(0, w)), float(y + rng.uniform(0, h)), 2] for _ in range(17)), [])
        anns.append(
            {
                "id": k + 1,
                "image_id": img,
                "category_id": cat,
                "segmentation": [poly],
                "iscrowd": 0,
                "area": float(mask_util.area(rle)),
                "bbox": [x, y, w, h],
                "keypoints": kps,
                "num_keypoints": 17 if cat == 1 else 0,
            }
        )
    gt = {
        "images": [{"id": i, "width": w, "height": h} for i, w, h in IMAGES],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": PersonKeypoints.NAMES}, {"id": 4, "name": "kite"}],
    }
    with open(path, "w") as f:
        json.dump(gt, f)


class COCODataset(object):
    """Stand-in exposing what the evaluation uses."""

    def __init__(self, ann_file):
        self.coco = COCO(ann_file)
        self.id_to_img_map = {idx: img for idx, (img, _, _) in enumerate(IMAGES)}
        self.contiguous_category_id_to_json_id = {1: 1, 2: 4}

    def get_img_info(self, idx):
        return self.coco.imgs[self.id_to_img_map[idx]]

    def __len__(self):
        return len(IMAGES)


class ListLoader(object):
    """A data loader that is a list of batches (ImageList, targets, dataset indices)."""

    def __init__(self, dataset, batch_size=2):
        self.dataset = dataset
        self.batches = []
        for start in range(0, len(dataset), batch_size):
            ids = tuple(range(start, min(start + batch_size, len(dataset))))
            images = []
            for i in ids:
                info = dataset.get_img_info(i)
                # the pixel values carry the dataset index, so the stub model can look it up
                images.append(torch.full((3, info["height"] * SCALE, info["width"] * SCALE), float(i)))
            self.batches.append((to_image_list(images, size_divisible=32), (None,) * len(ids), ids))

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def _gt_prediction(dataset, idx):
    """The image's ground truth as a detection at the network's input size."""
    info = dataset.get_img_info(idx)
    w, h = info["width"], info["height"]
    anns = dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=dataset.id_to_img_map[idx]))
    boxes = torch.tensor(
        [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2] - 1, a["bbox"][1] + a["bbox"][3] - 1] for a in anns],
        dtype=torch.float32,
    ).reshape(-1, 4)
    pred = BoxList(boxes, (w, h))
    pred.add_field("scores", torch.ones(len(anns)))
    pred.add_field("labels", torch.tensor([1 if a["category_id"] == 1 else 2 for a in anns], dtype=torch.int64))
    pred.add_field("objectness", torch.ones(len(anns)))
    masks = [torch.from_numpy(dataset.coco.annToMask(a)) for a in anns]
    masks = torch.stack(masks)[:, None].float() if masks else torch.zeros(0, 1, h, w)
    pred.add_field(
        "keypoints", PersonKeypoints(torch.tensor([a["keypoints"] for a in anns]).reshape(-1, 17, 3), (w, h))
    )
    pred = pred.resize((w * SCALE, h * SCALE))
    pred.add_field("mask", F.interpolate(masks, scale_factor=SCALE, mode="nearest") > 0.5)
    return pred


class StubModel(nn.Module):
    """Returns the ground truth of each image it is given (found from the pixel values)."""

    def __init__(self, dataset):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.dataset = dataset
        self.calls = []

    def forward(self, images):
        assert isinstance(images, ImageList)
        self.calls.append((self.training, torch.is_grad_enabled(), torch.is_autocast_enabled("cpu")))
        out = []
        for tensor, (h, w) in zip(images.tensors, images.image_sizes):
            pred = _gt_prediction(self.dataset, int(tensor[0, 0, 0]))
            assert pred.size == (w, h)
            pred.add_field("scores", pred.get_field("scores") * self.weight.cpu())  # would carry grad
            out.append(pred)
        return out


@pytest.fixture
def dataset(tmp_path):
    path = str(tmp_path / "gt.json")
    _write_gt(path)
    return COCODataset(path)


def test_inference_with_gt_model_gives_perfect_ap(dataset, tmp_path, caplog):
    model = StubModel(dataset)
    model.train()
    out = str(tmp_path / "inference" / "coco_test")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        results, coco_results = inference(
            model,
            ListLoader(dataset),
            "coco_test",
            iou_types=("bbox", "segm", "keypoints"),
            device="cpu",
            output_folder=out,
            per_class_ap=True,
            expected_results=[["bbox", "AP", 1.0, 0.001]],
        )
    for task, metrics in results.results.items():
        for metric, value in metrics.items():
            assert value == pytest.approx(1.0), (task, metric, value)
    assert list(results.per_class["bbox"]) == ["person", "kite"]
    assert model.calls == [(False, False, False)] * 2  # eval mode, no grad, two batches
    assert "Start evaluation on coco_test dataset(3 images)." in caplog.text
    assert "Total run time:" in caplog.text and "Model inference time:" in caplog.text
    assert "PASS: bbox > AP" in caplog.text
    predictions = torch.load(os.path.join(out, "predictions.pth"), weights_only=False)
    assert [len(p) for p in predictions] == [2, 2, 0]
    assert [p.size for p in predictions] == [(w * SCALE, h * SCALE) for _, w, h in IMAGES]
    assert not predictions[0].get_field("scores").requires_grad
    for name in ("bbox.json", "segm.json", "keypoints.json", "coco_results.pth"):
        assert os.path.isfile(os.path.join(out, name))
    assert {r["image_id"] for r in coco_results["bbox"]} == {11, 3}


def test_inference_box_only(dataset, tmp_path):
    assert (
        inference(
            StubModel(dataset),
            ListLoader(dataset),
            "coco_test",
            box_only=True,
            device="cpu",
            output_folder=str(tmp_path),
        )
        is None
    )
    res = torch.load(str(tmp_path / "box_proposals.pth"), weights_only=False)
    assert res.results["box_proposal"]["AR@100"] == pytest.approx(1.0)


def test_inference_on_a_non_main_rank_returns_none(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(inference_module, "is_main_process", lambda: False)
    monkeypatch.setattr("maskrcnn_benchmark.utils.comm.get_rank", lambda: 1)

    def no_evaluation(**kwargs):
        raise AssertionError("only the main process evaluates")

    monkeypatch.setattr(inference_module, "evaluate", no_evaluation)
    assert (
        inference(StubModel(dataset), ListLoader(dataset), "coco_test", device="cpu", output_folder=str(tmp_path))
        is None
    )
    assert not os.path.exists(str(tmp_path / "predictions.pth"))


def test_compute_on_dataset_outputs_cpu_dict_and_times_model(dataset):
    model = StubModel(dataset)
    timer = Timer()
    results = compute_on_dataset(
        model, ListLoader(dataset, batch_size=1), "cpu", timer=timer, autocast_dtype="bfloat16"
    )
    assert sorted(results) == [0, 1, 2] and all(isinstance(k, int) for k in results)
    assert all(r.bbox.device.type == "cpu" for r in results.values())
    assert timer.calls == 3 and timer.total_time > 0
    assert model.calls == [(False, False, True)] * 3  # autocast on (bfloat16 on the CPU)
    with pytest.raises(ValueError):
        compute_on_dataset(model, ListLoader(dataset), "cpu", autocast_dtype="int8")


def test_accumulate_merges_ranks_in_dataset_order(monkeypatch, caplog):
    boxes = [BoxList(torch.zeros(i, 4), (10, 10)) for i in range(4)]
    monkeypatch.setattr(inference_module, "gather", lambda d: [{0: boxes[0], 2: boxes[2]}, {3: boxes[3], 1: boxes[1]}])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        merged = _accumulate_predictions_from_multiple_gpus({})
    assert [len(b) for b in merged] == [0, 1, 2, 3]
    assert "not a contiguous set" not in caplog.text

    monkeypatch.setattr(inference_module, "gather", lambda d: [d])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        merged = _accumulate_predictions_from_multiple_gpus({0: boxes[0], 2: boxes[2]})
    assert [len(b) for b in merged] == [0, 2]
    assert "not a contiguous set" in caplog.text
    assert _accumulate_predictions_from_multiple_gpus({}) == []

    monkeypatch.setattr(inference_module, "is_main_process", lambda: False)
    assert _accumulate_predictions_from_multiple_gpus({0: boxes[0]}) is None


# ------------------------------------------------------------------------ test-time augmentation
class RectangleFinder(nn.Module):
    """Detects the one bright rectangle of the image (any size, possibly flipped) and returns it
    the way a box head built with TEST.BBOX_AUG.ENABLED does: every class's box, [N * C, 4]."""

    def __init__(self):
        super().__init__()
        self.input_sizes = []

    def forward(self, images):
        out = []
        for tensor, (h, w) in zip(images.tensors, images.image_sizes):
            self.input_sizes.append((w, h))
            ys, xs = torch.nonzero(tensor[:, :h, :w].mean(0) > 0, as_tuple=True)
            box = torch.tensor([[xs.min(), ys.min(), xs.max(), ys.max()]], dtype=torch.float32)
            boxlist = BoxList(box.repeat(2, 1), (w, h))  # background and class 1
            boxlist.add_field("scores", torch.tensor([0.1, 0.9]))
            out.append(boxlist)
        return out


def test_bbox_aug_maps_every_transform_back_and_merges(dataset):
    from PIL import Image

    from maskrcnn_benchmark.config import cfg as global_cfg
    from maskrcnn_benchmark.engine.bbox_aug import im_detect_bbox_aug

    cfg = global_cfg.clone()
    cfg.merge_from_list(
        [
            "INPUT.MIN_SIZE_TEST",
            100,
            "INPUT.MAX_SIZE_TEST",
            1000,
            "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
            2,
            "TEST.BBOX_AUG.ENABLED",
            True,
            "TEST.BBOX_AUG.H_FLIP",
            True,
            "TEST.BBOX_AUG.SCALES",
            (150, 200),
            "TEST.BBOX_AUG.SCALE_H_FLIP",
            True,
            "DATALOADER.SIZE_DIVISIBILITY",
            32,
        ]
    )
    pixels = np.zeros((80, 120, 3), dtype=np.uint8)
    pixels[20:50, 10:40] = 255  # x 10..39, y 20..49 (inclusive) at the original size
    model = RectangleFinder()
    results = im_detect_bbox_aug(model, [Image.fromarray(pixels)], "cpu", cfg=cfg)
    # identity, flip, 2 scales x (plain, flip)
    assert model.input_sizes == [(150, 100)] * 2 + [(225, 150)] * 2 + [(300, 200)] * 2
    (result,) = results
    assert result.size == (150, 100)  # the identity transform's size
    assert len(result) == 1 and result.get_field("labels").tolist() == [1]  # NMS merged the 6
    assert result.bbox[0].tolist() == pytest.approx([12.5, 25, 49.5, 62], abs=1.5)
    assert result.get_field("scores").tolist() == pytest.approx([0.9])

    # each transform on its own: a flip maps back exactly, other scales up to resampling
    from maskrcnn_benchmark.engine.bbox_aug import im_detect_bbox, im_detect_bbox_hflip, im_detect_bbox_scale

    image = [Image.fromarray(pixels)]
    identity = im_detect_bbox(model, image, 100, 1000, "cpu", cfg=cfg)[0].bbox[0].tolist()
    flipped = im_detect_bbox_hflip(model, image, 100, 1000, "cpu", cfg=cfg)[0].bbox[0].tolist()
    assert flipped == pytest.approx(identity)
    for hflip in (False, True):
        scaled = im_detect_bbox_scale(model, image, 200, 1000, "cpu", hflip=hflip, cfg=cfg)[0]
        assert scaled.size == (300, 200)
        assert scaled.resize((150, 100)).bbox[0].tolist() == pytest.approx(identity, abs=1.0)


def test_compute_on_dataset_with_bbox_aug_passes_the_raw_images():
    seen = []

    def fake_aug(model, images, device):
        seen.append((images, device))
        return [BoxList(torch.zeros(1, 4), (8, 8)) for _ in images]

    batches = [(("img0", "img1"), (None, None), (0, 1)), (("img2",), (None,), (2,))]  # as BBoxAugCollator gives
    results = compute_on_dataset(StubModel(None), batches, "cpu", bbox_aug=fake_aug)
    assert sorted(results) == [0, 1, 2]
    assert [s[0] for s in seen] == [("img0", "img1"), ("img2",)]
    assert seen[0][1] == torch.device("cpu")


def test_bbox_aug_true_uses_the_global_config_as_the_original(monkeypatch):
    from maskrcnn_benchmark.config import cfg as global_cfg
    from maskrcnn_benchmark.engine import bbox_aug

    configs = []

    def from_config(c):
        configs.append(c)
        return lambda model, images, device: [BoxList(torch.zeros(1, 4), (8, 8)) for _ in images]

    monkeypatch.setattr(bbox_aug.BoxTestTimeAugmentation, "from_config", staticmethod(from_config))
    batches = [(("img0",), (None,), (0,))]
    assert sorted(compute_on_dataset(StubModel(None), batches, "cpu", bbox_aug=True)) == [0]
    assert configs == [global_cfg]
    with pytest.raises(TypeError, match="bbox_aug must be"):
        compute_on_dataset(StubModel(None), batches, "cpu", bbox_aug="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compute_on_dataset_on_cuda_with_fp16_autocast(dataset):
    timer = Timer()
    results = compute_on_dataset(
        StubModel(dataset).cuda(), ListLoader(dataset), "cuda", timer=timer, autocast_dtype=torch.float16
    )
    assert sorted(results) == [0, 1, 2] and timer.calls == 2
    assert all(r.bbox.device.type == "cpu" for r in results.values())
