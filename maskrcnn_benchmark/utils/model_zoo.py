"""Download-once cache for weights given by URL (MODEL.WEIGHT "http..." or "catalog://...")."""

import logging
import os
import shutil
import urllib.request
from typing import Optional
from urllib.parse import urlparse

from .comm import is_main_process, synchronize
from .miscellaneous import atomic_write

logger = logging.getLogger(__name__)


def cache_dir() -> str:
    """$TORCH_MODEL_ZOO, else $TORCH_HOME/models, else ~/.torch/models (as the original)."""
    if os.environ.get("TORCH_MODEL_ZOO"):
        return os.path.expanduser(os.environ["TORCH_MODEL_ZOO"])
    torch_home = os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join("~", ".torch")))
    return os.path.join(torch_home, "models")


def cached_path_for(url: str, model_dir: Optional[str] = None) -> str:
    """Where `url` is (or would be) cached. Detectron's many "model_final.pkl" files are told
    apart by naming them after their URL path."""
    parts = urlparse(url)
    filename = os.path.basename(parts.path)
    if filename == "model_final.pkl":
        filename = parts.path.replace("/", "_")
    return os.path.join(model_dir or cache_dir(), filename)


def cache_url(url: str, model_dir: Optional[str] = None, progress: bool = True, timeout: float = 30.0) -> str:
    """Local path of `url`, downloading it first if it is not cached.

    Only the main process downloads (the others wait). Without network access, the error says
    where to put the file by hand.
    """
    cached_file = cached_path_for(url, model_dir)
    if not os.path.exists(cached_file) and is_main_process():
        os.makedirs(os.path.dirname(cached_file), exist_ok=True)
        logger.info("Downloading %s to %s", url, cached_file)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                atomic_write(cached_file, lambda f: shutil.copyfileobj(response, f))
        except Exception as e:  # network errors come in many types
            raise RuntimeError(
                f"Could not download {url} ({e}). If this machine is offline, download the file elsewhere "
                f"and put it at {cached_file} (cache folder: $TORCH_MODEL_ZOO or $TORCH_HOME/models)."
            ) from e
    synchronize()
    return cached_file
