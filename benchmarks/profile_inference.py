"""Profile one Mask R-CNN R-50-FPN inference (ours, or torchvision's with --torchvision) with torch.profiler.

    python benchmarks/profile_inference.py [--device cuda] [--torchvision] [--rows 30]

Same model settings and image as benchmarks/inference.py. Prints the ops with the most self time on
the device (CUDA) or the CPU, and how many host-device synchronisations the run made.
"""

import argparse
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--torchvision", action="store_true")
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    build = inference._build_torchvision if args.torchvision else inference._build_ours
    _, run = build(args.device)
    image = inference._image().to(args.device)
    cuda = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.inference_mode():
        for _ in range(3):
            run(image)  # warm-up (cuDNN algorithm choice, allocator)
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            run(image)
            if cuda:
                torch.cuda.synchronize()
    events = prof.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=args.rows, max_name_column_width=60))
    if cuda:
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=60))
        syncs = sum(
            e.count for e in events if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpyAsync")
        )
        print(f"synchronising calls (cudaStreamSynchronize/cudaDeviceSynchronize/cudaMemcpyAsync): {syncs}")


if __name__ == "__main__":
    main()
