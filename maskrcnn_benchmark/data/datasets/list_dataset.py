"""ListDataset: images from a list of file paths, each with a dummy whole-image box (the original's
helper for running a model over arbitrary images through the data pipeline)."""

from typing import Callable, Optional, Sequence, Tuple

from PIL import Image

from ...structures.bounding_box import BoxList


class ListDataset:
    """Item i: (RGB PIL image or its transform, BoxList with one box [0, 0, w, h] (xyxy), i).

    The original returned (image, target) and failed on its own undefined names; the index is added
    here so that the batch collators of this library accept it.
    """

    def __init__(self, image_lists: Sequence[str], transforms: Optional[Callable] = None):
        self.image_lists = list(image_lists)
        self.transforms = transforms

    def __getitem__(self, item: int) -> Tuple[object, BoxList, int]:
        path = self.image_lists[item]
        try:
            img = Image.open(path).convert("RGB")
        except OSError as e:
            raise OSError(f"ListDataset: cannot read image {path!r} (item {item}): {e}") from e
        w, h = img.size
        target = BoxList([[0, 0, w, h]], img.size, mode="xyxy")
        if self.transforms is not None:
            img, target = self.transforms(img, target)
        return img, target, item

    def __len__(self) -> int:
        return len(self.image_lists)

    def get_img_info(self, item: int) -> dict:
        """{"width", "height"} read from the image header (the pixels are not decoded)."""
        with Image.open(self.image_lists[item]) as img:
            width, height = img.size
        return {"width": width, "height": height}
