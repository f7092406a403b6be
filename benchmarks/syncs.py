"""Device->host synchronisation points of a training iteration and of inference, ours against
torchvision's Mask R-CNN on the same synthetic batch, in one run.

    python benchmarks/syncs.py [--model small|r50] [--images 4]

A GPU step is bound by kernel launches and host synchronisations more than by arithmetic, and every
synchronisation stalls the device's queue. On the CPU the points where a GPU run would synchronise are
counted from the profiler: the ops that read a device value on the host (aten::_local_scalar_dense:
.item(), float(), bool() of a tensor), those whose output size depends on the data (aten::nonzero,
aten::_unique2, aten::masked_select, and our NMS ops), and the library's deliberate reads of values
(`maskrcnn_benchmark.modeling.utils.host_values`, marked "maskrcnn_benchmark::host_read"; a
`.tolist()` or `.cpu()` of a CPU tensor is invisible to the profiler, hence the mark). torchvision
has no such mark: its `.tolist()` reads (a few per iteration) are not in its count, which is
therefore a lower bound. "ops" counts every leaf op (about one kernel launch each on a GPU).
With --device cuda the count is the device's own: torch.cuda.set_sync_debug_mode("warn") reports
every synchronisation, of every kind, and the warnings are counted.

The models are those of benchmarks/train.py ("small": the make-demo R-18-FPN against the same
architecture from torchvision's parts; "r50": R-50-FPN against torchvision's maskrcnn_resnet50_fpn).
Training: one forward + backward + SGD step; inference: one forward per image, per image.
"""

import argparse
import os
import sys
import warnings
from collections import Counter
from typing import Callable, Dict

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from maskrcnn_benchmark.modeling.utils import HOST_READ  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as bench  # noqa: E402  (benchmarks/train.py: models, synthetic batch, training step)

SYNC_OPS = (
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::_unique2",
    "aten::masked_select",
    "maskrcnn_benchmark::nms",
    "maskrcnn_benchmark::batched_nms",
    HOST_READ,
)


def count_ops(run: Callable[[], None]) -> Dict[str, int]:
    """Counts of one call of `run` (after a warm-up call): each sync op, their sum "syncs", and "ops",
    the leaf ops."""
    run()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    events = list(prof.events())
    leaves = Counter(e.name for e in events if not e.cpu_children)
    # The sync ops by name wherever they occur (nonzero allocates its output inside, so it is no leaf).
    named = Counter(e.name for e in events if e.name in SYNC_OPS)
    counts = {name: named.get(name, 0) for name in SYNC_OPS}
    counts["syncs"] = sum(counts.values())
    counts["ops"] = sum(leaves.values())
    return counts


def count_device_syncs(run: Callable[[], None]) -> Dict[str, int]:
    """On a GPU: the synchronisations torch.cuda.set_sync_debug_mode reports in one call of `run`
    (after a warm-up call), as "syncs"; "ops" is not counted there (-1)."""
    run()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {**{name: 0 for name in SYNC_OPS}, "syncs": syncs, "ops": -1}


def _inference(model: torch.nn.Module, inputs) -> Callable[[], None]:
    def run():
        model.eval()
        with torch.no_grad():
            model(inputs)
        model.train()  # the same model also serves the training count

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", choices=list(bench.MODELS))
    parser.add_argument("--images", type=int, default=0, help="training batch size (0: the benchmark's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cuda: count with torch.cuda.set_sync_debug_mode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config, batch_size = bench.MODELS[args.model]
    batch_size = args.images or batch_size
    c = bench.global_cfg.clone()
    c.merge_from_file(os.path.join(bench.REPO, config))
    batch = bench.synthetic_batch(batch_size, c.INPUT.MIN_SIZE_TRAIN[0])

    ours_step, ours_model, ours_images = bench.ours(config, batch, "float32", return_parts=True, device=args.device)
    tv_step, tv_model, tv_images = bench.theirs(
        args.model, config, batch, "float32", return_parts=True, device=args.device
    )
    count = count_device_syncs if args.device.startswith("cuda") else count_ops
    runs = {
        "training iteration": (ours_step, tv_step),
        "inference, per image": (_inference(ours_model, ours_images), _inference(tv_model, tv_images)),
    }
    print(f"{args.model}: batch of {batch_size} synthetic images, float32, {args.device}")
    print(f"{'':<22} {'':<12} " + " ".join(f"{n.split('::')[1]:>18}" for n in SYNC_OPS) + f" {'syncs':>7} {'ops':>7}")
    for what, (ours_run, tv_run) in runs.items():
        per = batch_size if what.startswith("inference") else 1
        results = {}
        for name, run in (("ours", ours_run), ("torchvision", tv_run)):
            counts = count(run)
            results[name] = counts
            print(
                f"{what:<22} {name:<12} "
                + " ".join(f"{counts[n] / per:18.1f}" for n in SYNC_OPS)
                + f" {counts['syncs'] / per:7.1f} {counts['ops'] / per:7.1f}"
            )
        ratio = results["ours"]["syncs"] / max(results["torchvision"]["syncs"], 1)
        print(f"{what:<22} ours / torchvision syncs: {ratio:.2f}")


if __name__ == "__main__":
    main()
