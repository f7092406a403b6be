r"""Turn a COCO-trained detector checkpoint into the starting point of a Cityscapes fine-tuning.

    python tools/cityscapes/coco_to_cityscapes_weights.py e2e_mask_rcnn_R_50_FPN_1x.pth coco_to_cityscapes.pth

The class-specific last layers of the box and mask heads (box classifier `cls_score`, box regressor
`bbox_pred`, mask logits `mask_fcn_logits`) go from COCO's 81 classes to the 9 of
configs/cityscapes/ (background + person, rider, car, truck, bus, train, motorcycle, bicycle). The
rows of the classes COCO has (all but rider, and the background) are copied from the COCO weights;
the others are initialised as the heads initialise them (classifier N(0, 0.01), regressor
N(0, 0.001), mask logits Kaiming normal, biases 0). A class-agnostic regressor is kept as it is.
Everything else is copied unchanged. The result holds {"model": state_dict}; use it as MODEL.WEIGHT
with NUM_CLASSES 9 (see configs/cityscapes/README.md).

**Differs from the original's recipe:** it copied single rows of the regressor (its 4 rows per class
were not copied together) and replaced a class-agnostic regressor with a new random layer.
"""

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import torch

from maskrcnn_benchmark.engine.class_names import COCO_CATEGORIES

CITYSCAPES_CATEGORIES: List[str] = [
    "__background",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
]

_HEADS = {
    "cls_score": "roi_heads.box.predictor.cls_score",
    "bbox_pred": "roi_heads.box.predictor.bbox_pred",
    "mask_fcn_logits": "roi_heads.mask.predictor.mask_fcn_logits",
}


def _find(state_dict: Dict[str, torch.Tensor], suffix: str) -> Optional[str]:
    keys = [k for k in state_dict if k == suffix or k.endswith("." + suffix)]
    if len(keys) > 1:
        raise ValueError(f"several weights end with {suffix!r}: {keys}")
    return keys[0] if keys else None


def _class_map(src: Sequence[str], dst: Sequence[str]) -> Dict[int, int]:
    """destination class index -> source class index, for the classes in both."""
    index = {name: i for i, name in enumerate(src)}
    return {i: index[name] for i, name in enumerate(dst) if name in index}


def convert_state_dict(
    state_dict: Dict[str, torch.Tensor],
    src_categories: Sequence[str] = COCO_CATEGORIES,
    dst_categories: Sequence[str] = CITYSCAPES_CATEGORIES,
    seed: int = 0,
) -> Dict[str, torch.Tensor]:
    """A copy of `state_dict` with the class-specific head layers resized to `dst_categories`."""
    generator = torch.Generator().manual_seed(seed)
    out = dict(state_dict)
    n_src, n_dst = len(src_categories), len(dst_categories)
    mapping = _class_map(src_categories, dst_categories)

    def blocks(src: torch.Tensor, dst: torch.Tensor, rows: int) -> torch.Tensor:
        for d, s in mapping.items():
            dst[d * rows : (d + 1) * rows] = src[s * rows : (s + 1) * rows]
        return dst

    cls_w_key = _find(state_dict, _HEADS["cls_score"] + ".weight")
    if cls_w_key is None:
        raise KeyError(f"no {_HEADS['cls_score']}.weight in the checkpoint: not a detector with a box head")
    cls_w = state_dict[cls_w_key]
    if cls_w.shape[0] != n_src:
        raise ValueError(f"{cls_w_key} has {cls_w.shape[0]} classes, expected {n_src} (the source categories)")

    def new(shape, std=None, kaiming=False, like=None):
        t = torch.empty(shape, dtype=like.dtype)
        if kaiming:
            fan_out = shape[0] * (shape[2] * shape[3] if len(shape) == 4 else 1)
            std = (2.0 / fan_out) ** 0.5
        if std is None:
            return t.zero_()
        return t.normal_(0.0, std, generator=generator)

    for name, std, kaiming in (
        ("cls_score", 0.01, False),
        ("bbox_pred", 0.001, False),
        ("mask_fcn_logits", None, True),
    ):
        w_key = _find(state_dict, _HEADS[name] + ".weight")
        if w_key is None:
            if name == "mask_fcn_logits":
                continue  # Faster R-CNN: no mask head
            raise KeyError(f"no {_HEADS[name]}.weight in the checkpoint")
        b_key = _find(state_dict, _HEADS[name] + ".bias")
        w, b = state_dict[w_key], state_dict[b_key]
        rows = w.shape[0] // n_src if w.shape[0] % n_src == 0 else 0
        if name == "bbox_pred" and rows != 4:
            if w.shape[0] != 8:
                raise ValueError(
                    f"{w_key} has {w.shape[0]} rows: neither 4 per class ({4 * n_src}) nor class-agnostic (8)"
                )
            continue  # class-agnostic regression: nothing class-specific
        if rows != (4 if name == "bbox_pred" else 1):
            raise ValueError(f"{w_key} has {w.shape[0]} rows, expected {n_src * (4 if name == 'bbox_pred' else 1)}")
        shape = (n_dst * rows,) + tuple(w.shape[1:])
        out[w_key] = blocks(w, new(shape, std=std, kaiming=kaiming, like=w), rows)
        out[b_key] = blocks(b, torch.zeros(n_dst * rows, dtype=b.dtype), rows)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="COCO -> Cityscapes weight surgery of the detector heads")
    parser.add_argument("input", help="a COCO-trained checkpoint (.pth: {'model': state_dict} or a state_dict)")
    parser.add_argument("output", help="where to write {'model': state_dict}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the new rows' initialisation")
    args = parser.parse_args(argv)
    loaded = torch.load(args.input, map_location="cpu", weights_only=False)
    state_dict = loaded["model"] if isinstance(loaded, dict) and "model" in loaded else loaded
    converted = convert_state_dict(state_dict, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    torch.save({"model": converted}, args.output)
    changed = sorted(k for k in converted if converted[k].shape != state_dict[k].shape)
    print(f"{args.input} -> {args.output}; resized: {', '.join(changed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
