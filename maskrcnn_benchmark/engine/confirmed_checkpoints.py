"""Checkpoints that become the one to resume from only once their weights proved healthy.

A checkpoint written after iteration i holds the weights that iteration i+1 computes its loss with.
It is written at once (atomically) but `last_checkpoint` moves to it only after that loss passed the
LossGuard. If instead the run stops as diverging, the unconfirmed file is deleted and
`last_checkpoint` still names the previous confirmed checkpoint, so rerunning the same command (with,
say, a lower SOLVER.BASE_LR) resumes from weights that were still fine.
"""

import logging
import os
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)


class ConfirmedCheckpoints:
    """Wraps a Checkpointer (only its save_dir / save_to_disk processes write anything)."""

    def __init__(self, checkpointer: Any):
        self.checkpointer = checkpointer
        self.pending: Optional[str] = None  # path written but not yet tagged as last_checkpoint

    @property
    def _writes(self) -> bool:
        return bool(self.checkpointer.save_dir) and bool(self.checkpointer.save_to_disk)

    def _path(self, name: str) -> str:
        return os.path.join(self.checkpointer.save_dir, f"{name}.pth")

    def save(self, name: str, confirmed: bool, **data: Any) -> None:
        """Write `name`; tag it as last_checkpoint now if `confirmed`, else at the next confirm()."""
        self.confirm()  # a still pending one is older; it was confirmed by the losses since
        self.checkpointer.save(name, tag_last=False, **data)
        if not self._writes:
            return
        self.pending = self._path(name)
        if confirmed:
            self.confirm()

    def confirm(self) -> None:
        """The losses computed since the pending checkpoint were healthy: resume from it."""
        if self.pending is not None:
            self.checkpointer.tag_last_checkpoint(self.pending)
            self.pending = None

    def discard(self) -> Optional[str]:
        """The run diverged: delete the pending checkpoint. Returns the path of the checkpoint a
        rerun resumes from (None: it starts from scratch / MODEL.WEIGHT)."""
        if self.pending is not None:
            logger.warning("Deleting %s: the loss computed with its weights was not healthy.", self.pending)
            try:
                os.remove(self.pending)
            except OSError:
                pass
            self.pending = None
        if self.checkpointer.has_checkpoint():
            return self.checkpointer.get_checkpoint_file() or None
        return None


def all_finite(parameters: Any) -> bool:
    """Whether every parameter is finite (one host synchronisation for all of them)."""
    flags = [torch.isfinite(p.detach()).all() for p in parameters]
    return bool(torch.stack(flags).all()) if flags else True
