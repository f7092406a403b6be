"""PascalVOCDataset on a tiny VOCdevkit tree written on the fly: items, boxes (VOC's 1-based
pixels minus one), the difficult flag, image info, class names, malformed annotations, and the
catalog / build_dataset / evaluate wiring."""

import os

import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data.build import build_dataset
from maskrcnn_benchmark.data.datasets import PascalVOCDataset
from maskrcnn_benchmark.data.datasets.voc import VOCAnnotationError

# id -> (width, height, [(name, difficult, (xmin, ymin, xmax, ymax)), ...]) in VOC's 1-based pixels
IMAGES = {
    "000001": (40, 30, [("dog", 0, (1, 1, 20, 15)), ("person", 1, (5, 6, 30, 29))]),
    "000002": (32, 48, [("car", 0, (3, 4, 32, 48)), ("cat", 0, (7, 7, 7, 20))]),  # the cat is 1 px wide
    "000003": (24, 24, [("tvmonitor", 0, (2, 3, 10, 12))]),
}


def _xml(width, height, objects, difficult_tag=True):
    parts = [f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, difficult, (x1, y1, x2, y2) in objects:
        flag = f"<difficult>{difficult}</difficult>" if difficult_tag else ""
        parts.append(
            f"<object><name>{name}</name><truncated>0</truncated>{flag}"
            f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


def write_voc(root, images=IMAGES, split="train"):
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for img_id, (w, h, objects) in images.items():
        Image.new("RGB", (w, h), (120, 30, 200)).save(os.path.join(root, "JPEGImages", img_id + ".jpg"))
        with open(os.path.join(root, "Annotations", img_id + ".xml"), "w") as f:
            f.write(_xml(w, h, objects))
    with open(os.path.join(root, "ImageSets", "Main", split + ".txt"), "w") as f:
        f.write("\n".join(images) + "\n\n")
    return str(root)


@pytest.fixture
def voc_root(tmp_path):
    return write_voc(tmp_path / "VOC2007")


def test_classes_in_the_original_order():
    classes = PascalVOCDataset.CLASSES
    assert len(classes) == 21 and classes[0] == "__background__"
    assert classes[1:4] == ("aeroplane", "bicycle", "bird") and classes[12] == "dog" and classes[15] == "person"
    assert classes[-1] == "tvmonitor"


def test_items_boxes_labels_and_difficult(voc_root):
    ds = PascalVOCDataset(voc_root, "train")
    assert len(ds) == 3 and ds.ids == ["000001", "000002", "000003"]
    assert ds.get_img_info(1) == {"height": 48, "width": 32, "id": "000002", "file_name": "000002.jpg"}
    assert ds.map_class_id_to_class_name(12) == "dog" and ds.class_names[20] == "tvmonitor"

    img, target, index = ds[0]
    assert index == 0 and img.size == (40, 30) and img.mode == "RGB"
    assert target.mode == "xyxy" and target.size == (40, 30)
    # The difficult person is left out by default; boxes are the 1-based VOC pixels minus one.
    assert target.bbox.tolist() == [[0.0, 0.0, 19.0, 14.0]]
    assert target.get_field("labels").tolist() == [12]
    assert target.get_field("difficult").tolist() == [False]
    assert target.area().tolist() == [20.0 * 15.0]  # xmax - xmin + 1 by xmax - ymin + 1

    # A box reaching the right/bottom edge stays inside; the 1 px wide cat becomes empty and is removed.
    _, target, _ = ds[1]
    assert target.bbox.tolist() == [[2.0, 3.0, 31.0, 47.0]]
    assert target.get_field("labels").tolist() == [7]
    assert ds.get_groundtruth(1).bbox.shape == (2, 4)  # get_groundtruth does not clip

    _, target, _ = ds[-1]
    assert target.get_field("labels").tolist() == [20]


def test_use_difficult_keeps_the_difficult_objects(voc_root):
    ds = PascalVOCDataset(voc_root, "train", use_difficult=True)
    _, target, _ = ds[0]
    assert target.get_field("labels").tolist() == [12, 15]
    assert target.get_field("difficult").tolist() == [False, True]
    assert target.bbox[1].tolist() == [4.0, 5.0, 29.0, 28.0]
    plain = PascalVOCDataset(voc_root, "train")
    assert len(plain.get_groundtruth(0)) == 1 and len(plain.get_groundtruth(0, use_difficult=True)) == 2


def test_transforms_are_applied(voc_root):
    calls = []

    def transforms(img, target):
        calls.append((img.size, len(target)))
        return torch.zeros(3, 2, 2), target

    img, target, _ = PascalVOCDataset(voc_root, "train", transforms=transforms)[0]
    assert calls == [((40, 30), 1)] and img.shape == (3, 2, 2)


def test_missing_difficult_tag_means_not_difficult(tmp_path):
    root = write_voc(tmp_path / "v", {"a": (10, 10, [("bird", 0, (1, 1, 5, 5))])})
    with open(os.path.join(root, "Annotations", "a.xml"), "w") as f:
        f.write(_xml(10, 10, [("Bird ", 0, (1, 1, 5, 5))], difficult_tag=False))
    target = PascalVOCDataset(root, "train").get_groundtruth(0)
    assert target.get_field("difficult").tolist() == [False] and target.get_field("labels").tolist() == [3]


@pytest.mark.parametrize(
    "xml, field",
    [
        (
            "<annotation><size><width>10</width><height>10</height></size><object><name>dog</name>"
            "<bndbox><xmin>1</xmin><ymin>1</ymin><ymax>5</ymax></bndbox></object></annotation>",
            "xmax",
        ),
        (
            "<annotation><size><width>10</width><height>10</height></size><object><name>dog</name>"
            "<bndbox><xmin>1</xmin><ymin>a</ymin><xmax>4</xmax><ymax>5</ymax></bndbox></object></annotation>",
            "ymin",
        ),
        (
            "<annotation><size><width>10</width><height>10</height></size><object><name>unicorn</name>"
            "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>5</ymax></bndbox></object></annotation>",
            "name",
        ),
        (
            "<annotation><size><width>10</width><height>10</height></size><object><name>dog</name>"
            "</object></annotation>",
            "bndbox",
        ),
        (
            "<annotation><size><width>10</width><height>10</height></size><object><name>dog</name>"
            "<difficult>yes</difficult></object></annotation>",
            "difficult",
        ),
        ("<annotation><object><name>dog</name></object></annotation>", "size"),
        ("<annotation><size><width>10</width></size></annotation>", "height"),
        ("<annotation><size><width>10</width>", "XML"),
    ],
)
def test_malformed_annotation_names_file_and_field(tmp_path, xml, field):
    root = write_voc(tmp_path / "v", {"bad": (10, 10, [])})
    with open(os.path.join(root, "Annotations", "bad.xml"), "w") as f:
        f.write(xml)
    ds = PascalVOCDataset(root, "train")
    with pytest.raises(VOCAnnotationError) as info:
        ds[0]
    message = str(info.value)
    assert os.path.join(root, "Annotations", "bad.xml") in message and field in message


def test_size_mismatch_and_missing_files(tmp_path):
    root = write_voc(tmp_path / "v", {"a": (10, 12, [("dog", 0, (1, 1, 5, 5))])})
    Image.new("RGB", (11, 12)).save(os.path.join(root, "JPEGImages", "a.jpg"))
    with pytest.raises(VOCAnnotationError, match="a.xml.*11x12"):
        PascalVOCDataset(root, "train")[0]
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        PascalVOCDataset(root, "trainval")
    os.remove(os.path.join(root, "Annotations", "a.xml"))
    with pytest.raises(FileNotFoundError, match="a.xml"):
        PascalVOCDataset(root, "train").get_img_info(0)
    with pytest.raises(IndexError):
        PascalVOCDataset(root, "train")[1]


def test_catalog_and_build_dataset(tmp_path, monkeypatch):
    write_voc(tmp_path / "voc" / "VOC2007", split="test")
    monkeypatch.setenv("MASKRCNN_DATASETS", str(tmp_path))
    entry = DatasetCatalog.get("voc_2007_test")
    assert entry["factory"] == "PascalVOCDataset"
    (ds,) = build_dataset(["voc_2007_test"], None, DatasetCatalog, is_train=False)
    assert isinstance(ds, PascalVOCDataset) and len(ds) == 3 and ds.name == "voc_2007_test"
    assert ds.keep_difficult  # test time: difficult objects kept (evaluation ignores them), as the original
    with pytest.raises(FileNotFoundError, match="Main/train.txt"):
        build_dataset(["voc_2007_train"], None, DatasetCatalog, is_train=True)
