"""The training loop: do_train (the original's signature) with mixed precision, gradient
accumulation and clipping, checkpoints, periodic validation and metrics logging.

One iteration is one optimizer step. With SOLVER.ACCUMULATE_GRAD_ITERS = k it sums the gradients of k
batches (each loss divided by k) before stepping, so the data loader yields k batches per iteration.
The learning-rate scheduler steps once per iteration, after the optimizer (iteration 0 runs at
BASE_LR * WARMUP_FACTOR, as in the original).
"""

import datetime
import json
import logging
import os
import time
import warnings
from contextlib import nullcontext
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist

from ..config import CfgNode
from ..modeling.utils import host_values
from ..utils.comm import get_world_size, is_main_process
from ..utils.memory import peak_memory_mb
from ..utils.metric_logger import MetricLogger
from .confirmed_checkpoints import ConfirmedCheckpoints, all_finite
from .loss_guard import LossGuard, NonFiniteLossError
from .precision import autocast, autocast_dtype
from .rng_state import gather_rng_states, restore_rng_state


def reduce_loss_dict(loss_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The mean of each loss over all processes (for logging), available on every process; the
    original reduced to rank 0 only, every process here also needs it to stop together on a NaN."""
    world_size = get_world_size()
    if world_size < 2:
        return {k: v.detach() for k, v in loss_dict.items()}
    names = sorted(loss_dict)
    values = torch.stack([loss_dict[k].detach().float() for k in names])
    dist.all_reduce(values)
    return dict(zip(names, values / world_size))


def read_losses(losses: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """The losses as Python floats, read from the device together (one synchronisation)."""
    names = list(losses)
    if not names:
        return {}
    return dict(zip(names, host_values(torch.stack([losses[k].detach().float().reshape(()) for k in names]))))


class _MetricsWriter:
    """metrics.json (one JSON object per line) and, when tensorboard is installed, TensorBoard events
    in output_dir/tensorboard. Main process only."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, "metrics.json") if output_dir and is_main_process() else None
        self.tensorboard = None
        if self.path is None:
            return
        os.makedirs(output_dir, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.tensorboard = SummaryWriter(os.path.join(output_dir, "tensorboard"))

    def write(self, iteration: int, values: Dict[str, float]) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"iteration": iteration, **values}) + "\n")
        if self.tensorboard is not None:
            for name, value in values.items():
                self.tensorboard.add_scalar(name, value, iteration)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _validate(cfg: CfgNode, model, data_loader_val, device, iteration: int, logger, writer: _MetricsWriter) -> None:
    """COCO evaluation of the current model on the validation loader(s); back in train mode after."""
    from .evaluation import box_only_of, iou_types_of
    from .inference import inference  # imported here: evaluation pulls in pycocotools

    loaders = data_loader_val if isinstance(data_loader_val, (list, tuple)) else [data_loader_val]
    model_to_eval = getattr(model, "module", model)
    for k, loader in enumerate(loaders):
        result = inference(
            model_to_eval,
            loader,
            dataset_name=f"[Validation {k}]" if len(loaders) > 1 else "[Validation]",
            iou_types=iou_types_of(cfg),
            box_only=box_only_of(cfg),
            device=device,
            expected_results=(),
            output_folder=None,
            autocast_dtype=autocast_dtype(cfg),
            coco_eval_backend=cfg.TEST.COCO_EVAL_BACKEND,
        )
        flat = validation_metrics(result) if is_main_process() else {}
        if flat:
            writer.write(iteration, flat)
            logger.info("Validation at iteration %d: %s", iteration, flat)
    model.train()


def validation_metrics(result: Any) -> Dict[str, float]:
    """The headline numbers of one evaluation as {"val/<task>/<metric>": value}.

    The evaluations return different things: COCO and Cityscapes `(results, ...)` whose `.results`
    is {task: {metric: value}}; Pascal VOC a dict with the mean AP under "map"; RPN-only models
    (box_only) None, like the original (their recall is logged by the evaluation itself).
    """
    if result is None:
        return {}
    if isinstance(result, dict) and "map" in result:  # Pascal VOC
        return {"val/bbox/mAP": float(result["map"])}
    summary = result[0] if isinstance(result, (tuple, list)) and result else result
    tasks = getattr(summary, "results", None)
    if not isinstance(tasks, dict):
        raise TypeError(f"validation: cannot read the metrics of an evaluation that returned {type(result).__name__}")
    return {f"val/{task}/{metric}": float(v) for task, metrics in tasks.items() for metric, v in metrics.items()}


class _TrainingRun:
    """The state of one training run and its named steps: forward and backward of one iteration's
    micro-batches, the optimizer step, the log line, checkpoints."""

    def __init__(
        self,
        cfg: CfgNode,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        checkpointer,
        device: torch.device,
        arguments: Dict[str, Any],
    ):
        self.model, self.optimizer, self.device, self.arguments = model, optimizer, device, arguments
        self.accumulate = max(int(cfg.SOLVER.ACCUMULATE_GRAD_ITERS), 1)
        self.clip_norm = float(cfg.SOLVER.CLIP_GRAD_NORM)
        self.log_period = max(int(cfg.SOLVER.LOG_PERIOD), 1)
        self.amp_dtype = autocast_dtype(cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        if "scaler" in arguments and self.scaler.is_enabled():
            self.scaler.load_state_dict(arguments["scaler"])
        self.writer = _MetricsWriter(cfg.OUTPUT_DIR)
        self.meters = MetricLogger(delimiter="  ", window_size=self.log_period)
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.guard = LossGuard(cfg.SOLVER.DIVERGENCE_RATIO, arguments.pop("reference_loss", None))
        self.checkpoints = ConfirmedCheckpoints(checkpointer)
        self.logger = logging.getLogger("maskrcnn_benchmark.trainer")

    def forward_backward(self, batches: Iterator, iteration: int) -> Tuple[Dict[str, float], float]:
        """Losses and gradients of the iteration's micro-batches: (mean losses, seconds spent waiting
        for data). Stops the run (NonFiniteLossError) before a diverging step is applied."""
        data_time = 0.0
        loss_sums: Dict[str, float] = {}
        for micro in range(self.accumulate):
            fetch_start = time.time()
            images, targets, _ = next(batches)
            data_time += time.time() - fetch_start
            images = images.to(self.device)
            targets = [t.to(self.device) for t in targets]
            # DDP: all-reduce the gradients once per iteration, on the last micro-batch.
            sync = micro == self.accumulate - 1 or not hasattr(self.model, "no_sync")
            with nullcontext() if sync else self.model.no_sync():
                with autocast(self.device.type, self.amp_dtype):
                    loss_dict = self.model(images, targets)
                losses = sum(loss.float() for loss in loss_dict.values())
                reduced = reduce_loss_dict(loss_dict)
                # Backward is queued before the losses are read on the host (the iteration's one
                # read of them), so the device is not left idle meanwhile; a diverging loss still
                # stops the run before the optimizer applies the step.
                self.scaler.scale(losses / self.accumulate).backward()
                values = read_losses(reduced)
                try:
                    self.guard.check(values, iteration)
                except NonFiniteLossError as e:
                    raise _stopped(e, self.checkpoints) from None
            for name, value in values.items():
                loss_sums[name] = loss_sums.get(name, 0.0) + value / self.accumulate
        return loss_sums, data_time

    def optimizer_step(self, scheduler) -> Optional[torch.Tensor]:
        """Clip (SOLVER.CLIP_GRAD_NORM), step, clear the gradients, advance the schedule; returns the
        gradient norm before clipping (None without clipping)."""
        grad_norm = None
        if self.clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # GradScaler skips the optimizer step when float16 gradients overflowed (by design); the
            # schedule still advances with the iteration, so torch's order warning does not apply.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            scheduler.step()
        return grad_norm

    def record(
        self,
        iteration: int,
        max_iter: int,
        loss_sums: Dict[str, float],
        batch_time: float,
        data_time: float,
        grad_norm: Optional[torch.Tensor],
    ) -> None:
        """Update the meters; every LOG_PERIOD iterations (and at the end) log them and write metrics."""
        meters = self.meters
        meters.update(loss=sum(loss_sums.values()), **loss_sums)
        meters.update(time=batch_time, data=data_time)
        if grad_norm is not None:
            meters.update(grad_norm=grad_norm.float())
        if iteration % self.log_period != 0 and iteration != max_iter:
            return
        eta_seconds = meters.time.global_avg * (max_iter - iteration)
        lr = self.optimizer.param_groups[0]["lr"]
        memory_mb = peak_memory_mb(self.device)
        self.logger.info(
            meters.delimiter.join(
                [
                    f"eta: {datetime.timedelta(seconds=int(eta_seconds))}",
                    f"iter: {iteration}",
                    str(meters),
                    f"lr: {lr:.6f}",
                    f"max mem: {memory_mb:.0f}",
                ]
            )
        )
        values = {name: meter.median for name, meter in meters.meters.items()}
        self.writer.write(iteration, {**values, "lr": lr, "eta_seconds": eta_seconds, "max_mem_mb": memory_mb})

    def save(self, name: str, confirmed: bool) -> None:
        """A checkpoint with everything a resumed run needs besides model, optimizer and scheduler."""
        if self.scaler.is_enabled():
            self.arguments["scaler"] = self.scaler.state_dict()
        extra = {"reference_loss": self.guard.reference} if self.guard.reference is not None else {}
        self.checkpoints.save(name, confirmed, **self.arguments, **extra, rng_states=gather_rng_states())

    def keep_last_checkpoint_if_finite(self) -> None:
        # Ctrl-C right after a save: its weights have not been checked by a loss yet, but are kept as
        # the checkpoint to resume from when finite, rather than losing a whole checkpoint period.
        if all_finite(self.params):
            self.checkpoints.confirm()

    def save_final(self, max_iter: int) -> None:
        """ "model_final"; no later loss checks the last step's weights, so finite ones are taken as healthy."""
        healthy = all_finite(self.params)
        self.save("model_final", confirmed=healthy)
        if not healthy:
            raise _stopped(
                NonFiniteLossError(f"The weights are not finite after iteration {max_iter}."), self.checkpoints
            )


def do_train(
    cfg: CfgNode,
    model: torch.nn.Module,
    data_loader,
    data_loader_val,
    optimizer: torch.optim.Optimizer,
    scheduler,
    checkpointer,
    device,
    checkpoint_period: int,
    test_period: int,
    arguments: Dict[str, Any],
) -> None:
    """Train from arguments["iteration"] to the end of data_loader (len(data_loader) batches =
    SOLVER.MAX_ITER * SOLVER.ACCUMULATE_GRAD_ITERS), saving "model_{:07d}" every checkpoint_period
    iterations and "model_final" at the end (each with arguments: iteration, GradScaler state).

    Batches are (ImageList, targets: list of BoxList, image ids). DTYPE "float16" trains under
    autocast with a GradScaler, "bfloat16" under autocast alone (CPU and GPU).
    """
    logger = logging.getLogger("maskrcnn_benchmark.trainer")
    logger.info("Start training")
    device = torch.device(device)
    run = _TrainingRun(cfg, model, optimizer, checkpointer, device, arguments)
    max_iter = len(data_loader) // run.accumulate
    start_iter = int(arguments["iteration"])
    model.train()
    # Created before the generators are restored: making a DataLoader iterator draws a seed from
    # torch's generator, which an uninterrupted run did at the start too.
    batches = iter(data_loader)
    restore_rng_state(arguments)

    start_training_time = end = time.time()
    try:
        for iteration in range(start_iter + 1, max_iter + 1):
            loss_sums, data_time = run.forward_backward(batches, iteration)
            # The weights of the last checkpoint gave healthy losses: it becomes the one to resume from.
            run.checkpoints.confirm()
            grad_norm = run.optimizer_step(scheduler)
            arguments["iteration"] = iteration

            batch_time = time.time() - end
            end = time.time()
            run.record(iteration, max_iter, loss_sums, batch_time, data_time, grad_norm)
            if checkpoint_period > 0 and iteration % checkpoint_period == 0 and iteration != max_iter:
                run.save(f"model_{iteration:07d}", confirmed=False)
            if data_loader_val is not None and test_period > 0 and iteration % test_period == 0:
                _validate(cfg, model, data_loader_val, device, iteration, logger, run.writer)
                end = time.time()  # validation time is not training time
    except KeyboardInterrupt:
        run.keep_last_checkpoint_if_finite()
        raise
    if max_iter > start_iter:
        run.save_final(max_iter)
    run.writer.close()
    total_time = time.time() - start_training_time
    done = max(max_iter - start_iter, 1)
    logger.info("Total training time: %s (%.4f s / it)", datetime.timedelta(seconds=int(total_time)), total_time / done)


def _stopped(error: NonFiniteLossError, checkpoints: ConfirmedCheckpoints) -> NonFiniteLossError:
    """The error that stops a diverging run, saying what a rerun of the same command does."""
    resume_from = checkpoints.discard()
    where = (
        f"it resumes from {resume_from}, the last checkpoint whose weights still gave healthy losses"
        if resume_from
        else "no checkpoint had proved healthy yet, so it starts from the beginning"
    )
    return NonFiniteLossError(
        f"{error} Training stopped before this step was applied. Lower SOLVER.BASE_LR (or lengthen "
        f"SOLVER.WARMUP_ITERS, set SOLVER.CLIP_GRAD_NORM, check the annotations of this batch) and run the "
        f"same command again: {where}, with the new settings."
    )


__all__: List[str] = ["do_train", "reduce_loss_dict", "autocast_dtype", "NonFiniteLossError"]
