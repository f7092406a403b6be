"""CityScapesDataset on a tiny leftImg8bit + gtFine tree written on the fly: boxes, labels and masks
in both modes against hand-computed values, the two modes against each other, min_area, mini, image
info, malformed annotations, and the catalog / build_dataset / make_data_loader wiring."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.datasets import CityScapesDataset
from maskrcnn_benchmark.data.datasets.cityscapes import CityscapesAnnotationError
from maskrcnn_benchmark.data.transforms import Compose, RandomHorizontalFlip, Resize, ToTensor

W, H = 64, 48
LABEL_IDS = {"road": 7, "sky": 23, "person": 24, "rider": 25, "car": 26, "caravan": 29, "bicycle": 33}
LABEL_IDS["cargroup"] = 26  # a crowd: its pixels hold the plain label id of car
RECT = {"car": (4, 6, 20, 16), "rider": (10, 10, 30, 40), "caravan": (40, 5, 60, 20), "bicycle": (50, 2, 53, 4)}


def _rect(x1, y1, x2, y2):
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


# split -> image name -> [(label, polygon)], in drawing order (later objects cover earlier ones).
TREE = {
    "train": {
        "aachen_000000_000019": [
            ("road", _rect(0, 40, 63, 47)),  # no instances: skipped
            ("car", _rect(*RECT["car"])),
            ("person", [[30, 10], [40, 10], [35, 30]]),
            ("cargroup", _rect(44, 30, 60, 44)),  # a crowd: skipped
            ("bicycle", _rect(*RECT["bicycle"])),  # box area (53 - 50) * (4 - 2) = 6
        ],
        "aachen_000001_000019": [("rider", _rect(*RECT["rider"])), ("caravan", _rect(*RECT["caravan"]))],
        "bochum_000000_000313": [("sky", _rect(0, 0, 63, 10))],  # no instance at all
    },
    "val": {"frankfurt_000000_000294": [("car", _rect(2, 2, 61, 45))]},
}


def instance_ids(objects, size=(W, H)):
    """The instanceIds image of `objects`, drawn as cityscapesscripts draws it (PIL, borders included):
    label_id * 1000 + k for the k-th instance of a class, the plain label id otherwise."""
    ids = Image.new("I", size, 0)
    draw = ImageDraw.Draw(ids)
    counts = {}
    for label, polygon in objects:
        value = LABEL_IDS[label]
        if label in ("person", "rider", "car", "caravan", "bicycle"):
            value = value * 1000 + counts.get(label, 0)
            counts[label] = counts.get(label, 0) + 1
        draw.polygon([tuple(p) for p in polygon], fill=value, outline=value)
    return Image.fromarray(np.asarray(ids).astype(np.uint16))  # a 16-bit PNG, like Cityscapes'


def write_cityscapes(root, tree=TREE, size=(W, H)):
    """leftImg8bit/ and gtFine/ under root (images, polygons json, instanceIds png); returns the two folders."""
    img_root, ann_root = os.path.join(root, "leftImg8bit"), os.path.join(root, "gtFine")
    for split, images in tree.items():
        for name, objects in images.items():
            city = name.split("_")[0]
            for folder in (os.path.join(img_root, split, city), os.path.join(ann_root, split, city)):
                os.makedirs(folder, exist_ok=True)
            Image.new("RGB", size, (90, 120, 30)).save(os.path.join(img_root, split, city, name + "_leftImg8bit.png"))
            prefix = os.path.join(ann_root, split, city, name + "_gtFine_")
            with open(prefix + "polygons.json", "w") as f:
                objs = [{"label": label, "polygon": polygon} for label, polygon in objects]
                json.dump({"imgHeight": size[1], "imgWidth": size[0], "objects": objs}, f)
            instance_ids(objects, size).save(prefix + "instanceIds.png")
    return img_root, ann_root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_cityscapes(str(tmp_path_factory.mktemp("cityscapes")))


def _ann_path(ann_root, name, suffix, split="train"):
    return os.path.join(ann_root, split, name.split("_")[0], name + "_gtFine_" + suffix)


def test_classes_and_maps_as_the_original():
    classes = CityScapesDataset.CLASSES
    assert classes == (
        "__background__",
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "caravan",
        "trailer",
        "train",
        "motorcycle",
        "bicycle",
    )


def test_poly_mode_boxes_labels_masks(tree):
    ds = CityScapesDataset(*tree, split="train", mode="poly")
    assert len(ds) == 3 and ds.name_to_id["car"] == 3 and ds.id_to_name[10] == "bicycle"
    assert ds.cityscapesID_to_ind == {24: 1, 25: 2, 26: 3, 27: 4, 28: 5, 29: 6, 30: 7, 31: 8, 32: 9, 33: 10}
    img, target, index = ds[0]
    assert index == 0 and img.size == (W, H) and img.mode == "RGB"
    assert target.mode == "xyxy" and target.size == (W, H)
    # File order; road and the car crowd are skipped; boxes are the vertices' extent.
    assert target.bbox.tolist() == [[4, 6, 20, 16], [30, 10, 40, 30], [50, 2, 53, 4]]
    assert target.get_field("labels").tolist() == [3, 1, 10]
    masks = target.get_field("masks")
    assert masks.mode == "poly" and len(masks) == 3
    tensor = masks.get_mask_tensor()
    # pycocotools fills a rectangle's vertices [x1, x2) x [y1, y2): 16 x 10 pixels for the car.
    assert tensor[0].sum() == 160 and tensor[0, 6:16, 4:20].all() and tensor[2].sum() == 6

    _, target, _ = ds[1]
    assert target.bbox.tolist() == [list(RECT["rider"]), list(RECT["caravan"])]
    assert target.get_field("labels").tolist() == [2, 6]  # caravan is one of the original's classes


def test_mask_mode_boxes_labels_masks(tree):
    ds = CityScapesDataset(*tree, split="train", mode="mask")
    _, target, _ = ds[0]
    # Instance id order (person 24000, car 26000, bicycle 33000); boxes are the inclusive pixel boxes.
    assert target.bbox.tolist() == [[30, 10, 40, 30], [4, 6, 20, 16], [50, 2, 53, 4]]
    assert target.get_field("labels").tolist() == [1, 3, 10]
    masks = target.get_field("masks")
    assert masks.mode == "mask" and len(masks) == 3
    tensor = masks.get_mask_tensor()
    assert tensor[1].sum() == 17 * 11 and tensor[1, 6:17, 4:21].all() and tensor[2].sum() == 4 * 3


def test_both_modes_agree(tree):
    poly = CityScapesDataset(*tree, split="train", mode="poly")
    mask = CityScapesDataset(*tree, split="train", mode="mask")
    for i in range(len(poly)):
        a, b = poly.get_groundtruth(i), mask.get_groundtruth(i)
        order_a = sorted(range(len(a)), key=lambda k: a.get_field("labels")[k].item())
        order_b = sorted(range(len(b)), key=lambda k: b.get_field("labels")[k].item())
        a, b = a[order_a], b[order_b]
        assert torch.equal(a.bbox, b.bbox) and torch.equal(a.get_field("labels"), b.get_field("labels"))
        if len(a) == 0:
            continue
        ma = a.get_field("masks").get_mask_tensor().reshape(len(a), H, W).bool()
        mb = b.get_field("masks").get_mask_tensor().reshape(len(b), H, W).bool()
        # The polygon rasterised by pycocotools lies inside the one Cityscapes drew (borders included);
        # they differ by the border pixels only (half of the 4 x 3 pixel bicycle, less of the others).
        assert not (ma & ~mb).any()
        for k in range(len(a)):
            inter, union = (ma[k] & mb[k]).sum().item(), (ma[k] | mb[k]).sum().item()
            assert inter / union > 0.45, (i, k, inter, union)


def test_empty_image_has_an_empty_target(tree):
    for mode in ("poly", "mask"):
        ds = CityScapesDataset(*tree, split="train", mode=mode)
        img, target, index = ds[2]
        assert index == 2 and img.size == (W, H) and len(target) == 0
        assert target.bbox.shape == (0, 4) and target.get_field("labels").shape == (0,)
        assert len(target.get_field("masks")) == 0


def test_min_area_uses_the_original_box_area(tree):
    for mode in ("poly", "mask"):
        kept = CityScapesDataset(*tree, split="train", mode=mode, min_area=6)[0][1]
        assert 10 in kept.get_field("labels").tolist()
        dropped = CityScapesDataset(*tree, split="train", mode=mode, min_area=7)[0][1]
        assert sorted(dropped.get_field("labels").tolist()) == [1, 3] and len(dropped.get_field("masks")) == 2


def test_mini_strides_over_the_split(tree):
    ds = CityScapesDataset(*tree, split="train", mode="poly", mini=2)  # stride 3 // 2 + 1 = 2
    assert [os.path.basename(p) for p in ds.img_paths] == [
        "aachen_000000_000019_leftImg8bit.png",
        "bochum_000000_000313_leftImg8bit.png",
    ]
    assert len(CityScapesDataset(*tree, split="train", mode="poly", mini=10)) == 3
    with pytest.raises(ValueError, match="mini"):
        CityScapesDataset(*tree, split="train", mini=0)


def test_img_info_and_transforms(tree):
    ds = CityScapesDataset(*tree, split="val", mode="mask")
    info = ds.get_img_info(0)
    assert info["width"] == W and info["height"] == H and info["idx"] == 0
    assert info["id"] == "frankfurt_000000_000294"
    assert info["file_name"] == os.path.join("frankfurt", "frankfurt_000000_000294_leftImg8bit.png")
    assert info["ann_path"].endswith("frankfurt_000000_000294_gtFine_instanceIds.png")
    assert CityScapesDataset(tree[0], tree[1], "val").mode == "mask"  # the original's default

    ds.transforms = Compose([Resize(96, 200), RandomHorizontalFlip(1.0), ToTensor()])
    img, target, _ = ds[0]
    assert tuple(img.shape) == (3, 96, 128) and target.size == (128, 96)
    # The box (2, 2, 61, 45) doubled and mirrored: x -> 127 - x.
    assert target.bbox.tolist() == [[127 - 122, 4, 127 - 4, 90]]
    assert target.get_field("masks").get_mask_tensor().shape == (96, 128)


def test_unknown_labels_are_skipped(tmp_path):
    tree = {"train": {"a_0_0": [("car", _rect(1, 1, 9, 9))]}}
    img_root, ann_root = write_cityscapes(str(tmp_path), tree)
    path = _ann_path(ann_root, "a_0_0", "polygons.json")
    with open(path) as f:
        ann = json.load(f)
    ann["objects"].insert(0, {"label": "unicorn", "polygon": [[0, 0]]})  # not checked: skipped first
    with open(path, "w") as f:
        json.dump(ann, f)
    target = CityScapesDataset(img_root, ann_root, "train", mode="poly")[0][1]
    assert target.get_field("labels").tolist() == [3]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not valid JSON"),
        ('{"imgWidth": 64, "imgHeight": 48}', "'objects'"),
        ('{"objects": [{"polygon": [[0, 0], [1, 0], [1, 1]]}]}', "object 0: field 'label'"),
        ('{"objects": [{"label": "car", "polygon": [[0, 0], [5, 5]]}]}', "object 0 (car): field 'polygon' has 2 point"),
        ('{"objects": [{"label": "car", "polygon": [[0, 0], [5], [1, 1]]}]}', "point 1 is not [x, y]"),
        ('{"objects": [{"label": "car"}]}', "field 'polygon' must be a list"),
        ('{"imgWidth": 64, "imgHeight": 0, "objects": []}', "'imgHeight' must be a positive integer, got 0"),
    ],
)
def test_malformed_polygons_name_file_and_field(tmp_path, content, message):
    img_root, ann_root = write_cityscapes(str(tmp_path), {"train": {"a_0_0": []}})
    path = _ann_path(ann_root, "a_0_0", "polygons.json")
    with open(path, "w") as f:
        f.write(content)
    ds = CityScapesDataset(img_root, ann_root, "train", mode="poly")
    with pytest.raises(CityscapesAnnotationError) as info:
        ds[0]
    assert path in str(info.value) and message in str(info.value)


def test_bad_instance_ids_and_sizes(tmp_path):
    img_root, ann_root = write_cityscapes(str(tmp_path), {"train": {"a_0_0": [("car", _rect(1, 1, 9, 9))]}})
    ids = np.zeros((H, W), dtype=np.uint16)
    ids[3, 3] = 7001  # road has no instances
    path = _ann_path(ann_root, "a_0_0", "instanceIds.png")
    Image.fromarray(ids).save(path)
    with pytest.raises(CityscapesAnnotationError, match="7001.*label id 7"):
        CityScapesDataset(img_root, ann_root, "train", mode="mask")[0]

    Image.new("RGB", (W + 1, H)).save(os.path.join(img_root, "train", "a", "a_0_0_leftImg8bit.png"))
    with pytest.raises(CityscapesAnnotationError, match="64x48.*65x48"):
        CityScapesDataset(img_root, ann_root, "train", mode="poly")[0]
    with pytest.raises(IndexError):
        CityScapesDataset(img_root, ann_root, "train", mode="poly")[1]


def test_missing_folders_files_and_bad_arguments(tmp_path):
    img_root, ann_root = write_cityscapes(str(tmp_path), {"train": {"a_0_0": [], "b_0_0": []}})
    with pytest.raises(FileNotFoundError, match=os.path.join(img_root, "val")):
        CityScapesDataset(img_root, ann_root, "val")
    with pytest.raises(ValueError, match="split"):
        CityScapesDataset(img_root, ann_root, "trainval")
    with pytest.raises(NotImplementedError, match="'rle'"):
        CityScapesDataset(img_root, ann_root, "train", mode="rle")
    missing = _ann_path(ann_root, "b_0_0", "instanceIds.png")
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match=missing):
        CityScapesDataset(img_root, ann_root, "train", mode="mask")
    assert len(CityScapesDataset(img_root, ann_root, "train", mode="poly")) == 2
    os.makedirs(os.path.join(img_root, "test"))
    os.makedirs(os.path.join(ann_root, "test"))
    with pytest.raises(FileNotFoundError, match="no Cityscapes images"):
        CityScapesDataset(img_root, ann_root, "test")


def test_catalog_build_dataset_and_data_loader(tmp_path, monkeypatch):
    write_cityscapes(str(tmp_path / "cityscapes"))
    monkeypatch.setenv("MASKRCNN_DATASETS", str(tmp_path))
    assert DatasetCatalog.get("cityscapes_poly_instance_train")["factory"] == "CityScapesDataset"
    (train,) = build_dataset(["cityscapes_poly_instance_train"], None, DatasetCatalog, is_train=True)
    assert isinstance(train, CityScapesDataset) and train.mode == "poly" and len(train) == 3
    (val,) = build_dataset(["cityscapes_mask_instance_minival"], None, DatasetCatalog, is_train=False)
    assert (
        val.mode == "mask" and val.split == "val" and len(val) == 1 and val.name == "cityscapes_mask_instance_minival"
    )

    cfg = default_cfg.clone()
    cfg.merge_from_file(
        os.path.join(os.path.dirname(__file__), *[".."] * 3, "configs/cityscapes/e2e_mask_rcnn_R_50_FPN_1x_poly.yaml")
    )
    cfg.merge_from_list(["INPUT.MIN_SIZE_TRAIN", (32,), "INPUT.MAX_SIZE_TRAIN", 64, "SOLVER.IMS_PER_BATCH", 2])
    cfg.merge_from_list(["SOLVER.MAX_ITER", 2, "DATALOADER.NUM_WORKERS", 0])
    images, targets, indices = next(iter(make_data_loader(cfg, is_train=True)))
    assert images.tensors.shape[0] == 2 and all(t.has_field("masks") for t in targets)
    # NUM_CLASSES is checked against the 10 classes (the binarymask config's 9 fails here, not in the loss).
    cfg.merge_from_list(["MODEL.ROI_BOX_HEAD.NUM_CLASSES", 9])
    with pytest.raises(ValueError, match="set it to 11"):
        make_data_loader(cfg, is_train=True)
