"""tools/demo.py (a folder of images, a single image, a video) and tools/visualize_data.py (a tiny
COCO-format dataset with masks and keypoints), run as subprocesses on a tiny CPU model."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
TINY = [
    "MODEL.DEVICE",
    "cpu",
    "DTYPE",
    "float32",
    "MODEL.ROI_HEADS.SCORE_THRESH",
    "0.0",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG",
    "5",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    "60",
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    "30",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    "30",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "96",
    "TEST.IMS_PER_BATCH",
    "2",
]


def _run(script, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [sys.executable, os.path.join("tools", script), *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised tiny model saved with a labels.json beside it."""
    folder = tmp_path_factory.mktemp("weights")
    cfg = global_cfg.clone()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(TINY)
    torch.manual_seed(0)
    torch.save({"model": build_detection_model(cfg).state_dict()}, folder / "model.pth")
    with open(folder / "labels.json", "w") as f:
        json.dump({"labels": ["__background", "circle", "triangle", "square", "star"]}, f)
    return str(folder / "model.pth")


def _demo(weights, *args):
    return _run(
        "demo.py",
        "--config-file",
        CONFIG,
        "--weights",
        weights,
        "--confidence-threshold",
        "0.0",
        *args,
        *TINY,
        "OUTPUT_DIR",
        os.path.dirname(weights),
    )


def _picture(height, width, seed):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def test_demo_on_a_folder_and_a_single_image(weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _picture(60, 80, 0))
    cv2.imwrite(str(folder / "b.jpg"), _picture(90, 70, 1))
    (folder / "notes.txt").write_text("not an image")
    _ok(_demo(weights, "--input", folder, "--output", tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.jpg"]
    a = cv2.imread(str(tmp_path / "out" / "a.png"))
    assert a.shape == (60, 80, 3) and (a != _picture(60, 80, 0)).any()
    assert cv2.imread(str(tmp_path / "out" / "b.jpg")).shape == (90, 70, 3)
    # one image to a file name
    _ok(_demo(weights, "--input", folder / "a.png", "--output", tmp_path / "single.jpg"))
    assert cv2.imread(str(tmp_path / "single.jpg")).shape == (60, 80, 3)


def test_demo_on_a_video(weights, tmp_path):
    source = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(source, cv2.VideoWriter_fourcc(*"MJPG"), 5, (80, 64))
    assert writer.isOpened()
    for k in range(5):
        writer.write(_picture(64, 80, k))
    writer.release()
    _ok(_demo(weights, "--input", source, "--output", tmp_path / "out"))
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (64, 80, 3)


def test_demo_reports_a_missing_input(weights, tmp_path):
    proc = _demo(weights, "--input", tmp_path / "nothing.png", "--output", tmp_path / "out")
    assert proc.returncode != 0 and "nothing.png" in proc.stderr


def _write_dataset(folder, num_images=3):
    """COCO json: 96x128 images with one rectangle ("box") and one stick person with 17 keypoints."""
    os.makedirs(folder / "images")
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        picture = np.full((96, 128, 3), 60, dtype=np.uint8)
        cv2.rectangle(picture, (10, 20), (49, 59), (0, 200, 255), -1)
        cv2.imwrite(str(folder / "images" / f"{image_id}.png"), picture)
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 128, "height": 96})
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [10, 20, 40, 40],
                "area": 1600,
                "segmentation": [[10, 20, 50, 20, 50, 60, 10, 60]],
            }
        )
        keypoints = []
        for k in range(17):
            keypoints += [70 + 2 * k, 15 + 4 * k, 2]
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 2,
                "iscrowd": 0,
                "bbox": [68, 12, 40, 75],
                "area": 3000,
                "num_keypoints": 17,
                "keypoints": keypoints,
                "segmentation": [[68, 12, 108, 12, 108, 87, 68, 87]],
            }
        )
    categories = [
        {"id": 1, "name": "box"},
        {"id": 2, "name": "person", "keypoints": PersonKeypoints.NAMES, "skeleton": []},
    ]
    with open(folder / "ann.json", "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return [["tiny_vis", str(folder / "images"), str(folder / "ann.json")]]


def test_visualize_data_draws_ground_truth_after_the_transforms(tmp_path):
    register = _write_dataset(tmp_path / "data")
    output = tmp_path / "pictures"
    log = _ok(
        _run(
            "visualize_data.py",
            "--config-file",
            CONFIG,
            "--dataset",
            "tiny_vis",
            "--output",
            output,
            "--num",
            2,
            "DATASETS.REGISTER_COCO",
            repr(register),
            "INPUT.MIN_SIZE_TRAIN",
            "(192,)",
            "INPUT.MAX_SIZE_TRAIN",
            "256",
            "INPUT.HORIZONTAL_FLIP_PROB_TRAIN",
            "0.0",
        )
    )
    assert "tiny_vis: 2 of 3 images drawn" in log
    files = sorted(os.listdir(output))
    assert files == ["tiny_vis_00000.png", "tiny_vis_00001.png"]
    picture = cv2.imread(str(output / files[0]))
    assert picture.shape == (192, 256, 3)  # the training resize (x2) was applied
    plain = np.full((192, 256, 3), 60, dtype=np.uint8)
    changed = np.any(np.abs(picture.astype(int) - plain) > 8, axis=2)
    assert changed[40:120, 20:100].mean() > 0.9  # the rectangle, its mask fill and outline
    assert changed[30:175, 136:216].any()  # the person's keypoint skeleton
    assert not changed[150:, :100].any()  # background far from both (colour jitter is off by default)
    # --test uses the test transforms (MIN_SIZE_TEST)
    _ok(
        _run(
            "visualize_data.py",
            "--config-file",
            CONFIG,
            "--dataset",
            "tiny_vis",
            "--test",
            "--output",
            tmp_path / "test",
            "--num",
            1,
            "DATASETS.REGISTER_COCO",
            repr(register),
            "INPUT.MIN_SIZE_TEST",
            "48",
            "INPUT.MAX_SIZE_TEST",
            "64",
        )
    )
    assert cv2.imread(str(tmp_path / "test" / "tiny_vis_00000.png")).shape == (48, 64, 3)


def _load_demo_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_tool", os.path.join(REPO, "tools", "demo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_camera_frames_are_written_to_a_video(tmp_path, monkeypatch):
    """The camera path with a video file standing in for the camera and a stub demo (no model)."""
    source = str(tmp_path / "camera.avi")
    writer = cv2.VideoWriter(source, cv2.VideoWriter_fourcc(*"MJPG"), 5, (48, 32))
    for k in range(6):
        writer.write(_picture(32, 48, k))
    writer.release()
    tool = _load_demo_tool()
    real_capture = cv2.VideoCapture
    monkeypatch.setattr(tool.cv2, "VideoCapture", lambda index: real_capture(source) if index == 0 else None)

    class StubDemo:
        def run_on_opencv_images(self, frames):
            return [255 - frame for frame in frames]

    tool.run_on_camera(StubDemo(), 0, str(tmp_path / "out"), max_frames=4)
    capture = real_capture(str(tmp_path / "out" / "camera0.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_inputs_and_output_names(tmp_path):
    from maskrcnn_benchmark.utils import demo_io

    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    (tmp_path / "c.txt").write_bytes(b"")
    assert demo_io.resolve_input("0") == ("camera", 0)
    assert demo_io.resolve_input(str(tmp_path)) == ("files", [str(tmp_path / "a.jpg")])
    assert demo_io.resolve_input(str(tmp_path / "*")) == ("files", [str(tmp_path / "a.jpg"), str(tmp_path / "b.mp4")])
    with pytest.raises(ValueError, match="not an image"):
        demo_io.resolve_input(str(tmp_path / "c.txt"))
    with pytest.raises(FileNotFoundError):
        demo_io.resolve_input(str(tmp_path / "*.png"))
    root = str(tmp_path)
    assert demo_io.output_path_for(str(tmp_path / "a.jpg"), root, "out.png", single=True) == "out.png"
    assert demo_io.output_path_for(str(tmp_path / "a.jpg"), root, "out", single=True) == os.path.join("out", "a.jpg")
    assert demo_io.output_path_for(str(tmp_path / "b.mp4"), root, "out", False, ".mp4") == os.path.join("out", "b.mp4")
    assert demo_io.output_path_for(str(tmp_path / "b.mp4"), root, "x.avi", True, ".mp4") == "x.avi"
