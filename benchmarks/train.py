"""Training speed on CPU: ours against torchvision's Mask R-CNN on the same synthetic images, in one run.

    python benchmarks/train.py [--threads N] [--repeats 3] [--models small r50] [--dtypes float32 bfloat16]

Models:
* small: configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml (ResNet-18-FPN with GroupNorm, 64-channel FPN,
  narrow heads), batch of 4 synthetic 256x320 images; torchvision gets the same architecture built
  from its parts (resnet18 with GroupNorm, BackboneWithFPN 64 channels with GroupNorm, TwoMLPHead 256,
  MaskRCNNHeads (64,)*4 with GroupNorm, same anchors, RPN and ROI sampling settings).
* r50: configs/e2e_mask_rcnn_R_50_FPN_1x.yaml against torchvision's Mask R-CNN R-50-FPN as
  maskrcnn_resnet50_fpn builds it for fine-tuning (FrozenBatchNorm2d, stem and layer1 frozen, like our
  FREEZE_CONV_BODY_AT 2), batch of 2 synthetic images resized to 800 on the short side.
Both libraries see identical pixels (already resized; torchvision's own resize then keeps the size)
and identical boxes, labels and masks (polygons for ours, the same masks rasterised for torchvision).
One iteration = forward, backward, SGD step. Proposal counts are matched: the original's
FPN_POST_NMS_TOP_N_TRAIN counts per batch, torchvision's rpn_post_nms_top_n_train per image, so
torchvision gets ours divided by the batch size. Prints the median seconds per iteration of
--repeats after one warm-up, and ours / torchvision (< 1: we are faster).
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Tuple

import torch
import torchvision

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from maskrcnn_benchmark.config import cfg as global_cfg  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.structures.bounding_box import BoxList  # noqa: E402
from maskrcnn_benchmark.structures.image_list import to_image_list  # noqa: E402
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask  # noqa: E402

MODELS = {
    "small": ("configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml", 4),
    "r50": ("configs/e2e_mask_rcnn_R_50_FPN_1x.yaml", 2),
}


def synthetic_batch(batch_size: int, min_size: int):
    """(images [B] of [3, H, W] floats in [0, 1] RGB, boxes [B] of [K, 4] xyxy, labels, polygons,
    binary masks [B] of [K, H, W]) from the synthetic shapes generator, resized to `min_size`."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from PIL import Image

    from maskrcnn_benchmark.data.datasets.synthetic import generate_synthetic_dataset

    out = tempfile.mkdtemp(prefix="mrcnn_bench_")
    (img_dir, ann_file), = generate_synthetic_dataset(out, "shapes", {"bench": batch_size}, seed=0).values()
    coco = COCO(ann_file)
    cat_ids = sorted(coco.getCatIds())
    batch = []
    for img_id in sorted(coco.getImgIds())[:batch_size]:
        info = coco.imgs[img_id]
        scale = min_size / min(info["height"], info["width"])
        h, w = round(info["height"] * scale), round(info["width"] * scale)
        pil = Image.open(os.path.join(img_dir, info["file_name"])).convert("RGB").resize((w, h), Image.BILINEAR)
        image = torchvision.transforms.functional.to_tensor(pil)
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)) if not a.get("iscrowd", 0)]
        boxes = torch.tensor([[x, y, x + bw, y + bh] for x, y, bw, bh in (a["bbox"] for a in anns)]) * scale
        labels = torch.tensor([cat_ids.index(a["category_id"]) + 1 for a in anns])
        polygons = [[[c * scale for c in poly] for poly in a["segmentation"]] for a in anns]
        rles = [mask_utils.frPyObjects(p, h, w) for p in polygons]
        masks = torch.stack([torch.from_numpy(mask_utils.decode(mask_utils.merge(r))) for r in rles])
        batch.append((image, boxes, labels, polygons, masks))
    return batch


def training_step(model: torch.nn.Module, images, targets, dtype: str) -> Callable[[], None]:
    """One SGD iteration of either library's model (both take images and targets, return a loss dict)."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def ours(config: str, batch, dtype: str, return_parts: bool = False):
    """Our training step on `batch` (with return_parts: (step, model, ImageList))."""
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, config))
    c.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.WEIGHT", ""])
    torch.manual_seed(0)
    model = build_detection_model(c).train()
    mean = torch.tensor(c.INPUT.PIXEL_MEAN).view(3, 1, 1)
    images, targets = [], []
    for image, boxes, labels, polygons, _ in batch:
        images.append((image[[2, 1, 0]] * 255 - mean) if c.INPUT.TO_BGR255 else image)
        target = BoxList(boxes, (image.shape[2], image.shape[1]))
        target.add_field("labels", labels)
        target.add_field("masks", SegmentationMask(polygons, target.size))
        targets.append(target)
    image_list = to_image_list(images, c.DATALOADER.SIZE_DIVISIBILITY)
    step = training_step(model, image_list, targets, dtype)
    return (step, model, image_list) if return_parts else step


def _torchvision_small(c, num_images: int):
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor

    def gn(channels: int) -> torch.nn.Module:
        return torch.nn.GroupNorm(c.MODEL.GROUP_NORM.NUM_GROUPS, channels)

    body = torchvision.models.resnet18(weights=None, norm_layer=gn)
    fpn_channels = c.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    backbone = BackboneWithFPN(
        body, {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}, [64, 128, 256, 512], fpn_channels, norm_layer=gn
    )
    num_classes = c.MODEL.ROI_BOX_HEAD.NUM_CLASSES
    mlp = c.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM
    mask_layers = tuple(c.MODEL.ROI_MASK_HEAD.CONV_LAYERS)
    return MaskRCNN(
        backbone, num_classes=None, min_size=c.INPUT.MIN_SIZE_TRAIN[0], max_size=c.INPUT.MAX_SIZE_TRAIN,
        rpn_anchor_generator=AnchorGenerator(tuple((s,) for s in c.MODEL.RPN.ANCHOR_SIZES), ((0.5, 1.0, 2.0),) * 5),
        rpn_pre_nms_top_n_train=c.MODEL.RPN.PRE_NMS_TOP_N_TRAIN,
        rpn_post_nms_top_n_train=c.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN // num_images,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, mlp), box_predictor=FastRCNNPredictor(mlp, num_classes),
        box_batch_size_per_image=c.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
        mask_head=MaskRCNNHeads(fpn_channels, mask_layers, 1, norm_layer=gn),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes),
    )


def theirs(name: str, config: str, batch, dtype: str, return_parts: bool = False):
    """torchvision's training step on `batch` (with return_parts: (step, model, list of images))."""
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, config))
    torch.manual_seed(0)
    if name == "small":
        model = _torchvision_small(c, len(batch))
    else:
        # What maskrcnn_resnet50_fpn builds around pretrained weights (FrozenBatchNorm2d, stem and
        # layer1 frozen = our FREEZE_CONV_BODY_AT 2); without weights it would train every layer with
        # plain BatchNorm, a different (slower) workload.
        from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
        from torchvision.models.detection.mask_rcnn import MaskRCNN
        from torchvision.ops.misc import FrozenBatchNorm2d

        body = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
        model = MaskRCNN(
            _resnet_fpn_extractor(body, trainable_layers=3), num_classes=c.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
            rpn_post_nms_top_n_train=c.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN // len(batch),
            min_size=c.INPUT.MIN_SIZE_TRAIN[0], max_size=c.INPUT.MAX_SIZE_TRAIN,
        )
    model.train()
    images = [image for image, *_ in batch]
    targets = [{"boxes": boxes, "labels": labels, "masks": masks} for _, boxes, labels, _, masks in batch]
    step = training_step(model, images, targets, dtype)
    return (step, model, images) if return_parts else step


def median_seconds(step: Callable[[], None], repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}")
    rows: List[Tuple[str, str, float, float]] = []
    for name in args.models:
        config, batch_size = MODELS[name]
        c = global_cfg.clone()
        c.merge_from_file(os.path.join(REPO, config))
        batch = synthetic_batch(batch_size, c.INPUT.MIN_SIZE_TRAIN[0])
        for dtype in args.dtypes:
            t_ours = median_seconds(ours(config, batch, dtype), args.repeats)
            t_tv = median_seconds(theirs(name, config, batch, dtype), args.repeats)
            rows.append((f"{name} ({batch_size} images)", dtype, t_ours, t_tv))
            print(f"{rows[-1][0]:<18} {dtype:<9} ours {t_ours:7.3f} s/it  torchvision {t_tv:7.3f} s/it  "
                  f"ours/tv {t_ours / t_tv:5.2f}", flush=True)
    fp32_tv = {m: t for m, d, _, t in rows if d == "float32"}
    for m, d, o, _ in rows:
        if d == "bfloat16" and m in fp32_tv:
            print(f"{m:<18} ours bfloat16 / torchvision float32: {o / fp32_tv[m]:5.2f}")


if __name__ == "__main__":
    main()
