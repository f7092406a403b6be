"""Small file-system helpers."""
import os
import tempfile


def atomic_write(path: str, write) -> None:
    """Call write(file object) on a temporary file next to `path`, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def mkdir(path: str) -> None:
    """os.makedirs(path, exist_ok=True) (the original's helper)."""
    if path:
        os.makedirs(path, exist_ok=True)


def save_config(cfg, path: str) -> None:
    """Write the (merged) config as YAML, atomically; it loads back with cfg.merge_from_file."""
    atomic_write(path, lambda f: f.write(cfg.dump().encode()))


def save_labels(dataset_list, output_dir: str) -> None:
    """Write output_dir/labels.json: {"labels": class names by contiguous id, index 0 the background}
    of the first dataset that has categories, so that predictors can name what a model detects."""
    import json

    for dataset in dataset_list:
        names = getattr(dataset, "class_names", None)
        if names:
            atomic_write(os.path.join(output_dir, "labels.json"), lambda f: f.write(json.dumps({"labels": list(names)}).encode()))
            return
