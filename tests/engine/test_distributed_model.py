"""engine/distributed_model.py: DistributedDataParallel with the SOLVER.DDP keys.

Two CPU processes (gloo, under torchrun: this file is also the worker script) train the CPU Mask
R-CNN on tiny synthetic images with each SOLVER.DDP variant, from the same initial weights and on
the same per-process batches: the defaults (gradients as bucket views + static graph) give the losses
and weights of plain DDP (the old settings), the 16-bit compression hooks stay close, and gradient
accumulation (no_sync, static graph off by itself) matches plain DDP with accumulation. In the last
iteration process 1's images hold no object (no positive proposal): the static graph holds, since the
mask head's parameters still get (zero) gradients. The config
checks and the start-up error of an unsupported compression are tested in this process.
"""

import os
import sys
from contextlib import nullcontext
from typing import Dict, List, Sequence

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
ITERS = 2  # the second runs with the buckets DDP rebuilt (and, with a static graph, learnt) in the first
PLAIN = ["SOLVER.DDP.GRADIENT_AS_BUCKET_VIEW", "False", "SOLVER.DDP.STATIC_GRAPH", "False"]
# name -> SOLVER overrides of a variant, trained in the worker in this order.
VARIANTS: Dict[str, List[str]] = {
    "plain": PLAIN,
    "defaults": [],
    "fp16": ["SOLVER.DDP.GRADIENT_COMPRESSION", "fp16"],
    "bf16": ["SOLVER.DDP.GRADIENT_COMPRESSION", "bf16"],
    "plain_accumulate": PLAIN + ["SOLVER.ACCUMULATE_GRAD_ITERS", "2"],
    "defaults_accumulate": ["SOLVER.ACCUMULATE_GRAD_ITERS", "2"],
}


def _cfg(opts: Sequence[str] = ()):
    from maskrcnn_benchmark.config import cfg as global_cfg

    c = global_cfg.clone()
    c.merge_from_file(CONFIG)
    c.merge_from_list(
        [
            "MODEL.DEVICE",
            "cpu",
            "MODEL.WEIGHT",
            "",
            "DTYPE",
            "float32",
            "OUTPUT_DIR",
            "",
            "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
            "50",
            "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
            "50",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            "64",
            *opts,
        ]
    )
    return c


def _batch(rank: int, iteration: int, micro: int):
    """Two 64x96 images with two rectangles each, different per process and micro-batch; none for
    process 1's first micro-batch of the last iteration."""
    from maskrcnn_benchmark.structures.bounding_box import BoxList
    from maskrcnn_benchmark.structures.image_list import to_image_list
    from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

    g = torch.Generator().manual_seed(100 * rank + 10 * iteration + micro)
    objects = 0 if (rank, iteration, micro) == (1, ITERS - 1, 0) else 2
    images, targets = [], []
    for _ in range(2):
        images.append(torch.randn(3, 64, 96, generator=g) * 50)
        xy = torch.randint(0, 30, (objects, 2), generator=g).float()
        boxes = torch.cat([xy, xy + torch.randint(20, 36, (objects, 2), generator=g)], dim=1)
        target = BoxList(boxes, (96, 64))
        target.add_field("labels", torch.randint(1, 3, (objects,), generator=g))
        polygons = [[[x0, y0, x1, y0, x1, y1, x0, y1]] for x0, y0, x1, y1 in boxes.tolist()]
        target.add_field("masks", SegmentationMask(polygons, (96, 64)))
        targets.append(target)
    return to_image_list(images, 32), targets


def _worker(out_path: str) -> None:
    """torchrun's worker: train every variant ITERS iterations; rank 0 saves losses and weights."""
    import torch.distributed as dist

    sys.path.insert(0, REPO)
    from maskrcnn_benchmark.engine.distributed_model import wrap_distributed
    from maskrcnn_benchmark.engine.trainer import reduce_loss_dict
    from maskrcnn_benchmark.modeling.detector import build_detection_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    results = {}
    for name, opts in VARIANTS.items():
        cfg = _cfg(opts)
        torch.manual_seed(0)
        ddp = wrap_distributed(build_detection_model(cfg), cfg, 0)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.02, momentum=0.9)
        accumulate = cfg.SOLVER.ACCUMULATE_GRAD_ITERS
        losses = []
        initial = {k: v.clone() for k, v in ddp.module.state_dict().items()}
        for iteration in range(ITERS):
            total = 0.0
            for micro in range(accumulate):  # the trainer's pattern: no_sync() but on the last micro-batch
                images, targets = _batch(rank, iteration, micro)
                with ddp.no_sync() if micro < accumulate - 1 else nullcontext():
                    loss_dict = ddp(images, targets)
                    (sum(loss_dict.values()) / accumulate).backward()
                total += float(sum(reduce_loss_dict(loss_dict).values())) / accumulate
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(total)
        results[name] = {
            "losses": losses,
            "initial": initial,
            "weights": {k: v.clone() for k, v in ddp.module.state_dict().items()},
            "static_graph": ddp.static_graph,
            "bucket_view": ddp.gradient_as_bucket_view,
        }
    if rank == 0:
        torch.save(results, out_path)
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import tiny_training as tt

    out = tmp_path_factory.mktemp("ddp") / "results.pth"
    tt.run(tt.launcher(2, script=os.path.abspath(__file__)) + [str(out)], timeout=300)
    return torch.load(out, weights_only=False)


def _assert_weights_close(a: dict, b: dict, rtol: float, atol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)


def test_defaults_use_bucket_views_and_a_static_graph_and_train_like_plain_ddp(trained):
    plain, defaults = trained["plain"], trained["defaults"]
    assert (plain["bucket_view"], plain["static_graph"]) == (False, False)
    assert (defaults["bucket_view"], defaults["static_graph"]) == (True, True)
    assert defaults["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    moved = [k for k in plain["weights"] if not torch.equal(plain["weights"][k], plain["initial"][k])]
    assert any("mask" in k for k in moved) and any("backbone" in k for k in moved)  # it trains at all
    _assert_weights_close(defaults["weights"], plain["weights"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compression", ["fp16", "bf16"])
def test_compressed_gradients_stay_close_to_plain_ddp(trained, compression):
    plain, compressed = trained["plain"], trained[compression]
    assert compressed["losses"] == pytest.approx(plain["losses"], rel=2e-2)
    _assert_weights_close(compressed["weights"], plain["weights"], rtol=0.0, atol=2e-3)


def test_gradient_accumulation_turns_the_static_graph_off_and_matches_plain_ddp(trained):
    plain, defaults = trained["plain_accumulate"], trained["defaults_accumulate"]
    assert (defaults["bucket_view"], defaults["static_graph"]) == (True, False)
    assert defaults["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    _assert_weights_close(defaults["weights"], plain["weights"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "opts, key, allowed",
    [
        (["SOLVER.DDP.GRADIENT_COMPRESSION", "int8"], "SOLVER.DDP.GRADIENT_COMPRESSION", "'none', 'fp16', 'bf16'"),
        (["SOLVER.DDP.GRADIENT_COMPRESSION", "FP16"], "SOLVER.DDP.GRADIENT_COMPRESSION", "'none', 'fp16', 'bf16'"),
        (["SOLVER.DDP.BUCKET_CAP_MB", "0"], "SOLVER.DDP.BUCKET_CAP_MB", "> 0"),
        (["SOLVER.DDP.FIND_UNUSED_PARAMETERS", "True"], "SOLVER.DDP.FIND_UNUSED_PARAMETERS", "STATIC_GRAPH False"),
    ],
)
def test_config_checks_reject_bad_values_naming_key_and_value(opts, key, allowed):
    from maskrcnn_benchmark.config.checks import ConfigValueError, check_config

    with pytest.raises(ConfigValueError) as e:
        check_config(_cfg(opts))
    message = str(e.value)
    assert key in message and repr(_cfg(opts).SOLVER.DDP[key.split(".")[-1]]) in message and allowed in message


def test_config_checks_accept_the_ddp_settings_users_may_choose():
    from maskrcnn_benchmark.config.checks import check_config

    check_config(
        _cfg(
            [
                "SOLVER.DDP.STATIC_GRAPH",
                "False",
                "SOLVER.DDP.FIND_UNUSED_PARAMETERS",
                "True",
                "SOLVER.DDP.GRADIENT_COMPRESSION",
                "bf16",
                "SOLVER.DDP.BUCKET_CAP_MB",
                "100",
            ]
        )
    )


def test_an_unsupported_compression_dtype_fails_at_start_up_naming_key_value_and_backend(monkeypatch):
    from maskrcnn_benchmark.config import ConfigValueError
    from maskrcnn_benchmark.engine import distributed_model

    def refuse(tensor, *args, **kwargs):
        raise RuntimeError(f"Invalid scalar type {tensor.dtype}")

    monkeypatch.setattr(distributed_model.dist, "get_backend", lambda *args: "gloo")
    monkeypatch.setattr(distributed_model.dist, "all_reduce", refuse)
    distributed_model.check_compression_supported("none")  # nothing to probe
    with pytest.raises(ConfigValueError) as e:
        distributed_model.check_compression_supported("bf16")
    assert "SOLVER.DDP.GRADIENT_COMPRESSION is 'bf16'" in str(e.value) and "gloo" in str(e.value)
    assert "NCCL" in str(e.value)


if __name__ == "__main__":
    _worker(sys.argv[1])
