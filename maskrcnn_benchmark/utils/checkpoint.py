"""Save and restore training state (model, optimizer, scheduler, iteration...).

Files: {save_dir}/{name}.pth holding {"model": state_dict, "optimizer": ..., "scheduler": ...,
**extra}, and {save_dir}/last_checkpoint holding the path of the newest one. Both are written
atomically (temporary file + rename), so a run killed during a save never leaves a broken
checkpoint behind; the temporary file such a kill leaves is removed at the next save into the folder.

Loading is safe by default: .pth files go through torch.load(weights_only=True) (tensors and plain
containers only). Old checkpoints that pickle other Python objects can be loaded from a trusted
source with `trusted=True` or the environment variable MASKRCNN_TRUST_CHECKPOINTS=1. Any file that
cannot be read raises CheckpointFileError (weights_file.py) naming the file and the reason.

How much of the model a file must fill is `require` (see model_serialization.py): resuming from
save_dir's last_checkpoint requires "all" of it, initialising from another file "any" of it.
"""

import logging
import os
import pickle
from typing import Any, Dict, Optional

import torch

from ..config import CfgNode
from .c2_model_loading import load_c2_format
from .imports import import_paths_catalog
from .miscellaneous import atomic_write, remove_stale_temporaries
from .model_serialization import WeightsCoverageError, check_require, load_state_dict, state_dict_problem
from .model_zoo import cache_url
from .weights_file import (
    CheckpointFileError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    check_weights_file,
    unreadable_weights_file,
)

TRUST_ENV = "MASKRCNN_TRUST_CHECKPOINTS"

__all__ = [
    "Checkpointer",
    "DetectronCheckpointer",
    "load_checkpoint_file",
    "CheckpointFileError",
    "CheckpointNotFoundError",
    "UnsafeCheckpointError",
    "WeightsCoverageError",
]


def _weights_only_reason(error: pickle.UnpicklingError) -> str:
    """The reason inside torch's long "Weights only load failed ..." message."""
    text = str(error)
    if "WeightsUnpickler error:" not in text:
        return text
    reason = text.split("WeightsUnpickler error:", 1)[1]
    return reason.split("Check the documentation of torch.load", 1)[0].strip()


def load_checkpoint_file(path: str, trusted: bool = False) -> Any:
    """torch.load(path) on the CPU, tensors and plain containers only unless `trusted`.

    Raises CheckpointFileError (UnsafeCheckpointError for a file that needs `trusted`,
    CheckpointNotFoundError for a missing one) naming the file and what is wrong with it.
    """
    trusted = trusted or os.environ.get(TRUST_ENV, "") not in ("", "0")
    check_weights_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        reason = _weights_only_reason(e)
        # torch reports both forbidden classes and plain garbage as "Weights only load failed".
        if not trusted and ("GLOBAL" in reason or "allowlisted" in reason or "add_safe_globals" in reason):
            raise UnsafeCheckpointError(
                f"{path} stores Python objects other than tensors and plain containers, which are not "
                f"loaded by default because unpickling them can run code. If you trust this file, set "
                f"{TRUST_ENV}=1 (or pass trusted=True). Details: {reason}"
            ) from None
        raise unreadable_weights_file(path, pickle.UnpicklingError(reason)) from e
    except (ImportError, AttributeError) as e:
        if not trusted:
            raise unreadable_weights_file(path, e) from e
        # A trusted load imports the classes the pickle names: here one is not importable.
        raise CheckpointFileError(
            f"{path} refers to Python code that is not available here ({type(e).__name__}: {e}): it was "
            f"saved together with objects of another program, or it is not a checkpoint"
        ) from e
    except Exception as e:  # torch.load raises about anything on garbage (KeyError, RuntimeError...)
        if "Invalid magic number" in str(e):
            raise CheckpointFileError(
                f"{path} is not a file written by torch.save (a plain Python pickle? Detectron / Caffe2 weights "
                f"are read from files named *.pkl)"
            ) from e
        raise unreadable_weights_file(path, e) from e


def as_checkpoint(loaded: Any, path: str) -> Dict[str, Any]:
    """The dict a checkpoint file holds, with its weights under "model" (a bare state_dict is
    wrapped); CheckpointFileError when it holds anything else."""
    if not isinstance(loaded, dict):
        raise CheckpointFileError(
            f"{path} holds a {type(loaded).__name__}, not a checkpoint (a dict with a 'model' entry, or a state_dict)"
        )
    if "model" in loaded:
        problem = state_dict_problem(loaded["model"])
        if problem:
            raise CheckpointFileError(f"{path}: its 'model' entry is not a state_dict: {problem}")
        return dict(loaded)
    if state_dict_problem(loaded):
        entries = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in list(loaded.items())[:6])
        raise CheckpointFileError(
            f"{path} has no 'model' entry and is not a state_dict either; its entries: {entries or 'none'}"
        )
    return {"model": loaded}


class Checkpointer:
    """The original maskrcnn-benchmark Checkpointer API (model, optimizer, scheduler, save_dir,
    save_to_disk, logger; save(name, **extra); load(f, use_latest) -> extra), with atomic, safe
    files and a coverage requirement on loading."""

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
        # What the last load() did (model_serialization.LoadResult), None when it loaded nothing.
        self.last_load_result = None
        self._cleaned_save_dir = False
        # How load() asks _load_model (the original's hook, one argument) to load this file.
        self._require, self._source, self._optional = "any", "", ()

    def save(self, name: str, tag_last: bool = True, **kwargs) -> None:
        """Write {save_dir}/{name}.pth and, if tag_last, point last_checkpoint at it (no-op without
        save_dir or save_to_disk, e.g. on non-main processes). The trainer passes tag_last=False and
        tags the file once the loss computed with its weights proved healthy."""
        if not self.save_dir or not self.save_to_disk:
            return
        if not self._cleaned_save_dir:
            self._cleaned_save_dir = True
            removed = remove_stale_temporaries(self.save_dir)
            if removed:
                self.logger.info(
                    "Removed %d temporary file(s) left in %s by interrupted saves: %s",
                    len(removed),
                    self.save_dir,
                    ", ".join(os.path.basename(p) for p in removed),
                )
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

    def load(self, f: Optional[str] = None, use_latest: bool = True, require: Optional[str] = None) -> Dict[str, Any]:
        """Restore from `f`, or from the last checkpoint of save_dir if there is one and use_latest.

        `require` ("any", "all" or "none", see model_serialization.py) is how much of the model
        the file must fill; by default "all" when resuming from last_checkpoint, else "any". With
        "all", having nothing to load is an error too. Returns what the file holds besides
        model/optimizer/scheduler (e.g. {"iteration": N}); {} when there is nothing to load.
        """
        resuming = bool(use_latest and self.has_checkpoint())
        require = check_require(require or ("all" if resuming else "any"))
        self.last_load_result = None
        if resuming:
            f = self.get_checkpoint_file()
            if not f and require != "none":
                raise CheckpointFileError(
                    f"{self._last_checkpoint_path()} names no checkpoint (empty or unreadable): cannot resume. "
                    f"Delete it to start over."
                )
        if not f:
            if require == "all":
                where = f"no last_checkpoint in {self.save_dir!r}" if self.save_dir else "no save_dir"
                raise WeightsCoverageError(
                    f"No weights to load (no file given, {where}), but the whole model must be loaded.",
                    "Give a checkpoint file, or pass require='none' to keep the random initialisation.",
                )
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info("Loading checkpoint from %s", f)
        self._optional = ()
        checkpoint = self._load_file(f)
        self._require, self._source = require, f
        try:
            self._load_model(checkpoint)
        except WeightsCoverageError as e:
            if not resuming:
                raise
            raise e.with_hint(
                f"{self.save_dir} holds checkpoints of another model (was the config changed?): use another "
                f"output folder, or delete {self._last_checkpoint_path()} to start over."
            ) from None
        finally:
            self._require, self._source, self._optional = "any", "", ()
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
        except (OSError, UnicodeDecodeError):
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
        return as_checkpoint(load_checkpoint_file(f, trusted=self.trusted), f)

    def _load_model(self, checkpoint: Dict[str, Any]) -> None:
        self.last_load_result = load_state_dict(
            self.model,
            checkpoint.pop("model"),
            require=self._require,
            source=self._source or "the checkpoint",
            optional=self._optional,
        )


class DetectronCheckpointer(Checkpointer):
    """Checkpointer that also understands "catalog://<name>", URLs and Detectron .pkl files."""

    def __init__(
        self,
        cfg: CfgNode,
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
            url = paths_catalog.ModelCatalog.get(f[len("catalog://") :])
            self.logger.info("%s points to %s", f, url)
            f = url
        if f.startswith(("http://", "https://")):
            f = cache_url(f)
            self.logger.info("url weights cached at %s", f)
        if f.endswith(".pkl"):
            # Detectron files hold no anchors: the model computes them from the config.
            self._optional = [k for k in self.model.state_dict() if ".anchor_generator." in "." + k]
            return load_c2_format(self.cfg, f)
        return super()._load_file(f)
