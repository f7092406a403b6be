r"""Convert Cityscapes fine instance annotations (gtFine) to COCO-format json files.

    python tools/cityscapes/convert_cityscapes_to_coco.py --dataset cityscapes_instance_only \
        --datadir datasets/cityscapes --outdir datasets/cityscapes/annotations

Reads `<datadir>/gtFine_trainvaltest/gtFine/{val,train,test}/<city>/` (or `<datadir>/gtFine/...`):
per image `<name>_gtFine_polygons.json` (for the image size) and `<name>_gtFine_instanceIds.png`
(for the instances), and writes `<outdir>/instancesonly_filtered_gtFine_{split}.json`. Copy or link
all `leftImg8bit/<split>/<city>/*_leftImg8bit.png` files into one folder (the catalog expects
`cityscapes/images`): the json's `file_name` is the bare image name.

Each instance of the 8 classes person, rider, car, truck, bus, train, motorcycle, bicycle (category
ids 1..8 in that order) becomes an annotation: its outer contours as polygons, `area` its pixel count,
`bbox` the polygons' extent as `[x, y, x2 - x + 1, y2 - y + 1]` (inclusive pixels), iscrowd 0.
Instances without a contour, or with a contour of fewer than 3 points, are skipped with a warning.
caravan and trailer instances and crowd regions are left out.

The categories are numbered in the fixed order above and all listed in every split (the original
numbered them in order of first appearance and listed only those seen); image and annotation ids
start at 1 in each split (a COCO annotation id 0 is never counted as matched by pycocotools).
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from instances2dict_with_polygons import instances2dict_with_polygons  # noqa: E402

CATEGORIES: List[str] = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"]
SPLITS = ("val", "train", "test")
POLYGONS_SUFFIX = "_gtFine_polygons.json"
INSTANCE_IDS_SUFFIX = "_gtFine_instanceIds.png"
IMAGE_SUFFIX = "_leftImg8bit.png"


def poly_to_box(polygons: Sequence[Sequence[float]]) -> List[float]:
    """The tight [x1, y1, x2, y2] of flat [x0, y0, x1, y1, ...] polygons."""
    xs = [x for p in polygons for x in p[0::2]]
    ys = [y for p in polygons for y in p[1::2]]
    return [min(xs), min(ys), max(xs), max(ys)]


def xyxy_to_xywh(box: Sequence[float]) -> List[float]:
    """Inclusive-pixel corners to COCO's [x, y, width, height] (width = x2 - x1 + 1)."""
    x1, y1, x2, y2 = box
    return [x1, y1, x2 - x1 + 1, y2 - y1 + 1]


def gtfine_folder(data_dir: str) -> str:
    for candidate in (os.path.join(data_dir, "gtFine_trainvaltest", "gtFine"), os.path.join(data_dir, "gtFine")):
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError(f"no gtFine_trainvaltest/gtFine or gtFine folder in {data_dir}")


def convert_split(ann_dir: str, log: Any = print) -> Dict[str, Any]:
    """The COCO dict of one split folder (`gtFine/<split>`, one subfolder per city)."""
    category_ids = {name: i + 1 for i, name in enumerate(CATEGORIES)}
    images: List[dict] = []
    annotations: List[dict] = []
    for root, dirs, files in os.walk(ann_dir):
        dirs.sort()
        for filename in sorted(files):
            if not filename.endswith(POLYGONS_SUFFIX):
                continue
            prefix = filename[: -len(POLYGONS_SUFFIX)]
            polygons_file = os.path.join(root, filename)
            with open(polygons_file) as f:
                info = json.load(f)
            for field in ("imgWidth", "imgHeight"):
                if field not in info:
                    raise ValueError(f"{polygons_file}: field {field!r} is missing")
            ids_file = os.path.join(root, prefix + INSTANCE_IDS_SUFFIX)
            if not os.path.isfile(ids_file):
                raise FileNotFoundError(f"instanceIds image not found: {ids_file} (for {polygons_file})")
            image = {
                "id": len(images) + 1,
                "width": int(info["imgWidth"]),
                "height": int(info["imgHeight"]),
                "file_name": prefix + IMAGE_SUFFIX,
                "seg_file_name": prefix + INSTANCE_IDS_SUFFIX,
            }
            images.append(image)
            objects = instances2dict_with_polygons([ids_file])[os.path.abspath(ids_file)]
            for name in CATEGORIES:
                for obj in objects.get(name, []):
                    contours = obj["contours"]
                    if not contours:
                        log(f"Warning: {ids_file}: instance {obj['instID']} has no contour; skipped")
                        continue
                    if min(len(c) for c in contours) <= 4:
                        log(f"Warning: {ids_file}: instance {obj['instID']} has a contour of < 3 points; skipped")
                        continue
                    annotations.append(
                        {
                            "id": len(annotations) + 1,
                            "image_id": image["id"],
                            "category_id": category_ids[name],
                            "segmentation": contours,
                            "area": obj["pixelCount"],
                            "bbox": xyxy_to_xywh(poly_to_box(contours)),
                            "iscrowd": 0,
                        }
                    )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": category_ids[name], "name": name} for name in CATEGORIES],
    }


def convert_cityscapes_instance_only(
    data_dir: str, out_dir: str, splits: Sequence[str] = SPLITS, log: Any = print
) -> List[str]:
    """Write instancesonly_filtered_gtFine_<split>.json for each split folder present; returns the
    files written."""
    gtfine = gtfine_folder(data_dir)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for split in splits:
        ann_dir = os.path.join(gtfine, split)
        if not os.path.isdir(ann_dir):
            log(f"no {split} folder in {gtfine}; skipped")
            continue
        coco = convert_split(ann_dir, log)
        out = os.path.join(out_dir, f"instancesonly_filtered_gtFine_{split}.json")
        with open(out, "w") as f:
            json.dump(coco, f)
        log(f"{split}: {len(coco['images'])} images, {len(coco['annotations'])} annotations -> {out}")
        written.append(out)
    return written


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Convert Cityscapes gtFine instances to COCO json")
    parser.add_argument("--dataset", default="cityscapes_instance_only", choices=("cityscapes_instance_only",))
    parser.add_argument("--datadir", required=True, help="folder holding gtFine_trainvaltest/gtFine (or gtFine)")
    parser.add_argument("--outdir", required=True, help="where the json files go")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), help="default: val train test")
    args = parser.parse_args(argv)
    convert_cityscapes_instance_only(args.datadir, args.outdir, args.splits)


if __name__ == "__main__":
    main()
