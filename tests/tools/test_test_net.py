"""tools/test_net.py end to end (subprocesses, CPU): evaluating needs weights that cover the whole
model; without any, or with a checkpoint of another model, it stops with a message saying what to
pass; --allow-random-weights evaluates anyway with a warning. Two 64x48 images, a tiny model."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
SMALL = [
    "MODEL.WEIGHT",
    "",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    "3",
    "INPUT.MIN_SIZE_TEST",
    "48",
    "INPUT.MAX_SIZE_TEST",
    "64",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    "50",
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    "20",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    "20",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG",
    "5",
    "DATALOADER.NUM_WORKERS",
    "0",
    "TEST.IMS_PER_BATCH",
    "2",
    "DATASETS.TEST",
    "('tiny',)",
]


def _write_dataset(folder):
    """A COCO-format dataset of two 64x48 images with one rectangle each."""
    os.makedirs(folder / "images")
    images, annotations = [], []
    for image_id, (x, y) in enumerate([(8, 6), (30, 20)], 1):
        image = Image.new("RGB", (64, 48), (20, 30, 40))
        ImageDraw.Draw(image).rectangle([x, y, x + 19, y + 15], fill=(200, 180, 60))
        image.save(folder / "images" / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 64, "height": 48})
        annotations.append(
            {
                "id": image_id,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "area": 320,
                "bbox": [x, y, 20, 16],
                "segmentation": [[x, y, x + 20, y, x + 20, y + 16, x, y + 16]],
            }
        )
    with open(folder / "ann.json", "w") as f:
        json.dump(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            },
            f,
        )
    return [["tiny", str(folder / "images"), str(folder / "ann.json")]]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("data"))


def _test_net(output_dir, dataset, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    command = [
        sys.executable,
        "tools/test_net.py",
        "--config-file",
        CONFIG,
        *args,
        *SMALL,
        "OUTPUT_DIR",
        str(output_dir),
        "DATASETS.REGISTER_COCO",
        repr(dataset),
    ]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_without_weights_it_stops_and_says_what_to_pass(tmp_path, dataset):
    code, out = _test_net(tmp_path / "run", dataset)
    assert code != 0
    assert "no weights to evaluate" in out and "--ckpt" in out and "--allow-random-weights" in out
    assert "Traceback" not in out
    assert not (tmp_path / "run" / "inference").exists()


def test_allow_random_weights_evaluates_with_a_warning(tmp_path, dataset):
    # The flag is also accepted after the KEY VALUE overrides, like train_net's --skip-test.
    code, out = _test_net(tmp_path / "run", dataset, "TEST.IMS_PER_BATCH", "1", "--allow-random-weights")
    assert code == 0, out[-3000:]
    assert "RANDOMLY INITIALISED" in out and "Task: bbox" in out
    assert (tmp_path / "run" / "inference" / "tiny" / "predictions.pth").exists()


def test_a_checkpoint_of_another_model_is_refused(tmp_path, dataset):
    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    other = cfg.clone()
    other.merge_from_file(CONFIG)  # 5 classes, not 3
    torch.save({"model": build_detection_model(other).state_dict()}, tmp_path / "five_classes.pth")
    code, out = _test_net(tmp_path / "run", dataset, "--ckpt", str(tmp_path / "five_classes.pth"))
    assert code != 0
    assert "five_classes.pth does not cover the whole model: 6 of" in out
    assert "cls_score.weight (model [3, 256] vs file [5, 256])" in out
    assert "Pass --allow-random-weights to evaluate anyway." in out and "Traceback" not in out
    # A file that is no checkpoint at all: the message names it, no traceback.
    (tmp_path / "notes.pth").write_text("not weights\n")
    code, out = _test_net(tmp_path / "run", dataset, "--ckpt", str(tmp_path / "notes.pth"))
    assert code != 0 and "notes.pth is a text file" in out and "Traceback" not in out


def test_help_documents_the_flag():
    proc = subprocess.run(
        [sys.executable, "tools/test_net.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "--allow-random-weights" in proc.stdout
