"""Training speed on CPU: ours against torchvision's Mask R-CNN on the same synthetic images, in one run.

    python benchmarks/train.py [--threads N] [--repeats 3] [--models small r50] [--dtypes float32 bfloat16] [--compile]

Models:
* small: configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml (ResNet-18-FPN with GroupNorm, 64-channel FPN,
  narrow heads), batch of 4 synthetic 256x320 images; torchvision gets the same architecture built
  from its parts (resnet18 with GroupNorm, BackboneWithFPN 64 channels with GroupNorm, TwoMLPHead 256,
  MaskRCNNHeads (64,)*4 with GroupNorm, same anchors, RPN and ROI sampling settings).
* retinanet (not run by default): configs/retinanet/retinanet_R-50-FPN_1x.yaml against torchvision's
  RetinaNet R-50-FPN with the same frozen layers, batch of 2 images at 800 (boxes and labels only).
* r50: configs/e2e_mask_rcnn_R_50_FPN_1x.yaml against torchvision's Mask R-CNN R-50-FPN as
  maskrcnn_resnet50_fpn builds it for fine-tuning (FrozenBatchNorm2d, stem and layer1 frozen, like our
  FREEZE_CONV_BODY_AT 2), batch of 2 synthetic images resized to 800 on the short side.
Both libraries see identical pixels (already resized; torchvision's own resize then keeps the size)
and identical boxes, labels and masks (polygons for ours, the same masks rasterised for torchvision).
One iteration = forward, backward, SGD step. Proposal counts are matched: the original's
FPN_POST_NMS_TOP_N_TRAIN counts per batch, torchvision's rpn_post_nms_top_n_train per image, so
torchvision gets ours divided by the batch size. Prints the median seconds per iteration of
--repeats after one warm-up, and ours / torchvision (< 1: we are faster).

--compile also times our model compiled (MODEL.COMPILE, engine/compile.py): its first iteration
(compiling), one iteration on a batch of another size (compiling again, with dynamic shapes), then the
median s/iter on the first batch (running the dynamic-shape code, as training on varying sizes would),
and eager / compiled (> 1: compiled is faster).
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torchvision

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from maskrcnn_benchmark.config import cfg as global_cfg  # noqa: E402
from maskrcnn_benchmark.engine.compile import maybe_compile  # noqa: E402
from maskrcnn_benchmark.engine.precision import autocast, resolve_autocast_dtype  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402
from maskrcnn_benchmark.structures.bounding_box import BoxList  # noqa: E402
from maskrcnn_benchmark.structures.image_list import to_image_list  # noqa: E402
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints  # noqa: E402
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask  # noqa: E402

MODELS = {
    "small": ("configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml", 4),
    "r50": ("configs/e2e_mask_rcnn_R_50_FPN_1x.yaml", 2),
    "retinanet": ("configs/retinanet/retinanet_R-50-FPN_1x.yaml", 2),
}
DEFAULT_MODELS = ["small", "r50"]


class Sample(NamedTuple):
    """One synthetic image and its targets, at the benchmark's size."""

    image: torch.Tensor  # [3, H, W] floats in [0, 1], RGB
    boxes: torch.Tensor  # [K, 4] xyxy
    labels: torch.Tensor  # [K], 1-based contiguous
    polygons: list  # per object, its COCO polygons (for ours)
    masks: torch.Tensor  # [K, H, W] uint8, the same polygons rasterised (for torchvision)
    keypoints: Optional[torch.Tensor] = None  # [K, 17, 3] (x, y, visibility), "persons" images only


def synthetic_batch(
    batch_size: int, min_size: int, kind: str = "shapes", image_size: Tuple[int, int] = (256, 320)
) -> List[Sample]:
    """`batch_size` Samples from the synthetic generator ("shapes", or "persons" with keypoints),
    drawn at `image_size` (height, width) and resized to `min_size` on the short side."""
    from PIL import Image
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    from maskrcnn_benchmark.data.datasets.synthetic import generate_synthetic_dataset

    out = tempfile.mkdtemp(prefix="mrcnn_bench_")
    try:
        ((img_dir, ann_file),) = generate_synthetic_dataset(
            out, kind, {"bench": batch_size}, seed=0, image_size=image_size
        ).values()
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
            keypoints = None
            if kind == "persons":
                keypoints = torch.tensor([a["keypoints"] for a in anns], dtype=torch.float32).view(len(anns), -1, 3)
                keypoints[..., :2] *= scale
            batch.append(Sample(image, boxes, labels, polygons, masks, keypoints))
    finally:
        shutil.rmtree(out, ignore_errors=True)  # everything needed is in memory now
    return batch


def training_step(
    model: torch.nn.Module, images, targets, dtype: str, device_type: str = "cpu", lr: float = 1e-4
) -> Callable[[], None]:
    """One SGD iteration of either library's model (both take images and targets, return a loss
    dict), under the autocast of `dtype` ("float32": none) as the project's precision setting does.
    lr=0 still runs the whole update but keeps the weights, hence the workload, as they were."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    autocast_dtype = resolve_autocast_dtype(dtype)

    def step():
        with autocast(device_type, autocast_dtype):
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def load_config(config: str, overrides: Sequence[str] = (), device: str = "cpu"):
    """A clone of the global config with `config` (relative to the repository) and `overrides`
    merged, random weights, on `device`."""
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, config))
    c.merge_from_list(["MODEL.DEVICE", device, "MODEL.WEIGHT", "", *overrides])
    return c


def our_inputs(c, batch: Sequence[Sample], device: str = "cpu"):
    """(ImageList, BoxList targets) of `batch` as our data pipeline would give them to the model of
    config `c`: normalised as c.INPUT says, with masks / keypoints when the model has those heads."""
    mean = torch.tensor(c.INPUT.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(c.INPUT.PIXEL_STD).view(3, 1, 1)
    images, targets = [], []
    for sample in batch:
        image = sample.image[[2, 1, 0]] * 255 if c.INPUT.TO_BGR255 else sample.image
        images.append((image - mean) / std)
        size = (sample.image.shape[2], sample.image.shape[1])
        target = BoxList(sample.boxes, size)
        target.add_field("labels", sample.labels)
        if c.MODEL.MASK_ON:
            target.add_field("masks", SegmentationMask(sample.polygons, size))
        if c.MODEL.KEYPOINT_ON:
            target.add_field("keypoints", PersonKeypoints(sample.keypoints, size))
        targets.append(target.to(device))
    return to_image_list(images, c.DATALOADER.SIZE_DIVISIBILITY).to(device), targets


def ours(
    config: str, batch, dtype: str, return_parts: bool = False, device: str = "cpu", overrides: Sequence[str] = ()
):
    """Our training step on `batch` (with return_parts: (step, model, ImageList))."""
    c = load_config(config, overrides, device)
    torch.manual_seed(0)
    model = build_detection_model(c).to(device).train()
    maybe_compile(model, c)  # MODEL.COMPILE.* in `overrides`, as the tools do
    image_list, targets = our_inputs(c, batch, device)
    step = training_step(model, image_list, targets, dtype, torch.device(device).type)
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
        body,
        {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        [64, 128, 256, 512],
        fpn_channels,
        norm_layer=gn,
    )
    num_classes = c.MODEL.ROI_BOX_HEAD.NUM_CLASSES
    mlp = c.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM
    mask_layers = tuple(c.MODEL.ROI_MASK_HEAD.CONV_LAYERS)
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=c.INPUT.MIN_SIZE_TRAIN[0],
        max_size=c.INPUT.MAX_SIZE_TRAIN,
        rpn_anchor_generator=AnchorGenerator(tuple((s,) for s in c.MODEL.RPN.ANCHOR_SIZES), ((0.5, 1.0, 2.0),) * 5),
        rpn_pre_nms_top_n_train=c.MODEL.RPN.PRE_NMS_TOP_N_TRAIN,
        rpn_post_nms_top_n_train=c.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN // num_images,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, mlp),
        box_predictor=FastRCNNPredictor(mlp, num_classes),
        box_batch_size_per_image=c.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
        mask_head=MaskRCNNHeads(fpn_channels, mask_layers, 1, norm_layer=gn),
        mask_predictor=MaskRCNNPredictor(mask_layers[-1], mask_layers[-1], num_classes),
    )


def torchvision_r50(kind: str, num_images: int, **kwargs) -> torch.nn.Module:
    """torchvision's Faster / Mask / Keypoint R-CNN R-50-FPN (kind "faster", "mask", "keypoint") as
    its *_resnet50_fpn builders make it around pretrained weights, with random weights: FrozenBatchNorm2d,
    stem and layer1 frozen (= our FREEZE_CONV_BODY_AT 2); without weights those builders would train
    every layer with plain BatchNorm, a different (slower) workload. kwargs go to the model class
    (num_classes, sizes, proposal counts); rpn_post_nms_top_n_train is per image in torchvision and
    per batch in the original's FPN, so it defaults to the original's 2000 over `num_images`."""
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.faster_rcnn import FasterRCNN
    from torchvision.models.detection.keypoint_rcnn import KeypointRCNN
    from torchvision.models.detection.mask_rcnn import MaskRCNN
    from torchvision.ops.misc import FrozenBatchNorm2d

    model_class = {"faster": FasterRCNN, "mask": MaskRCNN, "keypoint": KeypointRCNN}[kind]
    kwargs.setdefault("num_classes", 2 if kind == "keypoint" else 81)
    kwargs.setdefault("rpn_post_nms_top_n_train", 2000 // num_images)
    body = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    return model_class(_resnet_fpn_extractor(body, trainable_layers=3), **kwargs)


def torchvision_retinanet(num_images: int, **kwargs) -> torch.nn.Module:
    """torchvision's RetinaNet R-50-FPN as retinanet_resnet50_fpn builds it around pretrained weights
    (FrozenBatchNorm2d, stem and layer1 frozen, P3-P7), with random weights; kwargs go to RetinaNet."""
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    body = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    # P6 from C5 (2048 channels), as the original's RETINANET.USE_C5 and torchvision's v1 model.
    backbone = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(2048, 256))
    return RetinaNet(backbone, **kwargs)


def torchvision_targets(batch: Sequence[Sample], kind: str, device: str = "cpu") -> List[dict]:
    """torchvision's target dicts of `batch` for a model of `kind` ("faster", "mask", "keypoint")."""
    targets = []
    for sample in batch:
        target = {"boxes": sample.boxes, "labels": sample.labels}
        if kind == "mask":
            target["masks"] = sample.masks
        if kind == "keypoint":
            target["keypoints"] = sample.keypoints
        targets.append({k: v.to(device) for k, v in target.items()})
    return targets


def theirs(name: str, config: str, batch, dtype: str, return_parts: bool = False, device: str = "cpu"):
    """torchvision's training step on `batch` (with return_parts: (step, model, list of images))."""
    c = global_cfg.clone()
    c.merge_from_file(os.path.join(REPO, config))
    torch.manual_seed(0)
    kind = "mask"
    if name == "small":
        model = _torchvision_small(c, len(batch))
    elif name == "retinanet":
        kind = "faster"
        model = torchvision_retinanet(
            len(batch), min_size=c.INPUT.MIN_SIZE_TRAIN[0], max_size=c.INPUT.MAX_SIZE_TRAIN, num_classes=81
        )
    else:
        model = torchvision_r50(
            "mask",
            len(batch),
            num_classes=c.MODEL.ROI_BOX_HEAD.NUM_CLASSES,
            rpn_post_nms_top_n_train=c.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN // len(batch),
            min_size=c.INPUT.MIN_SIZE_TRAIN[0],
            max_size=c.INPUT.MAX_SIZE_TRAIN,
        )
    model.to(device).train()
    images = [sample.image.to(device) for sample in batch]
    step = training_step(model, images, torchvision_targets(batch, kind, device), dtype, torch.device(device).type)
    return (step, model, images) if return_parts else step


COMPILE = ["MODEL.COMPILE.ENABLED", "True"]


def seconds(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def ours_compiled(config: str, batch, other_batch, dtype: str, repeats: int) -> Tuple[float, float, float]:
    """Our model compiled: (first iteration s, first iteration on `other_batch` s, median s/iter on `batch`)."""
    step, model, _ = ours(config, batch, dtype, return_parts=True, overrides=COMPILE)
    other_step = training_step(model, *our_inputs(load_config(config, COMPILE), other_batch), dtype)
    first, other = seconds(step), seconds(other_step)
    return first, other, median_seconds(step, repeats)


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
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--compile", action="store_true", help="also time our model compiled (see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}"
    )
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
            print(
                f"{rows[-1][0]:<18} {dtype:<9} ours {t_ours:7.3f} s/it  torchvision {t_tv:7.3f} s/it  "
                f"ours/tv {t_ours / t_tv:5.2f}",
                flush=True,
            )
            if args.compile:
                other_batch = synthetic_batch(batch_size, c.INPUT.MIN_SIZE_TRAIN[0] * 3 // 4)
                first, other, t_comp = ours_compiled(config, batch, other_batch, dtype, args.repeats)
                print(
                    f"{rows[-1][0]:<18} {dtype:<9} ours compiled {t_comp:7.3f} s/it  eager/compiled "
                    f"{t_ours / t_comp:5.2f}  compiled/tv {t_comp / t_tv:5.2f}  first iteration {first:6.1f} s "
                    f"(eager {t_ours:.1f} s), at a new size {other:6.1f} s",
                    flush=True,
                )
    fp32_tv = {m: t for m, d, _, t in rows if d == "float32"}
    for m, d, o, _ in rows:
        if d == "bfloat16" and m in fp32_tv:
            print(f"{m:<18} ours bfloat16 / torchvision float32: {o / fp32_tv[m]:5.2f}")


if __name__ == "__main__":
    main()
