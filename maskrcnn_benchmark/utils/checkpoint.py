"""Save and restore training state (model, optimizer, scheduler, iteration...).

Files: {save_dir}/{name}.pth holding {"model": state_dict, "optimizer": ..., "scheduler": ...,
**extra}, and {save_dir}/last_checkpoint holding the path of the newest one. Both are written
atomically (temporary file + rename), so a run killed during a save never leaves a broken
checkpoint behind.

Loading is safe by default: .pth files go through torch.load(weights_only=True) (tensors and plain
containers only). Old checkpoints that pickle other Python objects can be loaded from a trusted
source with `trusted=True` or the environment variable MASKRCNN_TRUST_CHECKPOINTS=1.
"""
import logging
import os
import pickle
from typing import Any, Dict, Optional

import torch

from .c2_model_loading import load_c2_format
from .imports import import_paths_catalog
from .miscellaneous import atomic_write
from .model_serialization import load_state_dict
from .model_zoo import cache_url

TRUST_ENV = "MASKRCNN_TRUST_CHECKPOINTS"


def load_checkpoint_file(path: str, trusted: bool = False) -> Any:
    """torch.load(path) on the CPU, tensors and plain containers only unless `trusted`."""
    trusted = trusted or os.environ.get(TRUST_ENV, "") not in ("", "0")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise pickle.UnpicklingError(
                f"{path} stores Python objects other than tensors and plain containers, which are not "
                f"loaded by default because unpickling them can run code. If you trust this file, set "
                f"{TRUST_ENV}=1 (or pass trusted=True). Details: {e}"
            ) from None
        raise RuntimeError(f"{path}: cannot read checkpoint (truncated or corrupt?): {e}") from e
    except (RuntimeError, EOFError, ValueError) as e:
        raise RuntimeError(f"{path}: cannot read checkpoint (truncated or corrupt?): {e}") from e


class Checkpointer:
    """The original's Checkpointer API (REFERENCE.md 2.10), with atomic, safe files."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Optional[Any] = None,
        save_dir: str = "",
        save_to_disk: Optional[bool] = None,
        logger: Optional[logging.Logger] = None,
        trusted: bool = False,
    ):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.save_dir = save_dir
        self.save_to_disk = save_to_disk
        self.logger = logger or logging.getLogger(__name__)
        self.trusted = trusted

    def save(self, name: str, tag_last: bool = True, **kwargs) -> None:
        """Write {save_dir}/{name}.pth and, if tag_last, point last_checkpoint at it (no-op without
        save_dir or save_to_disk, e.g. on non-main processes). The trainer passes tag_last=False and
        tags the file once the loss computed with its weights proved healthy."""
        if not self.save_dir or not self.save_to_disk:
            return
        data: Dict[str, Any] = {"model": self.model.state_dict()}
        if self.optimizer is not None:
            data["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            data["scheduler"] = self.scheduler.state_dict()
        data.update(kwargs)
        save_file = os.path.join(self.save_dir, f"{name}.pth")
        self.logger.info("Saving checkpoint to %s", save_file)
        atomic_write(save_file, lambda f: torch.save(data, f))
        if tag_last:
            self.tag_last_checkpoint(save_file)

    def load(self, f: Optional[str] = None, use_latest: bool = True) -> Dict[str, Any]:
        """Restore from `f`, or from the last checkpoint of save_dir if there is one and use_latest.

        Returns what the file holds besides model/optimizer/scheduler (e.g. {"iteration": N});
        {} when there is nothing to load.
        """
        if self.has_checkpoint() and use_latest:
            f = self.get_checkpoint_file()
        if not f:
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info("Loading checkpoint from %s", f)
        checkpoint = self._load_file(f)
        self._load_model(checkpoint)
        if "optimizer" in checkpoint and self.optimizer is not None:
            self.logger.info("Loading optimizer from %s", f)
            try:
                self.optimizer.load_state_dict(checkpoint.pop("optimizer"))
            except ValueError as e:  # e.g. the original's one-group-per-parameter layout
                self.logger.warning(
                    "The optimizer state in %s does not fit this optimizer (%s); starting with a fresh one.", f, e
                )
        if "scheduler" in checkpoint and self.scheduler is not None:
            self.logger.info("Loading scheduler from %s", f)
            self.scheduler.load_state_dict(checkpoint.pop("scheduler"))
        return checkpoint

    def _last_checkpoint_path(self) -> str:
        return os.path.join(self.save_dir, "last_checkpoint")

    def has_checkpoint(self) -> bool:
        return bool(self.save_dir) and os.path.exists(self._last_checkpoint_path())

    def get_checkpoint_file(self) -> str:
        """Path named by last_checkpoint ("" if unreadable). If the output folder was moved, the
        file of the same name inside save_dir is used."""
        try:
            with open(self._last_checkpoint_path(), "r") as f:
                last_saved = f.read().strip()
        except OSError:
            return ""
        if last_saved and not os.path.exists(last_saved):
            moved = os.path.join(self.save_dir, os.path.basename(last_saved))
            if os.path.exists(moved):
                return moved
        return last_saved

    def tag_last_checkpoint(self, last_filename: str) -> None:
        path = os.path.abspath(last_filename)
        atomic_write(self._last_checkpoint_path(), lambda f: f.write(path.encode()))

    def _load_file(self, f: str) -> Dict[str, Any]:
        loaded = load_checkpoint_file(f, trusted=self.trusted)
        if not isinstance(loaded, dict):
            raise RuntimeError(f"{f}: expected a state_dict or a dict with a 'model' entry, got {type(loaded).__name__}")
        if "model" not in loaded:  # a bare state_dict
            loaded = {"model": loaded}
        return dict(loaded)

    def _load_model(self, checkpoint: Dict[str, Any]) -> None:
        load_state_dict(self.model, checkpoint.pop("model"))


class DetectronCheckpointer(Checkpointer):
    """Checkpointer that also understands "catalog://<name>", URLs and Detectron .pkl files."""

    def __init__(
        self,
        cfg,
        model: torch.nn.Module,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Optional[Any] = None,
        save_dir: str = "",
        save_to_disk: Optional[bool] = None,
        logger: Optional[logging.Logger] = None,
        trusted: bool = False,
    ):
        super().__init__(model, optimizer, scheduler, save_dir, save_to_disk, logger, trusted)
        self.cfg = cfg.clone()

    def _load_file(self, f: str) -> Dict[str, Any]:
        if f.startswith("catalog://"):
            paths_catalog = import_paths_catalog(self.cfg.PATHS_CATALOG)
            url = paths_catalog.ModelCatalog.get(f[len("catalog://"):])
            self.logger.info("%s points to %s", f, url)
            f = url
        if f.startswith(("http://", "https://")):
            f = cache_url(f)
            self.logger.info("url weights cached at %s", f)
        if f.endswith(".pkl"):
            return load_c2_format(self.cfg, f)
        return super()._load_file(f)
