"""tools/train_net.py and tools/test_net.py end to end on CPU, in subprocesses: two processes under
torchrun (gloo) compute the same first iteration as one process, a stopped run resumes exactly, and
test_net evaluates a checkpoint. Tiny images and a tiny COCO-format dataset written here."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")


def _write_dataset(folder, num_images, identical=False):
    """A COCO-format dataset of 96x128 images with 2-3 coloured rectangles each (exact polygons)."""
    os.makedirs(folder / "images", exist_ok=True)
    g = torch.Generator().manual_seed(0)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        if identical:
            g.manual_seed(0)
        image = Image.new("RGB", (128, 96), tuple(torch.randint(0, 80, (3,), generator=g).tolist()))
        draw = ImageDraw.Draw(image)
        for k in range(2 + int(torch.randint(0, 2, (1,), generator=g))):
            x, y = torch.randint(0, 80, (1,), generator=g).item(), torch.randint(0, 50, (1,), generator=g).item()
            w, h = torch.randint(16, 40, (2,), generator=g).tolist()
            draw.rectangle([x, y, x + w - 1, y + h - 1], fill=tuple(torch.randint(120, 255, (3,), generator=g).tolist()))
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1 + 2 * (k % 2), "iscrowd": 0,
                "bbox": [x, y, w, h], "area": w * h, "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            })
        name = f"{image_id:04d}.png"
        image.save(folder / "images" / name)
        images.append({"id": image_id, "file_name": name, "width": 128, "height": 96})
    categories = [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}]
    with open(folder / "ann.json", "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return [["tiny", str(folder / "images"), str(folder / "ann.json")]]


# Deterministic tiny training: every anchor and proposal is sampled (no random subsets), per-image
# proposal top-N, no flips, one data process.
TINY = [
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "100000", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "100000",
    "MODEL.RPN.FPN_POST_NMS_PER_BATCH", "False", "MODEL.RPN.PRE_NMS_TOP_N_TRAIN", "100",
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN", "50", "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN", "50",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST", "100", "MODEL.RPN.POST_NMS_TOP_N_TEST", "50", "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST", "50",
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "128", "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "128",
    "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", "0.0", "DATALOADER.NUM_WORKERS", "0", "SOLVER.LOG_PERIOD", "1",
    "SOLVER.WARMUP_ITERS", "0", "SOLVER.BASE_LR", "0.01", "DATASETS.TRAIN", "('tiny',)", "DATASETS.TEST", "('tiny',)",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3", "TEST.IMS_PER_BATCH", "2",
]


def _run(args, env_extra=None, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _train(output_dir, register, *opts, nproc=1, skip_test=True):
    overrides = TINY + ["OUTPUT_DIR", str(output_dir), "DATASETS.REGISTER_COCO", repr(register), *map(str, opts)]
    if nproc == 1:
        command = [sys.executable, "tools/train_net.py"]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={port}",
                   "tools/train_net.py"]
    return _run(command + ["--config-file", CONFIG, *(["--skip-test"] if skip_test else []), *overrides])


def _metrics(output_dir):
    with open(output_dir / "metrics.json") as f:
        return [json.loads(line) for line in f]


def _weights(output_dir):
    return torch.load(output_dir / "model_final.pth", weights_only=True)["model"]


def test_two_processes_under_torchrun_match_one_process(tmp_path):
    # Two identical images: one process trains on both in one batch, two processes on one each; the
    # loss (averaged over processes) and the weights after the step (DDP averages gradients) agree.
    register = _write_dataset(tmp_path / "data", 2, identical=True)
    single, double = tmp_path / "single", tmp_path / "double"
    _train(single, register, "SOLVER.MAX_ITER", 1, "SOLVER.IMS_PER_BATCH", 2)
    log = _train(double, register, "SOLVER.MAX_ITER", 1, "SOLVER.IMS_PER_BATCH", 2, nproc=2, skip_test=False)
    assert "Using 2 processes" in log
    # ... and evaluates with both processes (one image each, gathered on the main one).
    assert "Task: bbox" in log and (double / "inference" / "tiny" / "coco_results.json").exists()
    one, two = _metrics(single)[0], _metrics(double)[0]
    for key in ("loss", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
    for (name, a), b in zip(_weights(single).items(), _weights(double).values()):
        torch.testing.assert_close(b.float(), a.float(), rtol=1e-4, atol=1e-6, msg=name)


def test_a_stopped_run_resumes_exactly_and_test_net_evaluates_it(tmp_path):
    register = _write_dataset(tmp_path / "data", 6)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _train(straight, register, "SOLVER.MAX_ITER", 4, "SOLVER.IMS_PER_BATCH", 2, "SOLVER.TEST_PERIOD", 2)
    _train(resumed, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2)  # "interrupted" after iteration 2
    log = _train(resumed, register, "SOLVER.MAX_ITER", 4, "SOLVER.IMS_PER_BATCH", 2)  # the same command again
    assert "Loading checkpoint from" in log
    assert [m["iteration"] for m in _metrics(resumed)] == [1, 2, 3, 4]
    # The straight run also validated every 2 iterations (COCO AP of the test set in metrics.json),
    # which must not disturb training.
    straight_losses = [m for m in _metrics(straight) if "loss" in m]
    assert [m["iteration"] for m in _metrics(straight) if "val/bbox/AP" in m] == [2, 4]
    assert [m["loss"] for m in _metrics(resumed)] == pytest.approx([m["loss"] for m in straight_losses], rel=1e-6)
    for (name, a), b in zip(_weights(straight).items(), _weights(resumed).values()):
        assert torch.equal(a, b), name
    # test_net on the final checkpoint writes COCO results for the test set.
    out = _run([sys.executable, "tools/test_net.py", "--config-file", CONFIG, "--ckpt", str(resumed / "model_final.pth"),
                *TINY, "OUTPUT_DIR", str(resumed), "DATASETS.REGISTER_COCO", repr(register)])
    assert "Task: bbox" in out and "Task: segm" in out
    assert (resumed / "inference" / "tiny" / "predictions.pth").exists()
    assert (resumed / "inference" / "tiny" / "bbox.json").exists()


def test_fine_tuning_from_a_finished_run_with_another_number_of_classes(tmp_path):
    # MODEL.WEIGHT in a fresh OUTPUT_DIR only initialises the model: training starts at iteration 1
    # (not at the finished run's last one), and the class-specific layers of other shapes are skipped.
    register = _write_dataset(tmp_path / "data", 4)
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    _train(first, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2)
    log = _train(tuned, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2,
                 "MODEL.WEIGHT", first / "model_final.pth", "MODEL.ROI_BOX_HEAD.NUM_CLASSES", 5)
    assert [m["iteration"] for m in _metrics(tuned)] == [1, 2]
    assert "cls_score" in log and "mask_fcn_logits" in log  # named in the skipped-shapes warning
    tuned_weights, first_weights = _weights(tuned), _weights(first)
    assert tuned_weights["roi_heads.box.predictor.cls_score.weight"].shape[0] == 5
    assert first_weights["roi_heads.box.predictor.cls_score.weight"].shape[0] == 3
