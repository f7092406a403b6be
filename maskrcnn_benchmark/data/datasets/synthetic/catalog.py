"""The synthetic datasets known to the DatasetCatalog, generated on first use.

Their names and file layout are defined once, in maskrcnn_benchmark/config/paths_catalog.py
(SYNTHETIC_DATASETS: catalog name -> (kind, split); synthetic_folder, synthetic_split_files).
"""

import fcntl
import logging
import os
import shutil
import time

from ....config.paths_catalog import SYNTHETIC_DATASETS, synthetic_folder
from .writer import DEFAULT_SPLITS, annotation_path, generate_synthetic_dataset


def dataset_folder(data_dir: str, kind: str) -> str:
    return os.path.join(data_dir, synthetic_folder(kind))


def _remove_leftovers(folder: str) -> None:
    """Delete temporary folders that a killed generation left next to `folder` (under the lock,
    nobody else is generating there)."""
    parent, base = os.path.split(folder)
    for name in os.listdir(parent):
        if name.startswith(f".{base}.tmp-"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def ensure_synthetic_dataset(name: str, data_dir: str) -> None:
    """Generate the synthetic dataset `name` under `data_dir` unless its annotation file exists.

    The whole kind (all its default splits, default seed and image size) is generated into
    `data_dir/synthetic_<kind>`. Safe to call from several processes at once (distributed ranks):
    they take an exclusive fcntl lock on `data_dir/.synthetic_<kind>.lock`; the first generates,
    the others wait for it and then find the annotation file.
    """
    if name not in SYNTHETIC_DATASETS:
        raise ValueError(f"unknown synthetic dataset {name!r}; known: {', '.join(sorted(SYNTHETIC_DATASETS))}")
    kind, split = SYNTHETIC_DATASETS[name]
    folder = dataset_folder(os.path.abspath(data_dir), kind)
    ann_file = annotation_path(folder, kind, split)
    if os.path.exists(ann_file):
        return
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    lock_path = os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if os.path.exists(ann_file):  # another process made it while we waited
                return
            _remove_leftovers(folder)
            logger = logging.getLogger(__name__)
            logger.info("Generating the synthetic %s dataset into %s (first use of %s)", kind, folder, name)
            start = time.perf_counter()
            generate_synthetic_dataset(folder, kind=kind, splits=DEFAULT_SPLITS[kind])
            logger.info("Synthetic %s dataset generated in %.1f s", kind, time.perf_counter() - start)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
