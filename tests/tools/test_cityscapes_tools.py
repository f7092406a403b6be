"""tools/cityscapes/: the gtFine -> COCO json conversion (on a tiny gtFine tree written on the fly,
without cityscapesscripts) and the COCO -> Cityscapes weight surgery (on a small fake checkpoint)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.engine.class_names import COCO_CATEGORIES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "tools", "cityscapes")


def _load(name):
    sys.path.insert(0, TOOLS)
    try:
        spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(TOOLS)


convert = _load("convert_cityscapes_to_coco")
inst = _load("instances2dict_with_polygons")
surgery = _load("coco_to_cityscapes_weights")

W, H = 40, 30


def _ids_image(rects):
    """An instanceIds array: rects are (value, x1, y1, x2, y2), inclusive."""
    ids = np.zeros((H, W), dtype=np.uint16)
    ids[:, :] = 7  # road (a label without instances)
    for value, x1, y1, x2, y2 in rects:
        ids[y1 : y2 + 1, x1 : x2 + 1] = value
    return ids


TRAIN = {
    "aachen_000000_000019": [
        (24000, 3, 2, 8, 9),  # person: 6 x 8 pixels
        (26000, 10, 10, 19, 14),  # car
        (26001, 22, 5, 31, 20),  # another car
        (26, 0, 25, 5, 29),  # a crowd of cars (no instance id): left out
        (29000, 33, 0, 36, 3),  # caravan: not one of the 8 classes
        (33000, 38, 28, 38, 28),  # bicycle of 1 pixel: a contour of 1 point, skipped
    ],
    "bochum_000000_000313": [(25000, 1, 1, 4, 12), (32001, 20, 20, 30, 27)],  # rider, motorcycle
}
VAL = {"frankfurt_000000_000294": [(28000, 0, 0, 39, 29)]}  # a bus filling the image


def write_gtfine(root):
    for split, images in (("train", TRAIN), ("val", VAL)):
        for prefix, rects in images.items():
            folder = os.path.join(root, "gtFine_trainvaltest", "gtFine", split, prefix.split("_")[0])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(_ids_image(rects)).save(os.path.join(folder, prefix + "_gtFine_instanceIds.png"))
            with open(os.path.join(folder, prefix + "_gtFine_polygons.json"), "w") as f:
                json.dump({"imgHeight": H, "imgWidth": W, "objects": []}, f)
    return str(root)


def test_instances2dict_with_polygons(tmp_path):
    write_gtfine(tmp_path)
    path = os.path.join(tmp_path, "gtFine_trainvaltest", "gtFine", "train", "aachen")
    path = os.path.join(path, "aachen_000000_000019_gtFine_instanceIds.png")
    assert np.array(Image.open(path)).dtype == np.uint16
    (objects,) = inst.instances2dict_with_polygons(path).values()
    assert set(objects) == set(inst.INSTANCE_LABELS.values())
    assert [o["instID"] for o in objects["car"]] == [26000, 26001] and objects["rider"] == []
    person = objects["person"][0]
    assert person["labelID"] == 24 and person["pixelCount"] == 48
    (contour,) = person["contours"]
    xs, ys = contour[0::2], contour[1::2]
    assert (min(xs), min(ys), max(xs), max(ys)) == (3, 2, 8, 9)
    assert len(objects["caravan"]) == 1 and len(objects["bicycle"][0]["contours"][0]) == 2
    assert inst.instance_label_id(26001) == 26 and inst.instance_label_id(26) == 26


def test_convert_writes_coco_json(tmp_path):
    data = write_gtfine(tmp_path / "cityscapes")
    out = tmp_path / "annotations"
    messages = []
    written = convert.convert_cityscapes_instance_only(data, str(out), log=messages.append)
    assert [os.path.basename(p) for p in written] == [
        "instancesonly_filtered_gtFine_val.json",
        "instancesonly_filtered_gtFine_train.json",
    ]
    assert any("no test folder" in m for m in messages)
    assert any("33000" in m and "skipped" in m for m in messages)

    train = json.loads((out / "instancesonly_filtered_gtFine_train.json").read_text())
    assert train["categories"] == [{"id": i + 1, "name": n} for i, n in enumerate(convert.CATEGORIES)]
    assert convert.CATEGORIES == ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
    assert [im["file_name"] for im in train["images"]] == [
        "aachen_000000_000019_leftImg8bit.png",
        "bochum_000000_000313_leftImg8bit.png",
    ]
    assert train["images"][0] == {
        "id": 1,
        "width": W,
        "height": H,
        "file_name": "aachen_000000_000019_leftImg8bit.png",
        "seg_file_name": "aachen_000000_000019_gtFine_instanceIds.png",
    }
    anns = train["annotations"]
    # person, car, car in the first image; rider, motorcycle in the second (categories in order).
    assert [(a["image_id"], a["category_id"]) for a in anns] == [(1, 1), (1, 3), (1, 3), (2, 2), (2, 7)]
    assert [a["id"] for a in anns] == [1, 2, 3, 4, 5]
    person = anns[0]
    assert person["bbox"] == [3, 2, 6, 8] and person["area"] == 48 and person["iscrowd"] == 0
    assert anns[3]["bbox"] == [1, 1, 4, 12] and anns[4]["bbox"] == [20, 20, 11, 8]

    val = json.loads((out / "instancesonly_filtered_gtFine_val.json").read_text())
    assert len(val["images"]) == 1 and [a["category_id"] for a in val["annotations"]] == [5]
    assert val["annotations"][0]["bbox"] == [0, 0, W, H]

    # The json reads as a COCO dataset: 8 categories, boxes back in inclusive pixels.
    images = tmp_path / "images"
    images.mkdir()
    ds = COCODataset(str(out / "instancesonly_filtered_gtFine_train.json"), str(images), False)
    assert ds.class_names[1:] == convert.CATEGORIES
    assert ds._build_target(0, (W, H)).bbox[0].tolist() == [3.0, 2.0, 8.0, 9.0]


def test_convert_command_line(tmp_path):
    data = write_gtfine(tmp_path / "cityscapes")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(TOOLS, "convert_cityscapes_to_coco.py"),
            "--dataset",
            "cityscapes_instance_only",
            "--datadir",
            data,
            "--outdir",
            str(out),
            "--splits",
            "val",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(out) == ["instancesonly_filtered_gtFine_val.json"]
    with pytest.raises(FileNotFoundError, match="gtFine"):
        convert.convert_cityscapes_instance_only(str(tmp_path / "nothing"), str(out))


def _coco_state_dict(prefix="module.", agnostic=False, mask=True):
    g = torch.Generator().manual_seed(1)
    sd = {
        prefix + "backbone.body.stem.conv1.weight": torch.randn(4, 3, 7, 7, generator=g),
        prefix + "roi_heads.box.predictor.cls_score.weight": torch.randn(81, 16, generator=g),
        prefix + "roi_heads.box.predictor.cls_score.bias": torch.randn(81, generator=g),
        prefix + "roi_heads.box.predictor.bbox_pred.weight": torch.randn(8 if agnostic else 324, 16, generator=g),
        prefix + "roi_heads.box.predictor.bbox_pred.bias": torch.randn(8 if agnostic else 324, generator=g),
    }
    if mask:
        sd[prefix + "roi_heads.mask.predictor.mask_fcn_logits.weight"] = torch.randn(81, 8, 1, 1, generator=g)
        sd[prefix + "roi_heads.mask.predictor.mask_fcn_logits.bias"] = torch.randn(81, generator=g)
    return sd


def test_weight_surgery_copies_the_shared_classes():
    src = _coco_state_dict()
    out = surgery.convert_state_dict(src)
    p = "module.roi_heads."
    cls_w, cls_b = out[p + "box.predictor.cls_score.weight"], out[p + "box.predictor.cls_score.bias"]
    box_w, box_b = out[p + "box.predictor.bbox_pred.weight"], out[p + "box.predictor.bbox_pred.bias"]
    mask_w = out[p + "mask.predictor.mask_fcn_logits.weight"]
    assert cls_w.shape == (9, 16) and cls_b.shape == (9,) and box_w.shape == (36, 16) and box_b.shape == (36,)
    assert mask_w.shape == (9, 8, 1, 1) and out[p + "mask.predictor.mask_fcn_logits.bias"].shape == (9,)
    assert torch.equal(out["module.backbone.body.stem.conv1.weight"], src["module.backbone.body.stem.conv1.weight"])
    coco = {name: i for i, name in enumerate(COCO_CATEGORIES)}
    for d, name in enumerate(surgery.CITYSCAPES_CATEGORIES):
        s = 0 if d == 0 else coco.get(name)
        if s is None:  # rider: a new row
            assert name == "rider"
            assert cls_b[d] == 0 and box_b[4 * d : 4 * d + 4].eq(0).all()
            assert 0 < cls_w[d].std() < 0.05 and 0 < box_w[4 * d : 4 * d + 4].abs().max() < 0.01
            continue
        assert torch.equal(cls_w[d], src[p + "box.predictor.cls_score.weight"][s])
        assert torch.equal(cls_b[d], src[p + "box.predictor.cls_score.bias"][s])
        assert torch.equal(box_w[4 * d : 4 * d + 4], src[p + "box.predictor.bbox_pred.weight"][4 * s : 4 * s + 4])
        assert torch.equal(box_b[4 * d : 4 * d + 4], src[p + "box.predictor.bbox_pred.bias"][4 * s : 4 * s + 4])
        assert torch.equal(mask_w[d], src[p + "mask.predictor.mask_fcn_logits.weight"][s])
    assert [coco[n] for n in ("truck", "bus", "train", "motorcycle", "bicycle")] == [8, 6, 7, 4, 2]


def test_weight_surgery_variants_and_command_line(tmp_path):
    agnostic = surgery.convert_state_dict(_coco_state_dict(prefix="", agnostic=True, mask=False))
    assert agnostic["roi_heads.box.predictor.bbox_pred.weight"].shape == (8, 16)  # kept
    assert agnostic["roi_heads.box.predictor.cls_score.weight"].shape == (9, 16)
    assert "roi_heads.mask.predictor.mask_fcn_logits.weight" not in agnostic
    bad = _coco_state_dict()
    bad["module.roi_heads.box.predictor.cls_score.weight"] = torch.zeros(9, 16)
    with pytest.raises(ValueError, match="81"):
        surgery.convert_state_dict(bad)

    src = tmp_path / "coco.pth"
    torch.save({"model": _coco_state_dict(), "iteration": 90000}, src)
    dst = tmp_path / "sub" / "cityscapes.pth"
    proc = subprocess.run(
        [sys.executable, os.path.join(TOOLS, "coco_to_cityscapes_weights.py"), str(src), str(dst)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    saved = torch.load(dst, map_location="cpu")
    assert set(saved) == {"model"}
    assert saved["model"]["module.roi_heads.box.predictor.cls_score.weight"].shape == (9, 16)
    again = surgery.convert_state_dict(_coco_state_dict())  # seed 0: deterministic
    assert torch.equal(
        saved["model"]["module.roi_heads.box.predictor.cls_score.weight"],
        again["module.roi_heads.box.predictor.cls_score.weight"],
    )
