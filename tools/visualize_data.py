r"""Draw a dataset's ground truth as the model will see it: after the training (or test) transforms
(resize, flips, colour jitter), with boxes, class names, masks and keypoints. Check a dataset's
annotations this way before a long training run.

    python tools/visualize_data.py --config-file CONFIG [--dataset NAME] [--train | --test]
                                   --output DIR [--num 16] [KEY VALUE ...]

Without --dataset the first --num images of each DATASETS.TRAIN (--train, the default) or
DATASETS.TEST (--test) entry are drawn; DATASETS.REGISTER_COCO entries are registered first. The
random augmentations are seeded with SEED, so a command draws the same pictures every time. Writes
DIR/<dataset>_<index>.png and prints the boxes that are degenerate or leave the image.
"""

import argparse
import os
from typing import List, Optional, Sequence

import numpy as np
import torch

from maskrcnn_benchmark.data.build import build_dataset, dataset_catalog_of
from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.engine.class_names import default_class_names
from maskrcnn_benchmark.engine.cli import load_config
from maskrcnn_benchmark.engine.rng_state import seed_everything
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.visualization import draw_predictions, save_image


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--dataset", default=None, help="a catalog name (default: DATASETS.TRAIN or DATASETS.TEST)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--train", dest="train", action="store_true", default=True, help="training transforms (default)")
    split.add_argument("--test", dest="train", action="store_false", help="test transforms")
    parser.add_argument("--output", required=True, help="folder for the pictures")
    parser.add_argument("--num", type=int, default=16, help="pictures per dataset")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE pairs")
    return parser.parse_args(argv)


def displayable(image: torch.Tensor, cfg) -> np.ndarray:
    """Undo Normalize (and TO_BGR255) on a [3, H, W] network input: an RGB uint8 [H, W, 3] array."""
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(cfg.INPUT.PIXEL_STD, dtype=torch.float32)[:, None, None]
    pixels = image.float() * std + mean
    if cfg.INPUT.TO_BGR255:
        pixels = pixels[[2, 1, 0]]  # BGR 0..255 -> RGB
    else:
        pixels = pixels * 255  # RGB 0..1
    return pixels.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def ground_truth_as_prediction(target: BoxList) -> BoxList:
    """A BoxList draw_predictions understands: "labels", "mask" (bool [N, 1, H, W]) and "keypoints"."""
    drawn = BoxList(target.bbox, target.size, mode=target.mode)
    drawn.add_field("labels", target.get_field("labels"))
    if target.has_field("masks") and len(target) > 0:
        masks = target.get_field("masks").get_mask_tensor()
        if masks.dim() == 2:  # get_mask_tensor squeezes a single instance
            masks = masks[None]
        drawn.add_field("mask", masks[:, None].bool())
    if target.has_field("keypoints"):
        drawn.add_field("keypoints", target.get_field("keypoints"))
    return drawn


def box_problems(target: BoxList) -> List[str]:
    """Boxes with no area or reaching outside the image (after the transforms)."""
    width, height = target.size
    problems = []
    for k, (x1, y1, x2, y2) in enumerate(target.convert("xyxy").bbox.tolist()):
        if x2 < x1 or y2 < y1:
            problems.append(f"box {k} has no area: {[x1, y1, x2, y2]}")
        elif x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            problems.append(f"box {k} leaves the {width}x{height} image: {[round(v, 1) for v in (x1, y1, x2, y2)]}")
    return problems


def class_names_of(dataset, cfg) -> Sequence[str]:
    first = getattr(dataset, "datasets", [dataset])[0]  # a ConcatDataset's parts share the categories
    return getattr(first, "class_names", None) or default_class_names(cfg)


def main(argv: Optional[list] = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    catalog = dataset_catalog_of(cfg)
    names = [args.dataset] if args.dataset else list(cfg.DATASETS.TRAIN if args.train else cfg.DATASETS.TEST)
    seed_everything(max(cfg.SEED, 0))
    transforms = build_transforms(cfg, is_train=args.train)
    os.makedirs(args.output, exist_ok=True)
    written = 0
    for name in names:
        # One dataset per name; training drops images without annotations, as the data loader does.
        dataset = build_dataset([name], transforms, catalog, is_train=args.train)[0]
        class_names = class_names_of(dataset, cfg)
        for index in range(min(args.num, len(dataset))):
            image, target, _ = dataset[index]
            picture = draw_predictions(displayable(image, cfg), ground_truth_as_prediction(target), class_names)
            save_image(os.path.join(args.output, f"{name}_{index:05d}.png"), picture)
            written += 1
            for problem in box_problems(target):
                print(f"{name} [{index}]: {problem}")
        print(f"{name}: {min(args.num, len(dataset))} of {len(dataset)} images drawn")
    print(f"wrote {written} pictures to {args.output}")


if __name__ == "__main__":
    main()
