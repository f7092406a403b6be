"""Fuzzing of COCODataset: a valid annotation file mutated many ways (seeded).

For every mutated file: building the dataset either succeeds or raises ValueError naming the file
("error" mode raises exactly when "skip" mode reports problems); with "skip", building the target
of every image (masks rasterised) and evaluating ground-truth-like predictions on `dataset.coco`
(bbox, segm, keypoints, proposals) raise nothing else. The cases run in a child process whose
address space is limited (RLIMIT_AS), so an input that makes anything allocate huge memory fails
the test instead of exhausting the machine.

Run by pytest; the child is this file run as a script: `python test_coco_fuzz.py FOLDER SEED N`.
"""

import copy
import json
import os
import random
import resource
import subprocess
import sys
import traceback

import numpy as np
from pycocotools import mask as mask_utils

NUM_CASES = 100
SEED = 0
MEMORY_HEADROOM = 2 * 1024**3  # bytes of address space the child may add to what it has after imports
PERSON_KEYPOINTS = 17
IMAGES = [(1, 48, 40), (2, 32, 32), (3, 40, 24)]  # (id, width, height)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _square(x, y, s):
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _keypoints(x, y):
    out = []
    for k in range(PERSON_KEYPOINTS):
        out += [x + k % 5, y + k // 5, 2 if k % 3 else 0]
    return out


def base_json():
    """3 images; polygons, a compressed RLE, a crowd RLE (uncompressed) and person keypoints."""
    block = np.zeros((32, 32), np.uint8)
    block[4:12, 6:14] = 1
    rle = mask_utils.encode(np.asfortranarray(block))
    flat = block.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    anns = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [4, 4, 12, 20],
            "area": 240.0,
            "segmentation": [_square(4, 4, 12)],
            "keypoints": _keypoints(5, 5),
            "num_keypoints": 11,
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 7,
            "iscrowd": 0,
            "bbox": [20, 10, 15, 15],
            "area": 225.0,
            "segmentation": [_square(20, 10, 15), [30, 30, 40, 30, 35, 38]],
        },
        {
            "id": 3,
            "image_id": 2,
            "category_id": 7,
            "iscrowd": 0,
            "bbox": [6, 4, 8, 8],
            "area": 64.0,
            "segmentation": {"size": [32, 32], "counts": rle["counts"].decode("ascii")},
        },
        {
            "id": 4,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": [6, 4, 8, 8],
            "area": 64.0,
            "segmentation": {"size": [32, 32], "counts": runs},
            "num_keypoints": 0,
            "keypoints": [0] * 51,
        },
        {
            "id": 5,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [18, 16, 10, 12],
            "area": 120.0,
            "segmentation": [_square(18, 16, 10)],
            "keypoints": _keypoints(19, 17),
            "num_keypoints": 11,
        },
        {
            "id": 6,
            "image_id": 3,
            "category_id": 7,
            "iscrowd": 0,
            "bbox": [1, 1, 30, 20],
            "segmentation": [[1, 1, 31, 1, 31, 21, 1, 21, 16, 11]],
        },
    ]
    return {
        "images": [{"id": i, "file_name": f"{i}.png", "width": w, "height": h} for i, w, h in IMAGES],
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "person", "keypoints": [str(k) for k in range(17)], "skeleton": []},
            {"id": 7, "name": "thing"},
        ],
    }


def _nested(depth):
    value = [1.0]
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    -0.0,
    0.5,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**30,
    2**63,
    -(2**63) - 1,
    "",
    "x",
    "1",
    "0",
    [],
    {},
    [[]],
    [None],
    [1, 2],
    [1, 2, 3],
    [1e308] * 6,
    [0, 0, 1e7, 0, 1e7, 1e7],
    [float("nan")] * 8,
    list(range(1000)),
    {"size": [1, 1], "counts": "0"},
    {"size": [32, 32], "counts": "garbage"},
    {"size": [32, 32], "counts": [1024]},
    {"counts": None},
    _nested(60),
    [[0, 0, 48, 0, 48, 40] * 50],
    [[-1e6, -1e6, 1e6, -1e6, 1e6, 1e6]],
    {"a": [1, {"b": None}]},
    [2, 3, 1, 1],
    [0, 0, 48, 40],
    [True] * 51,
    [1e9] * 51,
]


def _children(node):
    if isinstance(node, dict):
        return list(node.keys())
    if isinstance(node, list):
        return list(range(len(node)))
    return []


def _random_slot(rng, data):
    """(container, key) somewhere in data; annotations and their fields are picked most often."""
    node = data
    annotations = data.get("annotations")
    if rng.random() < 0.6 and isinstance(annotations, list) and annotations:
        node = rng.choice(annotations)
        if not _children(node):
            return annotations, 0
    while True:
        keys = _children(node)
        if not keys:
            return data, "images"
        key = rng.choice(keys)
        child = node[key]
        if not _children(child) or rng.random() < 0.35:
            return node, key
        node = child


def _random_number_edit(rng, data):
    """A number deep in a polygon, box, RLE or image entry replaced by another number."""
    container, key = _random_slot(rng, data)
    container[key] = rng.choice([float("nan"), float("inf"), -1e308, 1e15, -5, 0, 1e9, 2**40, -0.0])


def _rle_string_edit(rng, data):
    annotations = data.get("annotations")
    for ann in annotations if isinstance(annotations, list) else []:
        segm = ann.get("segmentation") if isinstance(ann, dict) else None
        if isinstance(segm, dict) and isinstance(segm.get("counts"), str) and segm["counts"]:
            counts = list(segm["counts"])
            counts[rng.randrange(len(counts))] = chr(rng.randrange(40, 120))
            if rng.random() < 0.5:
                counts = counts[: rng.randrange(len(counts) + 1)]
            segm["counts"] = "".join(counts)
            return


def mutate(rng, data):
    """1 to 3 random edits of a json dict (in place)."""
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if op < 0.45:
            container, key = _random_slot(rng, data)
            container[key] = copy.deepcopy(rng.choice(HOSTILE))
        elif op < 0.6:
            container, key = _random_slot(rng, data)
            del container[key]
        elif op < 0.72:  # duplicate an entry (shared ids) or append a hostile one
            name = rng.choice(["images", "annotations", "categories"])
            if isinstance(data.get(name), list) and data[name]:
                entry = rng.choice(data[name]) if rng.random() < 0.7 else rng.choice(HOSTILE)
                data[name].append(copy.deepcopy(entry))
        elif op < 0.87:
            _random_number_edit(rng, data)
        else:
            _rle_string_edit(rng, data)


# ------------------------------------------------------------------------------- the child process
def _limit_memory():
    with open("/proc/self/status") as f:
        size_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = size_kb * 1024 + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _predictions(dataset):
    """Ground-truth-like predictions (BoxList per dataset index) with scores, masks and keypoints."""
    import torch

    from maskrcnn_benchmark.structures.bounding_box import BoxList
    from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

    out = []
    for index in range(len(dataset)):
        info = dataset.get_img_info(index)
        anns = [a for a in dataset.coco.imgToAnns[info["id"]] if not a["iscrowd"]]
        size = (info["width"], info["height"])
        boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        pred = BoxList(boxes, size, mode="xywh").convert("xyxy")
        pred.add_field("scores", torch.linspace(0.9, 0.5, len(anns)))
        pred.add_field("objectness", torch.linspace(0.9, 0.5, len(anns)))
        pred.add_field(
            "labels",
            torch.tensor(
                [dataset.json_category_id_to_contiguous_id[a["category_id"]] for a in anns], dtype=torch.int64
            ),
        )
        if dataset.has_masks:
            masks = [torch.from_numpy(dataset.coco.annToMask(a)) for a in anns]
            stacked = torch.stack(masks) if masks else torch.zeros(0, info["height"], info["width"])
            pred.add_field("mask", stacked[:, None].float())
        if dataset.has_keypoints:
            kps = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float32).reshape(-1, 17, 3)
            pred.add_field("keypoints", PersonKeypoints(kps, size))
        out.append(pred)
    return out


def _read_all(dataset, train):
    from maskrcnn_benchmark.data.datasets.coco import ImageSizeMismatch

    for index in range(len(dataset)):
        try:
            _, target, _ = dataset[index]
        except (OSError, ImageSizeMismatch) as e:
            # Allowed: a mutated file name or size at test time, or no usable image left in training.
            if "image id" not in str(e) and not (train and "no readable image" in str(e)):
                raise
            continue
        if target.has_field("masks"):
            target.get_field("masks").get_mask_tensor()
        assert len(target) == len(target.get_field("labels"))


def _evaluate(dataset):
    from maskrcnn_benchmark.data.datasets.evaluation.coco import do_coco_evaluation

    predictions = _predictions(dataset)
    iou_types = ("bbox",) + (("segm",) if dataset.has_masks else ()) + (("keypoints",) if dataset.has_keypoints else ())
    do_coco_evaluation(
        dataset,
        predictions,
        box_only=False,
        output_folder=None,
        iou_types=iou_types,
        expected_results=(),
        expected_results_sigma_tol=4,
    )
    do_coco_evaluation(
        dataset,
        predictions,
        box_only=True,
        output_folder=None,
        iou_types=iou_types,
        expected_results=(),
        expected_results_sigma_tol=4,
    )


def run_case(folder, data, case):
    from maskrcnn_benchmark.data.datasets import COCODataset

    ann_file = os.path.join(folder, f"case{case}.json")
    with open(ann_file, "w") as f:
        json.dump(data, f)
    root = os.path.join(folder, "images")
    outcome = {}
    for mode in ("skip", "error"):
        try:
            outcome[mode] = COCODataset(ann_file, root, False, on_bad_input=mode)
        except ValueError as e:
            assert ann_file in str(e), f"the message does not name the file: {e}"
            outcome[mode] = e
    skip, error = outcome["skip"], outcome["error"]
    if isinstance(skip, ValueError):  # a broken structure or categories: an error in both modes
        assert isinstance(error, ValueError) and str(error) == str(skip), (skip, error)
        return "unusable"
    assert isinstance(error, ValueError) == bool(skip.bad_input_counts), (error, skip.bad_input_counts)
    _read_all(skip, train=False)
    _evaluate(skip)
    train = COCODataset(ann_file, root, True, on_bad_input="skip")
    _read_all(train, train=True)
    return "skipped" if skip.bad_input_counts else "valid"


def main(folder, seed, num_cases):
    import logging

    import torch

    import maskrcnn_benchmark.data.datasets.evaluation.coco  # noqa: F401 (imported before the limit)

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # one summary per case would flood the output
    _limit_memory()
    rng = random.Random(seed)
    counts = {}
    for case in range(num_cases):
        data = base_json()
        mutate(rng, data)
        try:
            kind = run_case(folder, data, case)
        except BaseException:
            print(f"case {case} failed on:\n{json.dumps(data)[:3000]}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        counts[kind] = counts.get(kind, 0) + 1
    print(json.dumps(counts))


# --------------------------------------------------------------------------------------- the test
def _write_images(folder):
    from PIL import Image

    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    for image_id, w, h in IMAGES:
        Image.new("RGB", (w, h), (40 * image_id, 90, 30)).save(os.path.join(folder, "images", f"{image_id}.png"))


def test_mutated_files_never_crash_nor_exhaust_memory(tmp_path):
    _write_images(str(tmp_path))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), str(tmp_path), str(SEED), str(NUM_CASES)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-8000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert sum(counts.values()) == NUM_CASES
    # The mutations reach every outcome: unusable files, skipped problems, and harmless edits.
    assert counts.get("unusable", 0) > 0 and counts.get("skipped", 0) > NUM_CASES // 3, counts


def test_the_base_file_is_valid(tmp_path):
    _write_images(str(tmp_path))
    assert run_case(str(tmp_path), base_json(), 0) == "valid"


def test_the_memory_limit_stops_a_huge_allocation():
    code = (
        "import sys; sys.path.insert(0, {!r}); import test_coco_fuzz as t; t._limit_memory(); "
        "b = bytearray(3 * 1024 ** 3)"
    ).format(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "MemoryError" in result.stderr


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
