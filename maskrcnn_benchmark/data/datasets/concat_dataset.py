"""ConcatDataset: several datasets seen as one (training on DATASETS.TRAIN with several names)."""

import bisect
from typing import Any, Tuple

from torch.utils.data import ConcatDataset as _ConcatDataset


class ConcatDataset(_ConcatDataset):
    """torch's ConcatDataset plus `get_idxs` and `get_img_info` (used for aspect-ratio grouping).

    Unlike torch's (and the original's), items report the global index of the returned sample
    rather than its index inside its own dataset, so that `(image, target, index)` is consistent.
    """

    def get_idxs(self, idx: int) -> Tuple[int, int]:
        """(which dataset, index inside it) of global index `idx`."""
        if idx < 0:
            idx += len(self)
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return dataset_idx, sample_idx

    def _offset(self, dataset_idx: int) -> int:
        return 0 if dataset_idx == 0 else self.cumulative_sizes[dataset_idx - 1]

    def __getitem__(self, idx: int) -> Any:
        dataset_idx, sample_idx = self.get_idxs(idx)
        item = self.datasets[dataset_idx][sample_idx]
        if isinstance(item, tuple) and len(item) == 3:
            image, target, returned_idx = item  # may differ from sample_idx if an image was skipped
            return image, target, self._offset(dataset_idx) + returned_idx
        return item

    def get_img_info(self, idx: int) -> dict:
        dataset_idx, sample_idx = self.get_idxs(idx)
        return self.datasets[dataset_idx].get_img_info(sample_idx)
