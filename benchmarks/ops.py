"""Time every compiled op against torchvision.ops on identical inputs, in one run.

    python benchmarks/ops.py [--threads N]

Prints seconds per call for ours and torchvision's and the ratio torchvision / ours (> 1 means we
are faster). The individual groups live in ops_roi.py (ROIAlign, ROIPool) and ops_nms.py (NMS,
batched NMS, sigmoid focal loss); each can also be run on its own.
"""

import argparse
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ops_nms  # noqa: E402
import ops_roi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    rows = ops_roi.run(args.threads) + ops_nms.run(args.threads)
    width = max(len(r["name"]) for r in rows)
    print(f"{'op':<{width}}  {'ours (s)':>10}  {'torchvision (s)':>15}  {'speed-up':>8}")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['ours_s']:>10.4f}  {r['torchvision_s']:>15.4f}  {r['ratio']:>7.2f}x")


if __name__ == "__main__":
    main()
