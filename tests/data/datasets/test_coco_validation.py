"""Validation of COCO annotation files (coco_validation and its helpers), on small json dicts.

Every kind of problem with several inputs, in both DATASETS.ON_BAD_INPUT modes: "skip" drops what
is malformed and reports it once; "error" raises ValueError naming file, ids, field and value.
"""

import copy
import json
import logging

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from maskrcnn_benchmark.data.datasets import coco_problems as P
from maskrcnn_benchmark.data.datasets.coco_geometry import boxes_outside
from maskrcnn_benchmark.data.datasets.coco_rle import decode_counts_string, rle_problem
from maskrcnn_benchmark.data.datasets.coco_validation import validate_coco_dict, validate_coco_file
from maskrcnn_benchmark.structures.bounding_box import BoxList

LOGGER = "maskrcnn_benchmark.data.datasets"
FILE = "ann.json"
NAN, INF = float("nan"), float("inf")


def _square(x, y, s):
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _rle(height, width, box, compressed=True):
    mask = np.zeros((height, width), np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 1
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(mask))
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    flat = mask.flatten(order="F")
    runs, current, value = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(current)
            current, value = 0, v
        current += 1
    return {"size": [height, width], "counts": runs + [current]}


def _base():
    """Image 1 (40x30): annotations 10 and 11; image 2 (20x50): crowd 12 and annotation 13."""
    return {
        "info": {"description": "kept as is"},
        "categories": [{"id": 1, "name": "a"}, {"id": 5, "name": "b"}],
        "images": [
            {"id": 1, "file_name": "1.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "2.png", "width": 20, "height": 50},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "bbox": [2, 3, 10, 5],
                "iscrowd": 0,
                "area": 50.0,
                "segmentation": [[2, 3, 12, 3, 12, 8, 2, 8]],
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 5,
                "bbox": [20, 10, 8, 8],
                "iscrowd": 0,
                "area": 64.0,
                "segmentation": [_square(20, 10, 8)],
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 5,
                "bbox": [1, 1, 5, 5],
                "iscrowd": 1,
                "area": 25.0,
                "segmentation": _rle(50, 20, (1, 1, 5, 5), compressed=False),
            },
            {
                "id": 13,
                "image_id": 2,
                "category_id": 1,
                "bbox": [3, 3, 10, 10],
                "iscrowd": 0,
                "area": 100.0,
                "segmentation": [_square(3, 3, 10)],
            },
        ],
    }


def _ann(data, ann_id):
    return next(a for a in data["annotations"] if a.get("id") == ann_id)


def _set_ann(ann_id, **fields):
    def edit(data):
        _ann(data, ann_id).update(fields)

    return edit


def _del_ann(ann_id, field):
    def edit(data):
        del _ann(data, ann_id)[field]

    return edit


def _set_img(index, **fields):
    def edit(data):
        data["images"][index].update(fields)

    return edit


def _del_img(index, field):
    def edit(data):
        del data["images"][index][field]

    return edit


def _validate(data, mode="skip"):
    return validate_coco_dict(data, FILE, mode)


def _error_of(edit):
    """(the ValueError message of validating the edited base json in "error" mode, the edited json)."""
    data = _base()
    edit(data)
    with pytest.raises(ValueError) as info:
        _validate(data, "error")
    return str(info.value), data


def test_a_valid_file_is_kept_whole():
    data = _base()
    before = copy.deepcopy(data)
    v = _validate(data)
    assert data == before  # the input is not modified
    assert v.report.counts == {} and not v.report.dropped_anything
    assert [a["id"] for a in v.dataset["annotations"]] == [10, 11, 12, 13]
    assert v.dataset["info"] == {"description": "kept as is"} and v.dataset["categories"] == data["categories"]
    assert v.has_masks and not v.has_keypoints
    assert {k: [a["id"] for a in anns] for k, anns in v.annotations_per_image.items()} == {1: [10, 11], 2: [13]}
    assert v.dataset["annotations"][0] is data["annotations"][0]  # unchanged entries are not copied


# ----------------------------------------------------------------------- the file and its structure
@pytest.mark.parametrize(
    "text,match",
    [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ('{"images": [], "categories": [{"id": 1, "name": "a"}], "x": ' + "9" * 5000 + "}", "not valid JSON"),
        ("[]", "top level is a list"),
        ('"coco"', "top level is a str"),
        ("null", "top level is a NoneType"),
        ('{"annotations": [], "categories": []}', "'images' = None is not a list"),
        ('{"images": {}, "annotations": []}', "'images' = {} is not a list"),
        (
            '{"images": [], "annotations": {}, "categories": [{"id": 1, "name": "a"}]}',
            "'annotations' = {} is not a list",
        ),
        ('{"images": [], "annotations": null, "categories": [{"id": 1, "name": "a"}]}', "'annotations' = None"),
    ],
)
@pytest.mark.parametrize("mode", ["skip", "error"])
def test_unusable_files_raise_naming_the_file(tmp_path, text, match, mode):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        validate_coco_file(str(path), mode)
    assert str(path) in str(info.value)


def test_unreadable_and_undecodable_files(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match="cannot read"):
        validate_coco_file(str(tmp_path / "dir.json"))
    (tmp_path / "latin1.json").write_bytes(b'{"images": [], "x": "\xff\xfe"}')
    with pytest.raises(ValueError, match="latin1.json: not valid JSON"):
        validate_coco_file(str(tmp_path / "latin1.json"))


def test_a_file_without_annotations_is_a_test_set(tmp_path):
    data = _base()
    del data["annotations"]
    v = _validate(data)
    assert v.dataset["annotations"] == [] and len(v.dataset["images"]) == 2 and v.report.counts == {}


BAD_CATEGORIES = {
    "missing": (lambda d: d.pop("categories"), "no 'categories'"),
    "null": (lambda d: d.update(categories=None), "'categories' = None"),
    "a dict": (lambda d: d.update(categories={"id": 1}), "expected a non-empty list"),
    "empty": (lambda d: d.update(categories=[]), "expected a non-empty list"),
    "entry a string": (lambda d: d["categories"].append("c"), "categories\\[2\\] = 'c'"),
    "id a string": (lambda d: d["categories"][0].update(id="1"), "field 'id' = '1'"),
    "id a bool": (lambda d: d["categories"][0].update(id=True), "field 'id' = True"),
    "id a float": (lambda d: d["categories"][0].update(id=1.0), "field 'id' = 1.0"),
    "id too large": (lambda d: d["categories"][0].update(id=2**70), "field 'id'"),
    "id missing": (lambda d: d["categories"][0].pop("id"), "field 'id' = None"),
    "duplicate id": (lambda d: d["categories"][1].update(id=1), "duplicate category id"),
    "name missing": (lambda d: d["categories"][0].pop("name"), "field 'name' = None"),
    "name empty": (lambda d: d["categories"][0].update(name=""), "field 'name' = ''"),
    "name a list": (lambda d: d["categories"][0].update(name=["a"]), "field 'name' = \\['a'\\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CATEGORIES))
@pytest.mark.parametrize("mode", ["skip", "error"])
def test_broken_categories_always_raise(case, mode):
    edit, match = BAD_CATEGORIES[case]
    data = _base()
    edit(data)
    with pytest.raises(ValueError, match=match) as info:
        _validate(data, mode)
    assert FILE in str(info.value) and "categories" in str(info.value)


# ----------------------------------------------------------------------------------- image entries
def _image_entry_not_a_dict(data):
    data["images"][0] = "1.png"


def _duplicate_image_id(data):
    data["images"].append({"id": 2, "file_name": "2b.png", "width": 20, "height": 50})


# (edit, kind, the message's where, field, value) -- image 1 (annotations 10, 11) is broken.
BAD_IMAGES = {
    "not a dict": (_image_entry_not_a_dict, P.IMAGE_NOT_DICT, "images[0]", None, "'1.png'"),
    "id missing": (_del_img(0, "id"), P.IMAGE_ID, "images[0]", "id", "None"),
    "id a string": (_set_img(0, id="1"), P.IMAGE_ID, "images[0]", "id", "'1'"),
    "id a bool": (_set_img(0, id=True), P.IMAGE_ID, "images[0]", "id", "True"),
    "id a float": (_set_img(0, id=1.0), P.IMAGE_ID, "images[0]", "id", "1.0"),
    "width zero": (_set_img(0, width=0), P.IMAGE_SIZE, "image id 1", "width, height", "[0, 30]"),
    "height negative": (_set_img(0, height=-30), P.IMAGE_SIZE, "image id 1", "width, height", "[40, -30]"),
    "width missing": (_del_img(0, "width"), P.IMAGE_SIZE, "image id 1", "width, height", "[None, 30]"),
    "width a string": (_set_img(0, width="40"), P.IMAGE_SIZE, "image id 1", "width, height", "['40', 30]"),
    "width a float": (_set_img(0, width=40.0), P.IMAGE_SIZE, "image id 1", "width, height", "[40.0, 30]"),
    "width a bool": (_set_img(0, width=True), P.IMAGE_SIZE, "image id 1", "width, height", "[True, 30]"),
    "side too long": (_set_img(0, width=2**17), P.IMAGE_SIZE, "image id 1", "width, height", "[131072, 30]"),
    "too many pixels": (
        _set_img(0, width=30000, height=30000),
        P.IMAGE_SIZE,
        "image id 1",
        "width, height",
        "[30000, 30000]",
    ),
    "file_name missing": (_del_img(0, "file_name"), P.IMAGE_FILE_NAME, "image id 1", "file_name", "None"),
    "file_name empty": (_set_img(0, file_name=""), P.IMAGE_FILE_NAME, "image id 1", "file_name", "''"),
    "file_name a number": (_set_img(0, file_name=7), P.IMAGE_FILE_NAME, "image id 1", "file_name", "7"),
    "file_name with NUL": (_set_img(0, file_name="a\x00.png"), P.IMAGE_FILE_NAME, "image id 1", "file_name", "a\\x00"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_broken_image_entry_raises_with_error(case):
    edit, kind, where, field, value = BAD_IMAGES[case]
    message, _ = _error_of(edit)
    for part in (f"{FILE}: {where}", value, "ON_BAD_INPUT 'skip'") + ((repr(field),) if field else ()):
        assert part in message, (part, message)


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_broken_image_entry_is_dropped_with_its_annotations(case, caplog):
    edit, kind, _, _, _ = BAD_IMAGES[case]
    data = _base()
    edit(data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        v = _validate(data)
    assert [img["id"] for img in v.dataset["images"]] == [2]
    assert [a["id"] for a in v.dataset["annotations"]] == [12, 13]
    assert v.report.counts[kind] == 1 and v.report.num_images_dropped == 1
    if P.ANN_IMAGE_UNKNOWN in v.report.counts:  # an entry without a usable id: its annotations are orphans
        assert v.report.counts[P.ANN_IMAGE_UNKNOWN] == 2
    else:
        assert v.report.num_annotations_dropped_with_images == 2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_duplicate_image_ids_drop_every_entry_and_their_annotations(caplog):
    data = _base()
    _duplicate_image_id(data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        v = _validate(data)
    assert [img["id"] for img in v.dataset["images"]] == [1]
    assert [a["id"] for a in v.dataset["annotations"]] == [10, 11]
    assert v.report.counts == {P.IMAGE_DUPLICATE_ID: 2}
    assert v.report.num_images_dropped == 2 and v.report.num_annotations_dropped_with_images == 2
    assert "'2b.png'" in caplog.text and "images[2]" in caplog.text
    with pytest.raises(ValueError, match=r"image id 2: field 'id' = 2: 2 image entries share this id"):
        _validate(data, "error")


# ------------------------------------------------------------------------------------ annotations
def _annotation_not_a_dict(value):
    def edit(data):
        data["annotations"][1] = value

    return edit


def _duplicate_annotation_id(data):
    _ann(data, 13)["id"] = 10


def _polygon(*coords):
    return _set_ann(10, segmentation=[list(coords)])


def _zigzag(n):
    """A polygon inside the 40x30 image of n points crossing it back and forth (perimeter ~ 40 n)."""
    coords = []
    for k in range(n):
        coords += [0 if k % 2 else 39, k % 30]
    return coords


# (edit, kind, the message's annotation id, field, value) -- annotation 10 (image 1) is broken
# unless the case says otherwise.
BAD_ANNOTATIONS = {
    "entry a list": (_annotation_not_a_dict([1, 2]), P.ANN_NOT_DICT, None, None, "[1, 2]"),
    "entry null": (_annotation_not_a_dict(None), P.ANN_NOT_DICT, None, None, "None"),
    "id missing": (_del_ann(10, "id"), P.ANN_ID, "None (annotations[0])", "id", "None"),
    "id a string": (_set_ann(10, id="10"), P.ANN_ID, "'10' (annotations[0])", "id", "'10'"),
    "id a bool": (_set_ann(10, id=False), P.ANN_ID, "False (annotations[0])", "id", "False"),
    "image_id unknown": (_set_ann(10, image_id=77), P.ANN_IMAGE_UNKNOWN, 10, "image_id", "77"),
    "image_id a string": (_set_ann(10, image_id="1"), P.ANN_IMAGE_UNKNOWN, 10, "image_id", "'1'"),
    "image_id a float": (_set_ann(10, image_id=1.0), P.ANN_IMAGE_UNKNOWN, 10, "image_id", "1.0"),
    "category unknown": (_set_ann(10, category_id=3), P.CATEGORY_UNKNOWN, 10, "category_id", "3"),
    "category missing": (_del_ann(10, "category_id"), P.CATEGORY_UNKNOWN, 10, "category_id", "None"),
    "category a bool": (_set_ann(10, category_id=True), P.CATEGORY_UNKNOWN, 10, "category_id", "True"),
    "category a float": (_set_ann(10, category_id=1.0), P.CATEGORY_UNKNOWN, 10, "category_id", "1.0"),
    "iscrowd 2": (_set_ann(10, iscrowd=2), P.ISCROWD, 10, "iscrowd", "2"),
    "iscrowd a string": (_set_ann(10, iscrowd="0"), P.ISCROWD, 10, "iscrowd", "'0'"),
    "iscrowd null": (_set_ann(10, iscrowd=None), P.ISCROWD, 10, "iscrowd", "None"),
    "area negative": (_set_ann(10, area=-1), P.AREA, 10, "area", "-1"),
    "area nan": (_set_ann(10, area=NAN), P.AREA, 10, "area", "nan"),
    "area a string": (_set_ann(10, area="50"), P.AREA, 10, "area", "'50'"),
    "area a bool": (_set_ann(10, area=True), P.AREA, 10, "area", "True"),
    "num_keypoints negative": (_set_ann(10, num_keypoints=-1), P.NUM_KEYPOINTS, 10, "num_keypoints", "-1"),
    "bbox missing": (_del_ann(10, "bbox"), P.BBOX_MISSING, 10, "bbox", "None"),
    "bbox 3 values": (_set_ann(10, bbox=[2, 3, 10]), P.BBOX_NOT_NUMBERS, 10, "bbox", "[2, 3, 10]"),
    "bbox 5 values": (_set_ann(10, bbox=[2, 3, 10, 5, 1]), P.BBOX_NOT_NUMBERS, 10, "bbox", "[2, 3, 10, 5, 1]"),
    "bbox a string": (_set_ann(10, bbox="2 3 10 5"), P.BBOX_NOT_NUMBERS, 10, "bbox", "'2 3 10 5'"),
    "bbox a dict": (_set_ann(10, bbox={"x": 2}), P.BBOX_NOT_NUMBERS, 10, "bbox", "{'x': 2}"),
    "bbox strings": (_set_ann(10, bbox=["2", "3", "10", "5"]), P.BBOX_NOT_NUMBERS, 10, "bbox", "['2', '3'"),
    "bbox nested": (_set_ann(10, bbox=[[2, 3], [10, 5], 1, 1]), P.BBOX_NOT_NUMBERS, 10, "bbox", "[[2, 3]"),
    "bbox null value": (_set_ann(10, bbox=[2, None, 10, 5]), P.BBOX_NOT_NUMBERS, 10, "bbox", "None"),
    "bbox bools": (_set_ann(10, bbox=[2, 3, True, True]), P.BBOX_NOT_NUMBERS, 10, "bbox", "True"),
    "bbox nan": (_set_ann(10, bbox=[NAN, 3, 10, 5]), P.BBOX_NON_FINITE, 10, "bbox", "nan"),
    "bbox -inf": (_set_ann(10, bbox=[2, 3, 10, -INF]), P.BBOX_NON_FINITE, 10, "bbox", "-inf"),
    "bbox huge int": (_set_ann(10, bbox=[2, 3, 10**400, 5]), P.BBOX_NON_FINITE, 10, "bbox", "[2, 3,"),
    "bbox 1e308": (_set_ann(10, bbox=[-1e308, 3, 1e308, 5]), P.BBOX_FAR, 10, "bbox", "1e+308"),
    "bbox zero width": (_set_ann(10, bbox=[2, 3, 0, 5]), P.BBOX_EMPTY, 10, "bbox", "[2, 3, 0, 5]"),
    "bbox negative zero": (_set_ann(10, bbox=[2, 3, 10, -0.0]), P.BBOX_EMPTY, 10, "bbox", "-0.0"),
    "bbox right of the image": (_set_ann(10, bbox=[40, 3, 10, 5]), P.BBOX_OUTSIDE, 10, "bbox", "[40, 3"),
    "bbox above the image": (_set_ann(10, bbox=[2, -10, 10, 10]), P.BBOX_OUTSIDE, 10, "bbox", "-10"),
    "bbox left of the image": (_set_ann(10, bbox=[-5.5, 3, 5.5, 10]), P.BBOX_OUTSIDE, 10, "bbox", "-5.5"),
    "bbox far outside": (_set_ann(10, bbox=[-100, 3, 150, 5]), P.BBOX_FAR, 10, "bbox", "-100"),
    "polygon 2 points": (_polygon(2, 3, 12, 3), P.SEGM_FEW_POINTS, 10, "segmentation[0]", "[2, 3, 12, 3]"),
    "polygon odd": (_polygon(2, 3, 12, 3, 12, 8, 2), P.SEGM_ODD, 10, "segmentation[0]", "8, 2]"),
    "polygon nan": (_polygon(2, 3, 12, NAN, 12, 8), P.SEGM_NON_FINITE, 10, "segmentation[0]", "nan"),
    "polygon inf": (_polygon(2, 3, 12, 3, INF, 8), P.SEGM_NON_FINITE, 10, "segmentation[0]", "inf"),
    "polygon null": (_polygon(2, 3, None, 3, 12, 8), P.SEGM_NON_FINITE, 10, "segmentation[0]", "None"),
    "polygon string": (_polygon(2, 3, "12", 3, 12, 8), P.SEGM_NON_FINITE, 10, "segmentation[0]", "'12'"),
    "polygon nested": (_polygon([2, 3], [12, 3], [12, 8]), P.SEGM_FEW_POINTS, 10, "segmentation[0]", "[[2, 3]"),
    "polygon of pairs": (
        _polygon([2, 3], [12, 3], [12, 8], [2, 8], [1, 1], [2, 2]),
        P.SEGM_NON_FINITE,
        10,
        "segmentation[0]",
        "[[2, 3]",
    ),
    "polygon bools": (_polygon(True, False, True, True, False, True), P.SEGM_NON_FINITE, 10, "segmentation[0]", "True"),
    "polygon a dict": (_set_ann(10, segmentation=[{"x": 1}]), P.SEGM_NON_FINITE, 10, "segmentation[0]", "{'x': 1}"),
    "polygon 1e9": (_polygon(2, 3, 12, 3, 12, 1e9), P.SEGM_FAR, 10, "segmentation[0]", "1000000000.0"),
    "polygon just too far": (_polygon(2, 3, 12, 3, 81, 8), P.SEGM_FAR, 10, "segmentation[0]", "81"),
    "polygon too long": (_polygon(*_zigzag(200)), P.SEGM_FAR, 10, "segmentation[0]", "(400 values)"),
    "segmentation missing": (_del_ann(10, "segmentation"), P.SEGM_EMPTY, 10, "segmentation", "None"),
    "segmentation empty": (_set_ann(10, segmentation=[]), P.SEGM_EMPTY, 10, "segmentation", "[]"),
    "segmentation a number": (_set_ann(10, segmentation=5), P.SEGM_UNKNOWN, 10, "segmentation", "5"),
    "rle garbage": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": "garbage"}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "garbage",
    ),
    "rle bad characters": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": "0 1"}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "'0 1'",
    ),
    "rle unterminated": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": "P"}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "'P'",
    ),
    "rle short sum": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": [100, 20]}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "[100, 20]",
    ),
    "rle negative run": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": [1300, -100]}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "-100",
    ),
    "rle float runs": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": [600.0, 600]}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "600.0",
    ),
    "rle size swapped": (
        _set_ann(10, segmentation=_rle(40, 30, (2, 3, 10, 5))),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "[40, 30]",
    ),
    "rle size missing": (
        _set_ann(10, segmentation={"counts": [1200]}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "{'counts'",
    ),
    "rle counts null": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": None}),
        P.SEGM_BAD_RLE,
        10,
        "segmentation",
        "None",
    ),
    "rle empty mask": (
        _set_ann(10, segmentation={"size": [30, 40], "counts": [1200]}),
        P.SEGM_EMPTY_RLE,
        10,
        "segmentation",
        "[1200]",
    ),
    "keypoints short": (_set_ann(10, keypoints=[1, 1, 2] * 16), P.KP_LENGTH, 10, "keypoints", "(48 values)"),
    "keypoints a string": (_set_ann(10, keypoints="1 1 2"), P.KP_LENGTH, 10, "keypoints", "'1 1 2'"),
    "keypoints nan": (
        _set_ann(10, keypoints=[1, 1, 2] * 16 + [NAN, 1, 2]),
        P.KP_NON_FINITE,
        10,
        "keypoints",
        "value 48 is nan",
    ),
    "keypoints strings": (_set_ann(10, keypoints=["1", 1, 2] * 17), P.KP_NON_FINITE, 10, "keypoints", "'1'"),
    "keypoints far": (_set_ann(10, keypoints=[1, 1, 2] * 16 + [1e6, 1, 2]), P.KP_FAR, 10, "keypoints", "(51 values)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_raises_with_error(case):
    edit, kind, ann_id, field, value = BAD_ANNOTATIONS[case]
    message, data = _error_of(edit)
    image_id = P.show(data["annotations"][0].get("image_id"))
    where = f"{FILE}: annotations[1]" if ann_id is None else f"{FILE}: image id {image_id}, annotation id {ann_id}"
    parts = (where, value, "(set DATASETS.ON_BAD_INPUT 'skip' to drop it)") + ((f"field {field!r}",) if field else ())
    for part in parts:
        assert part in message, (part, message)


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotation_is_dropped_and_reported_once(case, caplog):
    edit, kind, ann_id, field, value = BAD_ANNOTATIONS[case]
    data = _base()
    edit(data)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        v = _validate(data)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{kind}: 1" in warning.getMessage() and value in warning.getMessage()
    assert v.report.counts == {kind: 1}
    broken = 11 if ann_id is None else 10
    kept = [a["id"] for a in v.dataset["annotations"]]
    assert kept == [i for i in (10, 11, 12, 13) if i != broken]
    assert [a["id"] for a in v.annotations_per_image[1]] == [i for i in (10, 11) if i != broken]
    assert v.report.num_annotations_dropped == 1 and v.report.num_images_dropped == 0


def test_duplicate_annotation_ids_drop_every_annotation_with_the_id():
    data = _base()
    _duplicate_annotation_id(data)
    v = _validate(data)
    assert [a["id"] for a in v.dataset["annotations"]] == [11, 12]
    assert v.report.counts == {P.ANN_DUPLICATE_ID: 2}
    with pytest.raises(ValueError, match=r"image id 1, annotation id 10: field 'id' = 10: 2 annotations share"):
        _validate(data, "error")


def test_crowd_annotations_are_checked_like_the_others():
    data = _base()
    _ann(data, 12)["segmentation"] = {"size": [50, 20], "counts": "garbage"}
    v = _validate(data)
    assert [a["id"] for a in v.dataset["annotations"]] == [10, 11, 13]
    with pytest.raises(ValueError, match="image id 2, annotation id 12: field 'segmentation'"):
        _validate(data, "error")


def test_a_bad_polygon_is_removed_from_an_annotation_that_keeps_a_good_one(caplog):
    data = _base()
    _ann(data, 10)["segmentation"].extend([[1, 1, 2, 2], [1, 1, 5, 1, NAN, 5]])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        v = _validate(data)
    ann = _ann(v.dataset, 10)
    assert ann["segmentation"] == [[2, 3, 12, 3, 12, 8, 2, 8]] and ann is not _ann(data, 10)
    assert len(_ann(data, 10)["segmentation"]) == 3  # the input is not modified
    assert v.report.num_polygons_removed == 2 and v.report.num_annotations_dropped == 0
    assert "0 annotation(s) dropped" in caplog.text and "2 bad polygon(s) removed" in caplog.text
    _ann(data, 10)["segmentation"] = [[1, 1, 2, 2]]  # no good polygon left: dropped
    v = _validate(data)
    assert 10 not in [a["id"] for a in v.dataset["annotations"]] and v.report.num_polygons_removed == 0


def test_polygons_at_the_margin_and_long_outlines_are_kept():
    data = _base()
    _ann(data, 10)["segmentation"] = [[-40, -30, 80, -30, 80, 60, -40, 60], _zigzag(40)]
    v = _validate(data)
    assert v.report.counts == {} and len(_ann(v.dataset, 10)["segmentation"]) == 2


def test_every_problem_of_an_annotation_is_counted():
    data = _base()
    _set_ann(10, bbox=[2, 3, 0, 5], category_id=99, area=-1)(data)
    v = _validate(data)
    assert v.report.counts == {P.BBOX_EMPTY: 1, P.CATEGORY_UNKNOWN: 1, P.AREA: 1}
    assert v.report.num_annotations_dropped == 1


def test_the_first_problem_in_file_order_raises():
    data = _base()
    _set_ann(13, bbox=[2, 3, 0, 5])(data)
    _set_ann(11, segmentation=[[1, 2, NAN, 3, 4, 5]])(data)  # found by a later, vectorised check
    with pytest.raises(ValueError, match="annotation id 11"):
        _validate(data, "error")


def test_many_problems_give_one_warning_with_five_examples(caplog):
    data = _base()
    data["annotations"] += [
        {"id": 1000 + k, "image_id": 1, "category_id": 1, "bbox": [1, 1, NAN, 2]} for k in range(5000)
    ]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        v = _validate(data)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert v.report.counts == {P.BBOX_NON_FINITE: 5000} and len(v.report.examples) == 5
    assert "first 5 report(s)" in warning.getMessage() and "annotation id 1004" in warning.getMessage()
    assert "annotation id 1005" not in warning.getMessage()


def test_long_values_are_shown_short():
    message, _ = _error_of(_set_ann(10, bbox=list(range(100000))))
    assert len(message) < 600 and "(100000 values)" in message


# ------------------------------------------------------------------------- dataset-wide rules, fills
def test_missing_fields_are_filled_in(caplog):
    data = _base()
    for ann in data["annotations"]:
        del ann["area"], ann["iscrowd"]
    _ann(data, 11)["segmentation"] = _rle(30, 40, (20, 10, 8, 8))
    _ann(data, 12)["iscrowd"] = True
    with caplog.at_level(logging.INFO, logger=LOGGER):
        v = _validate(data)
    assert v.report.counts == {}
    anns = {a["id"]: a for a in v.dataset["annotations"]}
    polygon_mask = mask_utils.merge(mask_utils.frPyObjects([[2, 3, 12, 3, 12, 8, 2, 8]], 30, 40))
    assert anns[10]["area"] == float(mask_utils.area(polygon_mask)) > 0
    assert anns[11]["area"] == 64.0 and anns[12]["area"] == 25.0  # RLE areas
    assert [anns[i]["iscrowd"] for i in (10, 11, 12, 13)] == [0, 0, 1, 0]
    assert type(anns[12]["iscrowd"]) is int
    assert "filled in missing fields: area of 4 annotation(s), iscrowd of 3 annotation(s)" in caplog.text
    assert all("area" not in a for a in data["annotations"])  # on copies


def test_area_of_a_dataset_without_masks_is_the_box_area():
    data = _base()
    for ann in data["annotations"]:
        del ann["segmentation"], ann["area"]
    v = _validate(data)
    assert not v.has_masks and [a["area"] for a in v.dataset["annotations"]] == [50.0, 64.0, 25.0, 100.0]


def test_masks_are_needed_everywhere_only_in_a_dataset_with_masks():
    data = _base()
    for ann in data["annotations"]:
        if not ann["iscrowd"]:
            del ann["segmentation"]  # a detection dataset whose crowd regions have RLE masks
    v = _validate(data)
    assert not v.has_masks and v.report.counts == {}
    data = _base()
    del _ann(data, 12)["segmentation"]  # a crowd region without mask in a dataset with masks
    v = _validate(data)
    assert v.has_masks and v.report.counts == {P.SEGM_EMPTY: 1}
    assert 12 not in [a["id"] for a in v.dataset["annotations"]]


def test_keypoint_datasets_get_keypoints_and_num_keypoints_everywhere():
    data = _base()
    kps = []
    for k in range(17):
        kps += [2 + k, 4, 2 if k < 5 else 0]
    _ann(data, 10)["keypoints"] = kps
    v = _validate(data)
    assert v.has_keypoints and v.report.counts == {}
    anns = {a["id"]: a for a in v.dataset["annotations"]}
    assert anns[10]["num_keypoints"] == 5 and anns[10]["keypoints"] == kps
    assert anns[11]["keypoints"] == [0] * 51 and anns[11]["num_keypoints"] == 0
    assert anns[12]["num_keypoints"] == 0  # COCOeval reads num_keypoints of every annotation


# ----------------------------------------------------------------------------------- box clipping
def test_clipped_away_boxes_are_exactly_those_the_library_removes():
    rng = np.random.RandomState(0)
    n = 5000
    sizes = rng.randint(1, 50, size=(n, 2))
    corners = rng.uniform(-0.5, 1.2, size=(n, 2)) * sizes
    extents = rng.uniform(0.05, 1.3, size=(n, 2)) ** 2 * sizes
    boxes = np.concatenate([corners, extents], axis=1)
    boxes[: n // 4, :2] = np.round(boxes[: n // 4, :2])  # integer corners hit the edges exactly
    boxes[: n // 4, 2:] = np.ceil(boxes[: n // 4, 2:])
    _, outside, away = boxes_outside(boxes, sizes)
    assert not (outside & ~away).any()  # a box outside the image is also emptied by the clipping
    for k in range(n):
        target = BoxList(torch.tensor([boxes[k].tolist()]), tuple(sizes[k].tolist()), mode="xywh")
        kept = len(target.convert("xyxy").clip_to_image(remove_empty=True))
        assert kept == (0 if away[k] else 1), (boxes[k], sizes[k])
    assert 0.1 < away.mean() < 0.7


@pytest.mark.parametrize("bbox", [[2, 3, 10, 1], [2, 3, 0.5, 0.5], [39.5, 3, 5, 5], [-4.5, 3, 5, 5]])
def test_valid_boxes_the_clipping_empties_stay_for_evaluation_but_not_in_training_targets(bbox):
    # Not bad input (COCO has boxes under a pixel): kept in the cleaned json (the evaluator's ground
    # truth, as pycocotools would read the file), left out of the training annotations (clip_to_image
    # would remove them), in both modes.
    data = _base()
    _set_ann(10, bbox=bbox)(data)
    for mode in ("skip", "error"):
        v = _validate(data, mode)
        assert v.report.counts == {}
        assert 10 in {a["id"] for a in v.dataset["annotations"]}
        assert 10 not in {a["id"] for anns in v.annotations_per_image.values() for a in anns}


# ------------------------------------------------------------------------------------------- RLE
def test_rle_strings_decode_like_pycocotools():
    rng = np.random.RandomState(0)
    for t in range(200):
        h, w = (int(v) for v in rng.randint(1, 200, 2))
        mask = (rng.rand(h, w) < rng.rand()).astype(np.uint8)
        if t % 2:
            mask[:] = 0
            mask[rng.randint(h) :, rng.randint(w) :] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs, why = decode_counts_string(rle["counts"].decode("ascii"))
        assert runs is not None and runs.sum() == h * w, why
        back = mask_utils.frPyObjects({"size": [h, w], "counts": runs.tolist()}, h, w)
        assert back["counts"] == rle["counts"]
        problem, area = rle_problem({"size": [h, w], "counts": rle["counts"].decode("ascii")}, h, w)
        assert area == (int(mask.sum()) if problem is None else 0)


def test_random_rle_strings_that_pass_decode_safely_in_pycocotools():
    rng = np.random.RandomState(1)
    alphabet = np.array([chr(48 + k) for k in range(64)])
    passed = refused = 0
    for _ in range(3000):
        text = "".join(rng.choice(alphabet, rng.randint(1, 9)))
        runs, _ = decode_counts_string(text)
        total = int(runs.sum()) if runs is not None else 0
        # The size the runs would need (a 1-pixel-wide image), else some other size.
        h, w = (total, 1) if 0 < total <= 100000 else (int(rng.randint(1, 20)), 3)
        problem, area = rle_problem({"size": [h, w], "counts": text}, h, w)
        if problem is None:
            passed += 1
            mask = mask_utils.decode({"size": [h, w], "counts": text.encode("ascii")})
            assert mask.shape == (h, w) and int(mask.sum()) == area
        else:
            refused += 1
    assert passed > 100 and refused > 100


def test_rle_values_longer_than_six_characters_are_refused():
    runs, why = decode_counts_string("o" * 6 + "0")
    assert runs is None and "more than 6 characters" in why
    runs, why = decode_counts_string("é0")
    assert runs is None and "non-ASCII" in why


def test_the_json_file_is_validated_when_read(tmp_path):
    path = tmp_path / FILE
    data = _base()
    _set_ann(10, bbox=[NAN, 3, 10, 5])(data)
    path.write_text(json.dumps(data))  # json writes NaN, and reads it back
    v = validate_coco_file(str(path))
    assert v.report.counts == {P.BBOX_NON_FINITE: 1}
    with pytest.raises(ValueError, match=str(path)):
        validate_coco_file(str(path), "error")
