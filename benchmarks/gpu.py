"""GPU benchmark: our CUDA ops and Mask R-CNN R-50-FPN against torchvision on the same GPU, in one run.

    python benchmarks/gpu.py [--repeats 20] [--skip-ops] [--skip-model]

Ops (CUDA events, median of --repeats after a warm-up): ROIAlign and ROIPool forward+backward on
the workload of ops_roi.py, NMS on 20,000 RPN-like boxes (torchvision gets the boxes shifted by
[0, 0, 1, 1], so both compute the original's "+1" IoU), batched NMS over 80 classes.

Model (random weights, seed 0; torchvision's maskrcnn_resnet50_fpn with the same settings as
benchmarks/inference.py): inference seconds per image on one 480x640 image (resize to 800, 1000
proposals, 100 detections, masks pasted), and seconds per training iteration (forward, backward,
SGD step) on a batch of two 800x1088 images with 8 objects each, in float32 and under bfloat16
autocast. Prints the ratio ours / torchvision (< 1: we are faster) and peak GPU memory.
"""

import argparse
import os
import statistics
import sys
from typing import Callable, List, Tuple

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inference  # noqa: E402  (model builders shared with the CPU inference benchmark)
import ops_roi  # noqa: E402

from maskrcnn_benchmark.layers import batched_nms, nms, roi_align, roi_pool  # noqa: E402

DEVICE = "cuda"


def cuda_time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds per call, timed with CUDA events around each call."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return statistics.median(times)


def _fwd_bwd(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    xg = x.clone().requires_grad_()

    def run():
        xg.grad = None
        op(xg).backward(grad)

    return run


def op_rows(repeats: int) -> List[Tuple[str, float, float]]:
    x, rois, grad = (t.to(DEVICE) for t in ops_roi.make_inputs())
    s, p, r = ops_roi.SCALE, ops_roi.POOLED, ops_roi.SAMPLING
    rows = [
        (
            "ROIAlign fwd+bwd",
            cuda_time(_fwd_bwd(lambda t: roi_align(t, rois, (p, p), s, r), x, grad), repeats),
            cuda_time(_fwd_bwd(lambda t: torchvision.ops.roi_align(t, rois, (p, p), s, r), x, grad), repeats),
        ),
        (
            "ROIPool fwd+bwd",
            cuda_time(_fwd_bwd(lambda t: roi_pool(t, rois, (p, p), s), x, grad), repeats),
            cuda_time(_fwd_bwd(lambda t: torchvision.ops.roi_pool(t, rois, (p, p), s), x, grad), repeats),
        ),
    ]
    g = torch.Generator().manual_seed(0)
    ctr = torch.rand(20000, 2, generator=g) * torch.tensor([1088.0, 800.0])
    wh = torch.rand(20000, 2, generator=g) * 384 + 16
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1).to(DEVICE)
    scores = torch.rand(20000, generator=g).to(DEVICE)
    shifted = boxes + torch.tensor([0.0, 0.0, 1.0, 1.0], device=DEVICE)
    keep_ours, keep_tv = nms(boxes, scores, 0.7), torchvision.ops.nms(shifted, scores, 0.7)
    assert torch.equal(keep_ours.sort().values, keep_tv.sort().values), "NMS results differ from torchvision"
    rows.append(
        (
            "NMS 20k boxes",
            cuda_time(lambda: nms(boxes, scores, 0.7), repeats),
            cuda_time(lambda: torchvision.ops.nms(shifted, scores, 0.7), repeats),
        )
    )
    classes = torch.randint(0, 80, (20000,), generator=g).to(DEVICE)
    rows.append(
        (
            "batched NMS 80 classes",
            cuda_time(lambda: batched_nms(boxes, scores, classes, 0.5), repeats),
            cuda_time(lambda: torchvision.ops.batched_nms(shifted, scores, classes, 0.5), repeats),
        )
    )
    return rows


def _training_batch(seed: int = 0, num_images: int = 2, num_objects: int = 8, size=(800, 1088)):
    """Images [N, 3, H, W] in [0, 1] and per-image (boxes x1y1x2y2, labels) with rectangle masks."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    images = torch.rand(num_images, 3, h, w, generator=g)
    targets = []
    for _ in range(num_images):
        wh = torch.rand(num_objects, 2, generator=g) * 300 + 32
        xy = torch.rand(num_objects, 2, generator=g) * (torch.tensor([w, h]) - wh)
        boxes = torch.cat([xy, xy + wh], 1).round()
        labels = torch.randint(1, 81, (num_objects,), generator=g)
        targets.append((boxes, labels))
    return images, targets


def _sgd_step(model: torch.nn.Module, images, targets) -> Callable[[], None]:
    """One SGD iteration (forward, backward, step) of either library's model; the autocast context
    comes from the caller."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0, momentum=0.9)

    def step():
        losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def _ours_train_step(images, targets):
    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.structures.bounding_box import BoxList
    from maskrcnn_benchmark.structures.image_list import to_image_list
    from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask

    c = cfg.clone()
    c.merge_from_file(os.path.join(inference.REPO, "configs", "e2e_mask_rcnn_R_50_FPN_1x.yaml"))
    c.merge_from_list(["MODEL.DEVICE", DEVICE, "MODEL.WEIGHT", ""])
    torch.manual_seed(0)
    model = build_detection_model(c).to(DEVICE).train()
    h, w = images.shape[-2:]
    box_targets = []
    for boxes, labels in targets:
        t = BoxList(boxes, (w, h), mode="xyxy")
        t.add_field("labels", labels)
        polygons = [[[b[0], b[1], b[2], b[1], b[2], b[3], b[0], b[3]]] for b in boxes.tolist()]
        t.add_field("masks", SegmentationMask(polygons, (w, h)))
        box_targets.append(t.to(DEVICE))
    return _sgd_step(
        model, to_image_list([i.to(DEVICE) * 255 for i in images], c.DATALOADER.SIZE_DIVISIBILITY), box_targets
    )


def _tv_train_step(images, targets):
    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).to(DEVICE).train()
    h, w = images.shape[-2:]
    tv_targets = []
    for boxes, labels in targets:
        masks = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
        for m, (x1, y1, x2, y2) in zip(masks, boxes.long().tolist()):
            m[y1:y2, x1:x2] = 1
        tv_targets.append({"boxes": boxes.to(DEVICE), "labels": labels.to(DEVICE), "masks": masks.to(DEVICE)})
    return _sgd_step(model, [i.to(DEVICE) for i in images], tv_targets)


def _measure(make: Callable[[], Callable[[], object]], dtype: str, repeats: int) -> Tuple[float, float]:
    """(median seconds per call, peak GB) of the callable `make()` builds, under the autocast `dtype`."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn = make()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
        seconds = cuda_time(fn, repeats)
    return seconds, torch.cuda.max_memory_allocated() / 1e9


def model_rows(repeats: int) -> List[Tuple[str, float, float, float, float]]:
    image = inference._image().to(DEVICE)
    images, targets = _training_batch()
    rows = []
    for dtype in ("float32", "bfloat16"):

        def infer(build):
            model, run = build(DEVICE)
            return lambda: torch.inference_mode()(run)(image)

        ours = _measure(lambda: infer(inference._build_ours), dtype, repeats)
        tv = _measure(lambda: infer(inference._build_torchvision), dtype, repeats)
        rows.append((f"inference, 1 image ({dtype})", *ours, *tv))
        ours = _measure(lambda: _ours_train_step(images, targets), dtype, repeats)
        tv = _measure(lambda: _tv_train_step(images, targets), dtype, repeats)
        rows.append((f"training, 2 images ({dtype})", *ours, *tv))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-ops", action="store_true")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}")
    torch.backends.cudnn.benchmark = False  # same (default) convolution algorithms for both libraries
    if not args.skip_ops:
        print(f"{'op':<24}  {'ours (ms)':>10}  {'torchvision (ms)':>16}  {'speed-up':>8}")
        for name, ours, tv in op_rows(args.repeats):
            print(f"{name:<24}  {ours * 1e3:>10.3f}  {tv * 1e3:>16.3f}  {tv / ours:>7.2f}x", flush=True)
    if not args.skip_model:
        print(
            f"{'Mask R-CNN R-50-FPN':<30}  {'ours (s)':>9}  {'peak GB':>7}  "
            f"{'tv (s)':>8}  {'peak GB':>7}  {'ours/tv':>7}"
        )
        for name, ours, ours_gb, tv, tv_gb in model_rows(args.repeats):
            print(
                f"{name:<30}  {ours:>9.4f}  {ours_gb:>7.2f}  {tv:>8.4f}  {tv_gb:>7.2f}  {ours / tv:>7.2f}", flush=True
            )


if __name__ == "__main__":
    main()
