"""OpenCV compatibility: `findContours` with one return shape on OpenCV 3, 4 and 5."""

from typing import Any, List, Tuple

import cv2
import numpy as np


def _to_numpy(x: Any) -> Any:
    """A cv2.UMat as a numpy array; anything else unchanged."""
    if isinstance(x, cv2.UMat):
        return x.get()
    return x


def findContours(*args: Any, **kwargs: Any) -> Tuple[List[np.ndarray], Any]:
    """`cv2.findContours(*args, **kwargs)` returning `(contours, hierarchy)` on every OpenCV version.

    OpenCV 3 returns `(image, contours, hierarchy)`, OpenCV 4 and 5 `(contours, hierarchy)`. A
    `cv2.UMat` image is read back to numpy first, and any UMat result is converted, so the contours
    are always a list of `[P, 1, 2]` int32 numpy arrays (hierarchy: numpy array or None).
    """
    args = tuple(_to_numpy(a) for a in args)
    if "image" in kwargs:
        kwargs["image"] = _to_numpy(kwargs["image"])
    result = cv2.findContours(*args, **kwargs)
    if len(result) == 3:
        _, contours, hierarchy = result
    elif len(result) == 2:
        contours, hierarchy = result
    else:
        raise RuntimeError(
            "cv2.findContours returned {} values (OpenCV {}); expected 2 or 3".format(len(result), cv2.__version__)
        )
    return [_to_numpy(c) for c in contours], _to_numpy(hierarchy)
