"""The structure of a COCO annotation file: the json itself, its categories and image entries.

What is always an error (ValueError naming the file, whatever DATASETS.ON_BAD_INPUT says): a file
that cannot be read or parsed (also: nested too deeply), a top level that is not a dict, `images`
missing or not a list, `annotations` not a list (a file without `annotations`, like COCO's
test-dev image lists, has none), and missing or broken `categories` (they define the model's
classes). Broken image entries are bad input (see coco_validation): dropped with their
annotations, or the first one raises.
"""

import json
from collections import Counter
from typing import Any, List, Set, Tuple

from .coco_geometry import image_size_problem
from .coco_problems import (
    IMAGE_DUPLICATE_ID,
    IMAGE_FILE_NAME,
    IMAGE_ID,
    IMAGE_NOT_DICT,
    IMAGE_SIZE,
    ProblemLog,
    image_where,
    show,
)

ID_RANGE = (-(2**63), 2**63)  # ids are integers that fit in int64 (they may go into tensors)


def is_id(value: Any) -> bool:
    return type(value) is int and ID_RANGE[0] <= value < ID_RANGE[1]


def load_json(ann_file: str) -> Any:
    """The parsed file, or ValueError naming it."""
    try:
        with open(ann_file, "rb") as f:
            return json.load(f)
    except RecursionError as e:
        raise ValueError(f"{ann_file}: not a usable COCO annotation file: JSON nested too deeply") from e
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, and integers of > 4300 digits
        raise ValueError(f"{ann_file}: not valid JSON: {str(e)[:200]}") from e
    except OSError as e:
        raise ValueError(f"{ann_file}: cannot read the annotation file: {e}") from e


def top_level_lists(data: Any, ann_file: str) -> Tuple[list, list, list]:
    """(images, annotations, categories) of a parsed file; the categories are checked."""
    if not isinstance(data, dict):
        raise ValueError(
            f"{ann_file}: not a COCO annotation file: the top level is a {type(data).__name__}, "
            f"not a dict with 'images', 'annotations' and 'categories'"
        )
    images = data.get("images")
    if not isinstance(images, list):
        raise ValueError(f"{ann_file}: not a COCO annotation file: 'images' = {show(images)} is not a list")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{ann_file}: 'annotations' = {show(annotations)} is not a list")
    return images, annotations, check_categories(data, ann_file)


def _category_error(ann_file: str, where: str, why: str) -> ValueError:
    return ValueError(
        f"{ann_file}: {where}: {why} (the categories define the model's classes, so they "
        f"must be right whatever DATASETS.ON_BAD_INPUT says)"
    )


def check_categories(data: dict, ann_file: str) -> List[dict]:
    """The `categories` list: dicts with unique integer ids and non-empty string names."""
    if "categories" not in data:
        raise _category_error(ann_file, "no 'categories' list at the top level", "a COCO file lists its categories")
    categories = data["categories"]
    if not isinstance(categories, list) or not categories:
        raise _category_error(ann_file, f"'categories' = {show(categories)}", "expected a non-empty list")
    seen: Set[int] = set()
    for k, cat in enumerate(categories):
        if not isinstance(cat, dict):
            raise _category_error(ann_file, f"categories[{k}] = {show(cat)}", "expected a dict with 'id' and 'name'")
        cat_id, name = cat.get("id"), cat.get("name")
        if not is_id(cat_id):
            raise _category_error(ann_file, f"categories[{k}]: field 'id' = {show(cat_id)}", "expected an integer")
        if cat_id in seen:
            raise _category_error(ann_file, f"categories[{k}]: field 'id' = {cat_id}", "duplicate category id")
        seen.add(cat_id)
        if not isinstance(name, str) or not name:
            raise _category_error(
                ann_file, f"categories[{k}] (id {cat_id}): field 'name' = {show(name)}", "expected a non-empty string"
            )
    return categories


def check_images(images: list, ann_file: str, log: ProblemLog) -> Tuple[List[dict], Set[int]]:
    """(the usable image entries, ids of the dropped ones that have an integer id).

    An image entry needs an integer id that no other entry has (entries sharing an id are all
    dropped: which annotations belong to which cannot be told), width and height (see
    image_size_problem) and a non-empty file_name.
    """
    id_counts = Counter(img["id"] for img in images if isinstance(img, dict) and is_id(img.get("id")))
    kept: List[dict] = []
    dropped_ids: Set[int] = set()
    for k, img in enumerate(images):
        if not isinstance(img, dict):
            log.add(
                IMAGE_NOT_DICT,
                f"{ann_file}: images[{k}]",
                None,
                img,
                "an image entry is a dict with 'id', 'file_name', 'width' and 'height'",
            )
            continue
        img_id = img.get("id")
        where = image_where(ann_file, img_id, k)
        if not is_id(img_id):
            log.add(IMAGE_ID, where, "id", img_id, "expected an integer")
            continue
        if id_counts[img_id] > 1:
            log.add(
                IMAGE_DUPLICATE_ID,
                where,
                "id",
                img_id,
                f"{id_counts[img_id]} image entries share this id (this is images[{k}], file_name "
                f"{show(img.get('file_name'))}): all of them are dropped with their annotations (whose "
                f"boxes are whose cannot be told)",
            )
            dropped_ids.add(img_id)
            continue
        ok = True
        width, height = img.get("width"), img.get("height")
        why = image_size_problem(width, height)
        if why:
            log.add(IMAGE_SIZE, where, "width, height", [width, height], why)
            ok = False
        file_name = img.get("file_name")
        if not isinstance(file_name, str) or not file_name or "\x00" in file_name:
            log.add(
                IMAGE_FILE_NAME,
                where,
                "file_name",
                file_name,
                "expected a non-empty path (relative to the image folder)",
            )
            ok = False
        if ok:
            kept.append(img)
        else:
            dropped_ids.add(img_id)
    return kept, dropped_ids
