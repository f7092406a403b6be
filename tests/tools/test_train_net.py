"""tools/train_net.py and tools/test_net.py end to end on CPU, in subprocesses: two processes under
torchrun (gloo) compute the same first iteration as one process, a stopped run resumes exactly, and
test_net evaluates a checkpoint. Tiny images and a tiny COCO-format dataset (tools/tiny_training.py)."""

import json
import os
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import tiny_training as tt  # noqa: E402
from tiny_training import CONFIG, TINY  # noqa: E402
from tiny_training import write_dataset as _write_dataset  # noqa: E402


def _train(output_dir, register, *opts, nproc=1, skip_test=True):
    return tt.run(tt.launcher(nproc) + tt.train_args(output_dir, register, opts, skip_test=skip_test))


def _metrics(output_dir):
    with open(output_dir / "metrics.json") as f:
        return [json.loads(line) for line in f]


_weights = tt.weights


def test_two_processes_under_torchrun_match_one_process(tmp_path):
    # Two identical images: one process trains on both in one batch, two processes on one each; the
    # loss (averaged over processes) and the weights after the step (DDP averages gradients) agree.
    # In float32: under the config's bfloat16 autocast, the other order of the gradient sums moves
    # gradients by a bfloat16 rounding step (~1e-3), far beyond any tolerance this check can use.
    register = _write_dataset(tmp_path / "data", 2, identical=True)
    single, double = tmp_path / "single", tmp_path / "double"
    _train(single, register, "SOLVER.MAX_ITER", 1, "SOLVER.IMS_PER_BATCH", 2, "DTYPE", "float32")
    log = _train(
        double, register, "SOLVER.MAX_ITER", 1, "SOLVER.IMS_PER_BATCH", 2, "DTYPE", "float32", nproc=2, skip_test=False
    )
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
    out = tt.run(
        [
            sys.executable,
            "tools/test_net.py",
            "--config-file",
            CONFIG,
            "--ckpt",
            str(resumed / "model_final.pth"),
            *TINY,
            "OUTPUT_DIR",
            str(resumed),
            "DATASETS.REGISTER_COCO",
            repr(register),
        ]
    )
    assert "Task: bbox" in out and "Task: segm" in out
    assert (resumed / "inference" / "tiny" / "predictions.pth").exists()
    assert (resumed / "inference" / "tiny" / "bbox.json").exists()


def test_fine_tuning_from_a_finished_run_with_another_number_of_classes(tmp_path):
    # MODEL.WEIGHT in a fresh OUTPUT_DIR only initialises the model: training starts at iteration 1
    # (not at the finished run's last one), and the class-specific layers of other shapes are skipped.
    register = _write_dataset(tmp_path / "data", 4)
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    _train(first, register, "SOLVER.MAX_ITER", 2, "SOLVER.IMS_PER_BATCH", 2)
    # The new dataset: the same images with 4 categories (2 of them unused), so NUM_CLASSES 5.
    name, images, ann_file = register[0]
    with open(ann_file) as f:
        data = json.load(f)
    data["categories"] += [{"id": 5, "name": "c"}, {"id": 7, "name": "d"}]
    with open(tmp_path / "four.json", "w") as f:
        json.dump(data, f)
    register = [[name, images, str(tmp_path / "four.json")]]
    log = _train(
        tuned,
        register,
        "SOLVER.MAX_ITER",
        2,
        "SOLVER.IMS_PER_BATCH",
        2,
        "MODEL.WEIGHT",
        first / "model_final.pth",
        "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
        5,
    )
    assert [m["iteration"] for m in _metrics(tuned)] == [1, 2]
    assert "cls_score" in log and "mask_fcn_logits" in log  # named in the skipped-shapes warning
    tuned_weights, first_weights = _weights(tuned), _weights(first)
    assert tuned_weights["roi_heads.box.predictor.cls_score.weight"].shape[0] == 5
    assert first_weights["roi_heads.box.predictor.cls_score.weight"].shape[0] == 3
