"""AbstractDataset: the original's base class for a custom detection dataset.

A subclass sets CLASSES (names, "__background__" first, so that background is label 0), calls
initMaps() to get the name <-> contiguous id maps, and implements __getitem__ (image, BoxList target
with "labels" and optionally "masks", index), __len__ and get_img_info (at least "width" and
"height"). Evaluation of such a dataset converts it to COCO format (evaluation/coco/abs_to_coco.py).
"""

from typing import Any, Dict, Optional, Sequence

import torch


class AbstractDataset(torch.utils.data.Dataset):
    CLASSES: Sequence[str] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.name_to_id: Optional[Dict[str, int]] = None
        self.id_to_name: Optional[Dict[int, str]] = None

    def initMaps(self) -> None:  # noqa: N802 (the original's name)
        """name_to_id / id_to_name between CLASSES and contiguous ids, background 0."""
        if not self.CLASSES or self.CLASSES[0] != "__background__":
            raise ValueError(
                f"{type(self).__name__}.CLASSES must start with '__background__', got {list(self.CLASSES)[:3]}"
            )
        self.name_to_id = {name: i for i, name in enumerate(self.CLASSES)}
        self.id_to_name = dict(enumerate(self.CLASSES))

    def __getitem__(self, idx: int):
        raise NotImplementedError

    def get_img_info(self, index: int) -> Dict[str, Any]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError
