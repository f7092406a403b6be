"""DistributedDataParallel settings (SOLVER.DDP) timed on the make-demo model, several processes on one machine.

    python benchmarks/ddp.py                       # 2 CPU processes (gloo), the variants below
    python benchmarks/ddp.py --device cuda --nproc 2 --images-per-process 2   # GPUs (NCCL), one per process

Variants (engine/distributed_model.wrap_distributed with these SOLVER.DDP overrides):
  plain        the old settings: separate gradient tensors, no static graph
  bucket_view  GRADIENT_AS_BUCKET_VIEW: gradients are views into the all-reduce buckets
  static_graph bucket view + STATIC_GRAPH (the defaults)
  fp16         the defaults + GRADIENT_COMPRESSION fp16 (buckets all-reduced in 16 bits)
  bf16         the defaults + GRADIENT_COMPRESSION bf16 (not run unless asked: --variants ... bf16)

Model: configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml (in float32 unless --dtype), random weights; each
process trains on its own synthetic images (benchmarks/train.py's generator and inputs) with the
trainer's step (forward, zero_grad(set_to_none=True), backward, SGD step). All variants are built
from the same seed and kept alive; after --warmup steps each (a static graph learns in the first,
DDP rebuilds its buckets after it), their timed steps are interleaved round by round, so drifts of
the machine hit every variant alike. An iteration's time is the slowest process's. Prints the median
and minimum seconds per iteration and their ratios to plain (< 1: faster).
"""

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCHMARKS)
sys.path.insert(1, os.path.join(os.path.dirname(BENCHMARKS), "tools"))
import train  # noqa: E402  (benchmarks/train.py: synthetic images, inputs, config, training step)
from tiny_training import free_port  # noqa: E402  (tools/tiny_training.py)

from maskrcnn_benchmark.engine.distributed_model import wrap_distributed  # noqa: E402
from maskrcnn_benchmark.modeling.detector import build_detection_model  # noqa: E402

CONFIG = "configs/cpu/e2e_mask_rcnn_R_18_FPN_cpu.yaml"
VARIANTS: Dict[str, List[str]] = {
    "plain": ["SOLVER.DDP.GRADIENT_AS_BUCKET_VIEW", "False", "SOLVER.DDP.STATIC_GRAPH", "False"],
    "bucket_view": ["SOLVER.DDP.STATIC_GRAPH", "False"],
    "static_graph": [],
    "fp16": ["SOLVER.DDP.GRADIENT_COMPRESSION", "fp16"],
    "bf16": ["SOLVER.DDP.GRADIENT_COMPRESSION", "bf16"],
}


def _worker(rank: int, args: argparse.Namespace, port: int, threads: int) -> None:
    """One process: every variant's model, warm-up, interleaved timed steps; rank 0 prints."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    torch.set_num_threads(threads)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=args.nproc)
    device = f"cuda:{rank}" if cuda else "cpu"
    config = train.load_config(CONFIG, device=device)
    dtype = args.dtype
    # Every process draws the whole set and keeps its own images, as a distributed sampler would.
    per_process = args.images_per_process
    batch = train.synthetic_batch(per_process * args.nproc, config.INPUT.MIN_SIZE_TRAIN[0])
    images, targets = train.our_inputs(config, batch[rank * per_process : (rank + 1) * per_process], device)

    steps = {}
    for name in args.variants:
        cfg = train.load_config(CONFIG, VARIANTS[name], device=device)
        torch.manual_seed(0)
        model = build_detection_model(cfg).to(device).train()
        steps[name] = train.training_step(
            wrap_distributed(model, cfg, rank), images, targets, dtype, torch.device(device).type
        )

    def timed(step) -> float:
        dist.barrier()  # every process starts the step together: the time is the step's, not a wait for stragglers
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest process sets the pace
        return float(elapsed)

    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            times[name].append(timed(step))
    if rank == 0:
        _report(args, dtype, threads, times)
    dist.destroy_process_group()


def _report(args: argparse.Namespace, dtype: str, threads: int, times: Dict[str, List[float]]) -> None:
    where = (
        torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"{platform.processor() or platform.machine()}, {threads} thread(s) per process"
    )
    print(
        f"torch {torch.__version__}, {args.nproc} processes ({'nccl' if args.device == 'cuda' else 'gloo'}), "
        f"{where}, {args.images_per_process} images per process, {dtype}, median of {args.repeats} "
        f"after {args.warmup} warm-up steps"
    )
    # The minimum too: on a machine shared with other work it is the steadier estimate of a step's own cost.
    plain = times.get("plain")
    for name, values in times.items():
        median, fastest = statistics.median(values), min(values)
        ratios = (
            f"  /plain: median {median / statistics.median(plain):5.3f}, min {fastest / min(plain):5.3f}"
            if plain
            else ""
        )
        print(f"  {name:<13} median {median:7.3f} s/it  min {fastest:7.3f}  max {max(values):7.3f}{ratios}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--nproc", type=int, default=2, help="processes (one GPU each with --device cuda)")
    parser.add_argument("--images-per-process", type=int, default=2, help="the config's 4 images over 2 processes")
    # float32 by default: the config's bfloat16 autocast is several times slower than float32 on CPUs
    # without native bfloat16, which would bury the communication differences measured here.
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="autocast dtype, as the config's DTYPE (default float32)",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=["plain", "bucket_view", "static_graph", "fp16"]
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: cores / nproc)")
    args = parser.parse_args(argv)
    if args.nproc < 2:
        parser.error("--nproc must be >= 2: with one process DDP has nothing to all-reduce")
    if args.device == "cuda" and torch.cuda.device_count() < args.nproc:
        parser.error(
            f"--device cuda needs one GPU per process: {torch.cuda.device_count()} GPU(s) for --nproc {args.nproc}"
        )
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.nproc)
    mp.spawn(_worker, args=(args, free_port(), threads), nprocs=args.nproc)


if __name__ == "__main__":
    main()
