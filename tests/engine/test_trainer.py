"""do_train: checkpoints and metrics, exact resume, non-finite losses, gradient accumulation and
clipping, mixed precision on CPU. Batches come from a list (the data pipeline has its own tests)."""

import json
import os

import pytest
import torch

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError, do_train
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

CPU_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")


def _cfg(tmp_path, *opts):
    c = global_cfg.clone()
    c.merge_from_file(CPU_CONFIG)
    c.merge_from_list(
        [
            "OUTPUT_DIR",
            str(tmp_path),
            # float32: bfloat16 is emulated (slow) on CPUs without AVX512-BF16; the mixed-precision
            # test below sets DTYPE itself.
            "DTYPE",
            "float32",
            "SOLVER.BASE_LR",
            "0.01",
            "SOLVER.WARMUP_ITERS",
            "0",
            "SOLVER.LOG_PERIOD",
            "2",
            "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
            "200",
            "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
            "100",
            "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
            "100",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            "32",
            *[str(o) for o in opts],
        ]
    )
    return c


def _batch(seed):
    """Two 64x96 images, each with two boxes and their rectangle masks."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(2):
        images.append(torch.randn(3, 64, 96, generator=g) * 50)
        xy = torch.rand(2, 2, generator=g) * torch.tensor([50.0, 30.0])
        boxes = torch.cat([xy, xy + torch.tensor([30.0, 24.0])], 1)
        t = BoxList(boxes, (96, 64))
        t.add_field("labels", torch.tensor([1, 3]))
        t.add_field(
            "masks",
            SegmentationMask([[[x1, y1, x2, y1, x2, y2, x1, y2]] for x1, y1, x2, y2 in boxes.tolist()], (96, 64)),
        )
        targets.append(t)
    return to_image_list(images, 32), targets, (0, 1)


def _train(c, batches, arguments=None, checkpoint_period=0, model=None, seed=0):
    torch.manual_seed(seed)
    model = model or build_detection_model(c)
    optimizer = make_optimizer(c, model)
    scheduler = make_lr_scheduler(c, optimizer)
    checkpointer = Checkpointer(model, optimizer, scheduler, c.OUTPUT_DIR, save_to_disk=True)
    arguments = arguments if arguments is not None else {"iteration": 0}
    arguments.update(checkpointer.load(None))
    start = arguments["iteration"] * max(c.SOLVER.ACCUMULATE_GRAD_ITERS, 1)
    loader = _ListLoader(batches, start)
    do_train(c, model, loader, None, optimizer, scheduler, checkpointer, "cpu", checkpoint_period, 0, arguments)
    return model, optimizer, scheduler, arguments


class _ListLoader:
    """len() = batches of the whole run (like IterationBasedBatchSampler); iterates from `start`."""

    def __init__(self, batches, start=0):
        self.batches, self.start = batches, start

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches[self.start :])


def _metrics(tmp_path):
    with open(tmp_path / "metrics.json") as f:
        return [json.loads(line) for line in f]


def test_training_writes_checkpoints_and_metrics_and_the_loss_falls(tmp_path):
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 24)
    batch = _batch(0)
    _train(c, [batch] * 24, checkpoint_period=10)
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        "model_0000010.pth",
        "model_0000020.pth",
        "model_final.pth",
    ]
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / "model_final.pth")
    metrics = _metrics(tmp_path)
    assert [m["iteration"] for m in metrics] == list(range(2, 25, 2))
    for key in (
        "loss",
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
        "lr",
        "time",
        "data",
    ):
        assert key in metrics[0]
    assert metrics[-1]["loss"] < 0.6 * metrics[0]["loss"]
    assert 10 < metrics[-1]["max_mem_mb"] < 1e6  # on the CPU: the process's peak resident memory, MiB


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    batches = [_batch(s) for s in range(6)]
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    model_a, opt_a, sched_a, args_a = _train(_cfg(straight_dir, "SOLVER.MAX_ITER", 6), batches)
    # Stopped after iteration 3 (its checkpoint is the last one), then the same command again.
    _train(_cfg(resumed_dir, "SOLVER.MAX_ITER", 3), batches[:3])
    os.remove(resumed_dir / "metrics.json")
    model_b, opt_b, sched_b, args_b = _train(_cfg(resumed_dir, "SOLVER.MAX_ITER", 6), batches, seed=123)
    assert args_a["iteration"] == args_b["iteration"] == 6
    assert sched_a.last_epoch == sched_b.last_epoch == 6
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(opt_a.state_dict()["state"].values(), opt_b.state_dict()["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert [m["iteration"] for m in _metrics(resumed_dir)] == [4, 6]


class _LossModel(torch.nn.Module):
    """A stand-in detector: one weight, losses chosen per call (NaN at call `nan_at`)."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(3))
        self.calls, self.nan_at = 0, nan_at

    def forward(self, images, targets):
        self.calls += 1
        scale = float("nan") if self.calls == self.nan_at else 1.0
        return {"loss_a": (self.weight * images.tensors.mean()).sum() * scale, "loss_b": (self.weight**2).sum()}


def test_non_finite_loss_stops_before_the_step_and_keeps_the_last_healthy_checkpoint(tmp_path):
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 8)
    model = _LossModel(nan_at=5)
    with pytest.raises(NonFiniteLossError, match=r"iteration 5 .*loss_a=nan.*loss_b=.*resumes from .*model_0000002"):
        _train(c, [_batch(0)] * 8, checkpoint_period=2, model=model)
    # model_0000004 holds the weights the NaN loss was computed with: it never became the checkpoint
    # to resume from, and is deleted; model_0000002's weights gave the healthy loss of iteration 3.
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["model_0000002.pth"]
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("model_0000002.pth")
    assert torch.isfinite(model.weight).all()


class _SpikeModel(_LossModel):
    """Finite losses that explode (x1e21) from call `spike_at` on, as when BASE_LR is far too high."""

    def __init__(self, spike_at):
        super().__init__()
        self.spike_at = spike_at

    def forward(self, images, targets):
        losses = super().forward(images, targets)
        if self.calls >= self.spike_at:
            losses["loss_b"] = losses["loss_b"] * 1e21
        return losses


@pytest.mark.parametrize("spike_at, expected_left", [(7, ["model_0000002.pth", "model_0000004.pth"]), (2, [])])
def test_an_exploding_finite_loss_stops_the_run_and_its_checkpoint_is_not_the_one_to_resume(
    tmp_path, spike_at, expected_left
):
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 10)
    with pytest.raises(NonFiniteLossError, match=rf"diverging at iteration {spike_at}.*run the same command again"):
        _train(c, [_batch(0)] * 10, checkpoint_period=2, model=_SpikeModel(spike_at))
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == expected_left
    if expected_left:
        assert (tmp_path / "last_checkpoint").read_text().strip().endswith(expected_left[-1])
    else:
        assert not (tmp_path / "last_checkpoint").exists()


class _InterruptedModel(_LossModel):
    """Ctrl-C (KeyboardInterrupt) during call `at`."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def forward(self, images, targets):
        if self.calls + 1 == self.at:
            raise KeyboardInterrupt
        return super().forward(images, targets)


def test_ctrl_c_right_after_a_save_keeps_that_checkpoint_as_the_one_to_resume(tmp_path):
    # model_0000002 is written after iteration 2; Ctrl-C comes before iteration 3 checked its weights.
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 6)
    with pytest.raises(KeyboardInterrupt):
        _train(c, [_batch(0)] * 6, checkpoint_period=2, model=_InterruptedModel(3))
    assert (tmp_path / "last_checkpoint").read_text().strip().endswith("model_0000002.pth")


def test_divergence_ratio_zero_only_stops_on_non_finite_losses(tmp_path):
    # (BASE_LR 0: the exploded losses leave the weights finite.)
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 4, "SOLVER.DIVERGENCE_RATIO", 0.0, "SOLVER.BASE_LR", 0.0)
    _, _, _, arguments = _train(c, [_batch(0)] * 4, model=_SpikeModel(3))
    assert arguments["iteration"] == 4


def test_the_reference_loss_is_kept_across_a_resume(tmp_path):
    # Reference measured on the first 20 iterations of the first run; the resumed run (whose own
    # losses are all 1e21 times larger) is stopped at its first iteration.
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 20)
    _train(c, [_batch(0)] * 20, model=_LossModel())
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert saved["reference_loss"] > 0 and len(saved["rng_states"]) == 1
    with pytest.raises(NonFiniteLossError, match="diverging at iteration 21"):
        _train(_cfg(tmp_path, "SOLVER.MAX_ITER", 22), [_batch(0)] * 22, model=_SpikeModel(1))


def test_gradient_accumulation_steps_once_per_iteration_and_clipping_bounds_the_update(tmp_path):
    c = _cfg(
        tmp_path,
        "SOLVER.MAX_ITER",
        2,
        "SOLVER.ACCUMULATE_GRAD_ITERS",
        3,
        "SOLVER.CLIP_GRAD_NORM",
        1e-3,
        "SOLVER.WEIGHT_DECAY",
        0.0,
        "SOLVER.MOMENTUM",
        0.0,
    )
    model = _LossModel()
    before = model.weight.detach().clone()
    _, _, scheduler, arguments = _train(c, [_batch(s) for s in range(6)], model=model)
    assert model.calls == 6 and arguments["iteration"] == 2 and scheduler.last_epoch == 2
    # Two SGD steps on gradients clipped to norm 1e-3 at lr 0.01 move the weight by <= 2e-5 (float32
    # rounding of weights near 1.0 adds ~1%).
    assert 0 < (model.weight.detach() - before).norm() <= 2 * 0.01 * 1e-3 * 1.05
    assert "grad_norm" in _metrics(tmp_path)[-1]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_trains_on_cpu(tmp_path, dtype):
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 2, "DTYPE", dtype)
    _, _, _, arguments = _train(c, [_batch(0)] * 2)
    assert arguments["iteration"] == 2
    assert all(torch.isfinite(torch.tensor(m["loss"])) for m in _metrics(tmp_path))
    saved = torch.load(tmp_path / "model_final.pth", weights_only=True)
    assert ("scaler" in saved) == (dtype == "float16")


def test_tensorboard_events_are_written_when_tensorboard_is_installed(tmp_path, monkeypatch):
    # tensorboard is optional (not installed here): stand in a SummaryWriter that records its calls.
    import sys
    import types

    calls = []

    class SummaryWriter:
        def __init__(self, log_dir):
            calls.append(("init", log_dir))

        def add_scalar(self, name, value, step):
            calls.append((name, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close", None))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    c = _cfg(tmp_path, "SOLVER.MAX_ITER", 4)
    _train(c, [_batch(0)] * 4, model=_LossModel())
    assert calls[0] == ("init", str(tmp_path / "tensorboard")) and calls[-1] == ("close", None)
    assert ("loss", 2) in calls and ("lr", 4) in calls


def test_validation_metrics_read_every_evaluation_result():
    import numpy as np

    from maskrcnn_benchmark.data.datasets.evaluation.cityscapes import CityscapesResults
    from maskrcnn_benchmark.data.datasets.evaluation.coco.results import COCOResults
    from maskrcnn_benchmark.engine.trainer import validation_metrics

    coco = COCOResults("bbox", "segm")
    coco.results["bbox"]["AP"] = 0.25
    coco.results["segm"]["AP50"] = 0.5
    flat = validation_metrics((coco, {}))
    assert flat["val/bbox/AP"] == 0.25 and flat["val/segm/AP50"] == 0.5
    assert len(flat) == 12  # six COCO stats per task

    city = CityscapesResults()
    city.add("segm", {"allAp": 0.1, "allAp50%": 0.2, "allAp75%": 0.05, "classes": {}})
    assert validation_metrics((city, {})) == {"val/segm/AP": 0.1, "val/segm/AP50": 0.2, "val/segm/AP75": 0.05}

    # Pascal VOC returns a dict (per-class AP array and the mean); the periodic validation used to
    # index it as a tuple and fail in the middle of training.
    assert validation_metrics({"ap": np.array([0.5, 0.7]), "map": 0.6}) == {"val/bbox/mAP": 0.6}
    assert validation_metrics(None) == {}
    with pytest.raises(TypeError, match="validation"):
        validation_metrics(3)
