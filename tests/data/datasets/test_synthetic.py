"""The embedded synthetic datasets (maskrcnn_benchmark.data.datasets.synthetic): determinism, COCO
validity, segmentations that match the painted pixels, keypoints, atomic writing and the
generate-on-first-use entry point (also from two processes at once)."""

import filecmp
import json
import multiprocessing
import os

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from maskrcnn_benchmark.data.datasets.synthetic import (
    SYNTHETIC_DATASETS,
    catalog,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    writer,
)
from maskrcnn_benchmark.data.datasets.synthetic.masks import decode_segmentation, mask_to_polygons
from maskrcnn_benchmark.data.datasets.synthetic.persons import KEYPOINT_NAMES, SKELETON

SIZE = (96, 128)  # small images keep the tests fast; the defaults are (256, 320)
SPLITS = {"shapes": {"train": 8, "val": 4}, "persons": {"train": 8, "val": 4}}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """{kind: (output folder, {split: (images folder, json path)})}, generated once per module."""
    out = {}
    for kind in ("shapes", "persons"):
        folder = str(tmp_path_factory.mktemp("synthetic") / kind)
        written = generate_synthetic_dataset(folder, kind=kind, splits=SPLITS[kind], seed=3, image_size=SIZE)
        out[kind] = (folder, written)
    return out


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.mark.parametrize("kind", ["shapes", "persons"])
def test_layout_and_determinism(datasets, tmp_path, kind):
    folder, written = datasets[kind]
    prefix = "instances" if kind == "shapes" else "person_keypoints"
    assert written == {
        split: (os.path.join(folder, split), os.path.join(folder, "annotations", f"{prefix}_{split}.json"))
        for split in ("train", "val")
    }
    assert "train/000001.jpg" in _files(folder) and "val/000004.jpg" in _files(folder)
    again = str(tmp_path / "again")
    generate_synthetic_dataset(again, kind=kind, splits=SPLITS[kind], seed=3, image_size=SIZE)
    assert _files(again) == _files(folder)
    for name in _files(folder):
        assert filecmp.cmp(os.path.join(folder, name), os.path.join(again, name), shallow=False), name
    # No temporary folders left next to the outputs.
    assert sorted(os.listdir(tmp_path)) == ["again"]


@pytest.mark.parametrize("kind", ["shapes", "persons"])
def test_splits_and_seeds_differ(datasets, tmp_path, kind):
    folder, written = datasets[kind]
    train_images = {open(os.path.join(written["train"][0], f), "rb").read() for f in os.listdir(written["train"][0])}
    val_images = {open(os.path.join(written["val"][0], f), "rb").read() for f in os.listdir(written["val"][0])}
    assert not train_images & val_images
    assert len(train_images) == SPLITS[kind]["train"]
    other = generate_synthetic_dataset(str(tmp_path / "seed4"), kind=kind, splits={"val": 1}, seed=4, image_size=SIZE)
    with open(os.path.join(other["val"][0], "000001.jpg"), "rb") as f:
        assert f.read() not in val_images


@pytest.mark.parametrize("kind", ["shapes", "persons"])
def test_coco_api_loads_everything(datasets, kind):
    _, written = datasets[kind]
    for split, (images, ann_file) in written.items():
        coco = COCO(ann_file)
        assert sorted(coco.getImgIds()) == list(range(1, SPLITS[kind][split] + 1))
        with open(ann_file) as f:
            raw = json.load(f)
        assert raw["info"]["kind"] == kind and raw["info"]["seed"] == 3
        ann_ids = [a["id"] for a in raw["annotations"]]
        assert len(set(ann_ids)) == len(ann_ids)
        for info in coco.loadImgs(coco.getImgIds()):
            image = cv2.imread(os.path.join(images, info["file_name"]))
            assert image.shape == (info["height"], info["width"], 3) == (SIZE[0], SIZE[1], 3)
        for ann in coco.loadAnns(coco.getAnnIds()):
            assert ann["iscrowd"] == 0 and ann["category_id"] in coco.getCatIds()
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann["area"] > 0
            ys, xs = np.nonzero(mask)
            tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            np.testing.assert_allclose(ann["bbox"], tight, atol=1.0)


def test_categories():
    shapes = writer.KINDS["shapes"][1]
    ids = [c["id"] for c in shapes]
    assert len(ids) == 4 and ids != list(range(1, 5)) and len(set(c["name"] for c in shapes)) == 4
    (person,) = writer.KINDS["persons"][1]
    assert person["id"] == 1 and person["name"] == "person"
    assert (
        person["keypoints"]
        == [
            "nose",
            "left_eye",
            "right_eye",
            "left_ear",
            "right_ear",
            "left_shoulder",
            "right_shoulder",
            "left_elbow",
            "right_elbow",
            "left_wrist",
            "right_wrist",
            "left_hip",
            "right_hip",
            "left_knee",
            "right_knee",
            "left_ankle",
            "right_ankle",
        ]
        == KEYPOINT_NAMES
    )
    assert len(SKELETON) == 19 and all(1 <= i <= 17 for edge in SKELETON for i in edge)


def test_written_images_are_the_rendered_ones(datasets):
    """The JPEGs on disk are the rendered images (up to JPEG error): what the next tests compare
    annotations with is what the files show."""
    for kind in ("shapes", "persons"):
        _, written = datasets[kind]
        for index in range(3):
            image, _, _ = writer.render_image(kind, 3, "val", index, SIZE)
            jpeg = cv2.imread(os.path.join(written["val"][0], f"{index + 1:06d}.jpg"))[:, :, ::-1]
            assert np.abs(jpeg.astype(float) - image).mean() < 3.0


def _rendered(kind, count, size=(256, 320)):
    for index in range(count):
        yield writer.render_image(kind, 0, "train", index, size)


@pytest.mark.parametrize("kind,count", [("shapes", 40), ("persons", 25)])
def test_segmentations_are_the_visible_pixels(kind, count):
    ious, occluded, small, truncated, per_image = [], 0, 0, 0, []
    for image, scene, anns in _rendered(kind, count):
        per_image.append(len(anns))
        h, w = image.shape[:2]
        for ann in anns:
            layer = scene.layers[ann["layer"]]
            visible = scene.layer_map == ann["layer"]
            decoded = decode_segmentation(ann["segmentation"], h, w)
            ious.append((decoded & visible).sum() / (decoded | visible).sum())
            # Loaders that hold polygons as float32 (ours does) decode them to the same pixels.
            as_float32 = [np.asarray(p, dtype=np.float32).tolist() for p in ann["segmentation"]]
            assert (decode_segmentation(as_float32, h, w) == decoded).all()
            if not visible.all() and visible.sum() < layer.mask.sum():
                occluded += 1
            elif (decoded != visible).any():
                pytest.fail("an unoccluded object's segmentation is not exactly its pixels")
            truncated += int(layer.mask.sum()) < layer.full_area
            small += ann["area"] < 32 * 32
            # Every annotated object keeps at least half of itself visible.
            assert visible.sum() >= 0.5 * layer.full_area
    ious = np.asarray(ious)
    assert ious.min() >= 0.9
    assert (ious == 1.0).all()  # exact by construction: worth knowing if that ever changes
    assert occluded >= 5 and small >= 5 and truncated >= 3
    assert np.mean(per_image) >= (3.0 if kind == "shapes" else 2.0)


def test_keypoints():
    left = [i for i, n in enumerate(KEYPOINT_NAMES) if n.startswith("left_")]
    right = [KEYPOINT_NAMES.index(KEYPOINT_NAMES[i].replace("left_", "right_")) for i in left]
    counts = {0: 0, 1: 0, 2: 0}
    for image, _scene, anns in _rendered("persons", 25):
        h, w = image.shape[:2]
        for ann in anns:
            kps = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
            assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
            decoded = decode_segmentation(ann["segmentation"], h, w)
            x0, y0, bw, bh = ann["bbox"]
            for x, y, v in kps:
                counts[int(v)] += 1
                if v == 0:
                    assert x == 0 and y == 0
                    continue
                assert 0 <= x < w and 0 <= y < h
                assert x0 - 1 <= x <= x0 + bw + 1 and y0 - 1 <= y <= y0 + bh + 1 or v == 1
                # Visible keypoints lie on the figure's visible pixels, covered ones do not.
                assert decoded[int(y), int(x)] == (v == 2)
            # A figure facing the camera has its left side on the image's right (tilt <= 25 deg).
            for i, j in zip(left, right):
                if kps[i, 2] > 0 and kps[j, 2] > 0 and KEYPOINT_NAMES[i] in ("left_shoulder", "left_hip", "left_eye"):
                    assert kps[i, 0] > kps[j, 0]
    assert counts[0] > 0 and counts[1] > 0 and counts[2] > 10 * counts[1]


def test_mask_to_polygons_is_exact_with_holes_and_touching_corners():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 30, size=2))
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.9)  # noise: holes, islands, diagonal contacts
        polygons = mask_to_polygons(mask)
        if mask.any():
            assert (decode_segmentation(polygons, h, w) == mask).all()
        else:
            assert polygons == []
    ring = np.ones((9, 9), dtype=bool)
    ring[3:6, 3:6] = False
    ring[4, 4] = True  # an island inside the hole
    assert (decode_segmentation(mask_to_polygons(ring), 9, 9) == ring).all()


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = writer.render_image
    monkeypatch.setattr(writer, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_dataset(str(tmp_path / "ds"), splits={"train": 5}, image_size=SIZE)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(writer, "render_image", real)
    # An existing dataset is replaced as a whole.
    generate_synthetic_dataset(str(tmp_path / "ds"), splits={"train": 2, "val": 1}, image_size=SIZE)
    generate_synthetic_dataset(str(tmp_path / "ds"), splits={"val": 1}, image_size=SIZE)
    assert _files(str(tmp_path / "ds")) == ["annotations/instances_val.json", "val/000001.jpg"]
    assert os.listdir(tmp_path) == ["ds"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        generate_synthetic_dataset(str(tmp_path / "x"), kind="cars")
    with pytest.raises(ValueError):
        generate_synthetic_dataset(str(tmp_path / "x"), splits={"train": -1})
    with pytest.raises(ValueError, match="synthetic_shapes_train"):
        ensure_synthetic_dataset("synthetic_cars_train", str(tmp_path))


def test_catalog_names_match_the_paths_catalog():
    from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog

    for name, (kind, split) in SYNTHETIC_DATASETS.items():
        attrs = DatasetCatalog.DATASETS[name]
        prefix = "instances" if kind == "shapes" else "person_keypoints"
        assert attrs == {
            "img_dir": f"synthetic_{kind}/{split}",
            "ann_file": f"synthetic_{kind}/annotations/{prefix}_{split}.json",
        }
        assert split in writer.DEFAULT_SPLITS[kind]
    assert set(writer.KINDS) == {kind for kind, _ in SYNTHETIC_DATASETS.values()} == set(writer.DEFAULT_SPLITS)


@pytest.fixture
def small_defaults(monkeypatch, tmp_path):
    """Shrink the default splits and count calls to the generator (in this and forked processes)."""
    monkeypatch.setitem(writer.DEFAULT_SPLITS, "shapes", {"train": 3, "val": 2})
    log = tmp_path / "generations.log"
    real = catalog.generate_synthetic_dataset

    def counting(output_dir, **kwargs):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        kwargs["image_size"] = SIZE
        return real(output_dir, **kwargs)

    monkeypatch.setattr(catalog, "generate_synthetic_dataset", counting)
    return log


def test_ensure_generates_once(tmp_path, small_defaults):
    data_dir = str(tmp_path / "data")
    os.makedirs(os.path.join(data_dir, ".synthetic_shapes.tmp-killed", "train"))  # a killed run's leftovers
    ensure_synthetic_dataset("synthetic_shapes_val", data_dir)
    assert sorted(os.listdir(data_dir)) == [".synthetic_shapes.lock", "synthetic_shapes"]
    ann_file = os.path.join(data_dir, "synthetic_shapes", "annotations", "instances_val.json")
    train_file = os.path.join(data_dir, "synthetic_shapes", "annotations", "instances_train.json")
    assert os.path.isfile(ann_file) and os.path.isfile(train_file)  # the whole kind at once
    mtime = os.stat(ann_file).st_mtime_ns
    ensure_synthetic_dataset("synthetic_shapes_val", data_dir)
    ensure_synthetic_dataset("synthetic_shapes_train", data_dir)
    assert os.stat(ann_file).st_mtime_ns == mtime
    assert len(small_defaults.read_text().split()) == 1
    assert len(COCO(ann_file).getImgIds()) == 2


def _ensure_in_child(data_dir):
    ensure_synthetic_dataset("synthetic_shapes_train", data_dir)


def test_ensure_from_two_processes(tmp_path, small_defaults):
    data_dir = str(tmp_path / "data")
    context = multiprocessing.get_context("fork")  # forked children keep the monkeypatches
    children = [context.Process(target=_ensure_in_child, args=(data_dir,)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert len(small_defaults.read_text().split()) == 1  # one generated, the other waited
    folder = os.path.join(data_dir, "synthetic_shapes")
    assert len(COCO(os.path.join(folder, "annotations", "instances_train.json")).getImgIds()) == 3
    assert sorted(os.listdir(data_dir)) == [".synthetic_shapes.lock", "synthetic_shapes"]
