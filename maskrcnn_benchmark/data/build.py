"""Datasets, samplers and DataLoaders from the config (the original's make_data_loader).

Batches are `(ImageList, tuple[BoxList], tuple[int])`: images zero-padded to a multiple of
DATALOADER.SIZE_DIVISIBILITY, targets with "xyxy" boxes in the inclusive-pixel convention
(`x2 = x + w - 1`), and the dataset indices of the images.

Training order is deterministic and resumable: a DistributedSampler (also for one process) shuffles
with a fixed seed and the epoch, IterationBasedBatchSampler sets the epoch to the iteration at which
each pass starts, and resuming at start_iter=N replays the index sampling from iteration 0 without
loading any data, so the batches of iterations N, N+1, ... are exactly those of an uninterrupted run.
The random augmentation of each training sample is seeded from (SEED, rank, iteration, position in
the batch) (data/seeded.py), so it is the same too, whatever DATALOADER.NUM_WORKERS is.
"""

import bisect
import logging
import os
from typing import Any, List, Optional, Sequence, Union

import torch.utils.data
from torch.utils.data import BatchSampler, DataLoader, Sampler, SequentialSampler

from ..config.checks import check_input
from ..utils.comm import get_rank, get_world_size
from ..utils.imports import import_paths_catalog
from . import datasets as D
from . import samplers
from .collate_batch import BatchCollator, BBoxAugCollator
from .dataset_model_check import check_datasets_match_model
from .seeded import SeededBatchSampler, SeededDataset, augmentation_seed
from .transforms import build_transforms

logger = logging.getLogger(__name__)

SHUFFLE_SEED = 0  # the same on every process, so that their shards of each epoch do not overlap

# Constructor arguments of the catalog factories that name files or folders.
_PATH_ARGS = {
    "ann_file": "annotation file",
    "root": "image folder",
    "data_dir": "data folder",
    "img_dir": "image folder",
    "ann_dir": "annotation folder",
}


def _catalog_data_dir(dataset_catalog: Any) -> str:
    if hasattr(dataset_catalog, "data_dir"):
        return dataset_catalog.data_dir()
    return os.path.abspath(getattr(dataset_catalog, "DATA_DIR", "datasets"))


def _check_paths_exist(name: str, args: dict, dataset_catalog: Any) -> None:
    for key, what in _PATH_ARGS.items():
        path = args.get(key)
        if isinstance(path, str) and not os.path.exists(path):
            raise FileNotFoundError(
                f"dataset {name!r}: {what} not found: {path} (data folder: {_catalog_data_dir(dataset_catalog)}; "
                f"set $MASKRCNN_DATASETS or register the dataset with DATASETS.REGISTER_COCO)"
            )


def build_dataset(
    dataset_list: Sequence[str],
    transforms: Optional[Any],
    dataset_catalog: Any,
    is_train: bool = True,
    on_bad_input: str = "skip",
) -> List[torch.utils.data.Dataset]:
    """Datasets named in `dataset_list` (looked up in `dataset_catalog`).

    Training: a one-element list (a ConcatDataset if several names). Testing: one dataset per name.
    COCO datasets get remove_images_without_annotations=is_train and on_bad_input; VOC datasets
    use_difficult=not is_train; Cityscapes datasets (CityScapesDataset, the cityscapes_{poly,mask}_
    instance_* entries) take the entry's arguments as they are, in training and testing alike.
    """
    if not isinstance(dataset_list, (list, tuple)):
        raise RuntimeError(f"dataset_list should be a list of strings, got {dataset_list!r}")
    if len(dataset_list) == 0:
        raise RuntimeError("no dataset given (DATASETS.TRAIN / DATASETS.TEST is empty)")
    datasets = []
    for name in dataset_list:
        data = dataset_catalog.get(name)  # unknown names: the catalog's own error
        # The embedded synthetic sets are generated on first use (imported here so that the package
        # does not depend on the generator); a dataset of the user's may have a "synthetic_" name too.
        from .datasets.synthetic import SYNTHETIC_DATASETS, ensure_synthetic_dataset

        if name in SYNTHETIC_DATASETS:
            ensure_synthetic_dataset(name, _catalog_data_dir(dataset_catalog))
        factory_name = data["factory"]
        factory = getattr(D, factory_name, None)
        if factory is None:
            raise NotImplementedError(
                f"dataset {name!r} needs {factory_name}, which this implementation does not provide; "
                f"use a COCO-format version of the data (DATASETS.REGISTER_COCO)"
            )
        args = dict(data["args"])
        _check_paths_exist(name, args, dataset_catalog)
        if factory_name == "COCODataset":
            args["remove_images_without_annotations"] = is_train
            args["on_bad_input"] = on_bad_input
        elif factory_name == "PascalVOCDataset":
            args["use_difficult"] = not is_train  # as the original: difficult objects only at test time
        args["transforms"] = transforms
        dataset = factory(**args)
        dataset.name = name  # for logs and evaluation output
        datasets.append(dataset)

    if not is_train:
        return datasets
    if len(datasets) == 1:
        return datasets
    dataset = D.ConcatDataset(datasets)
    dataset.name = "+".join(dataset_list)
    return [dataset]


def make_data_sampler(dataset: torch.utils.data.Dataset, shuffle: bool, distributed: bool) -> Sampler:
    """Training (shuffle): a seeded DistributedSampler, one replica per process (one in total when
    not distributed), whose order depends only on (seed, epoch). Testing: sequential, or a
    DistributedSampler without shuffling that splits the dataset over the processes."""
    num_replicas, rank = (get_world_size(), get_rank()) if distributed else (1, 0)
    if shuffle or distributed:
        return samplers.DistributedSampler(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=SHUFFLE_SEED
        )
    return SequentialSampler(dataset)


def _quantize(x: Sequence[float], bins: Sequence[float]) -> List[int]:
    """Bin index of each value: bisect_right in the sorted bins (aspect ratio h/w with bins [1]:
    landscape -> 0, square or portrait -> 1)."""
    bins = sorted(bins)
    return [bisect.bisect_right(bins, y) for y in x]


def _compute_aspect_ratios(dataset: torch.utils.data.Dataset) -> List[float]:
    """height / width of every image, from the annotations (no image is read)."""
    ratios = []
    for i in range(len(dataset)):
        info = dataset.get_img_info(i)
        ratios.append(float(info["height"]) / float(info["width"]))
    return ratios


def make_batch_data_sampler(
    dataset: torch.utils.data.Dataset,
    sampler: Sampler,
    aspect_grouping: Sequence[float],
    images_per_batch: int,
    num_iters: Optional[int] = None,
    start_iter: int = 0,
    seed: Optional[int] = None,
    rank: int = 0,
) -> BatchSampler:
    """Batches of `images_per_batch` indices of `sampler`, grouped by aspect ratio if
    `aspect_grouping` (the bin edges) is not empty; with num_iters, repeated until that many
    iterations (the first start_iter are replayed without being yielded), and with a seed as well,
    each index carries the seed of its augmentation (data/seeded.py)."""
    if aspect_grouping:
        group_ids = _quantize(_compute_aspect_ratios(dataset), aspect_grouping)
        batch_sampler = samplers.GroupedBatchSampler(sampler, group_ids, images_per_batch, drop_uneven=False)
    else:
        batch_sampler = BatchSampler(sampler, images_per_batch, drop_last=False)
    if num_iters is not None and seed is not None:
        batch_sampler = SeededBatchSampler(batch_sampler, num_iters, start_iter, base_seed=seed, rank=rank)
    elif num_iters is not None:
        batch_sampler = samplers.IterationBasedBatchSampler(batch_sampler, num_iters, start_iter)
    return batch_sampler


def dataset_catalog_of(cfg: Any) -> Any:
    """The DatasetCatalog of cfg.PATHS_CATALOG, with the DATASETS.REGISTER_COCO entries registered."""
    dataset_catalog = import_paths_catalog(cfg.PATHS_CATALOG).DatasetCatalog
    if cfg.DATASETS.REGISTER_COCO and not hasattr(dataset_catalog, "register_coco"):
        raise AttributeError(
            f"DATASETS.REGISTER_COCO is set but the DatasetCatalog of {cfg.PATHS_CATALOG} has no register_coco"
        )
    for entry in cfg.DATASETS.REGISTER_COCO:
        if len(entry) != 3:
            raise ValueError(f"DATASETS.REGISTER_COCO entries are [name, image folder, annotation json], got {entry!r}")
        dataset_catalog.register_coco(*entry)
    return dataset_catalog


def make_data_loader(
    cfg: Any,
    is_train: bool = True,
    is_distributed: bool = False,
    start_iter: int = 0,
    is_for_period: bool = False,
) -> Union[DataLoader, List[DataLoader]]:
    """DataLoader(s) from the config.

    Training (or is_for_period): one DataLoader; training yields exactly SOLVER.MAX_ITER - start_iter
    batches of SOLVER.IMS_PER_BATCH / world size images. is_for_period: one loader over all of
    DATASETS.TEST, images without annotations removed, test transforms, one pass (validation
    losses). Testing: a list, one loader per DATASETS.TEST name, TEST.IMS_PER_BATCH / world size
    images per batch, sequential order.
    """
    check_input(cfg)  # image sizes, normalisation, NUM_WORKERS: before any dataset is read
    num_gpus = get_world_size()
    if is_train:
        images_per_batch, key = cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH"
        # One iteration (optimizer step) consumes ACCUMULATE_GRAD_ITERS batches.
        accumulate = max(int(cfg.SOLVER.ACCUMULATE_GRAD_ITERS), 1)
        shuffle, num_iters, start_iter = True, cfg.SOLVER.MAX_ITER * accumulate, start_iter * accumulate
    else:
        images_per_batch, key = cfg.TEST.IMS_PER_BATCH, "TEST.IMS_PER_BATCH"
        shuffle, num_iters, start_iter = False, None, 0
    if images_per_batch <= 0 or images_per_batch % num_gpus != 0:
        raise ValueError(
            f"{key} ({images_per_batch}) must be a positive multiple of the number of processes ({num_gpus})"
        )
    images_per_gpu = images_per_batch // num_gpus

    dataset_catalog = dataset_catalog_of(cfg)

    dataset_list = cfg.DATASETS.TRAIN if is_train else cfg.DATASETS.TEST
    bbox_aug = not is_train and not is_for_period and cfg.TEST.BBOX_AUG.ENABLED
    # Test-time augmentation transforms each image itself, so the loader gives the raw images.
    transforms = None if bbox_aug else build_transforms(cfg, is_train)
    datasets = build_dataset(
        dataset_list, transforms, dataset_catalog, is_train or is_for_period, cfg.DATASETS.ON_BAD_INPUT
    )
    check_datasets_match_model(cfg, datasets)  # a wrong NUM_CLASSES fails here, not deep in the loss
    aspect_grouping = [1] if cfg.DATALOADER.ASPECT_RATIO_GROUPING else []
    collator = BBoxAugCollator() if bbox_aug else BatchCollator(cfg.DATALOADER.SIZE_DIVISIBILITY)

    data_loaders = []
    for dataset in datasets:
        logger.info(
            "%s: %d image(s), %d per batch in this process",
            getattr(dataset, "name", dataset_list),
            len(dataset),
            images_per_gpu,
        )
        sampler = make_data_sampler(dataset, shuffle, is_distributed)
        # Training: the augmentation of each sample is seeded from (SEED, rank, iteration, position),
        # not from the loading process's stream, so resuming or changing NUM_WORKERS keeps the batches.
        seed = augmentation_seed(cfg) if is_train else None
        batch_sampler = make_batch_data_sampler(
            dataset,
            sampler,
            aspect_grouping,
            images_per_gpu,
            num_iters,
            start_iter,
            seed=seed,
            rank=get_rank() if is_distributed else 0,
        )
        data_loaders.append(
            DataLoader(
                SeededDataset(dataset) if is_train else dataset,
                num_workers=cfg.DATALOADER.NUM_WORKERS,
                batch_sampler=batch_sampler,
                collate_fn=collator,
            )
        )
    if is_train or is_for_period:
        assert len(data_loaders) == 1, "training builds one (possibly concatenated) dataset"
        return data_loaders[0]
    return data_loaders
