r"""Write one of the embedded synthetic COCO-format datasets to disk.

    python tools/make_synthetic_dataset.py --kind shapes --output datasets/synthetic_shapes
    python tools/make_synthetic_dataset.py --kind persons --output datasets/synthetic_persons --train 1000 --val 200

The same arguments always give byte-identical files. Training on the catalog names
(synthetic_shapes_train, ...) generates the default datasets on first use, so this is only needed
for other sizes, seeds or folders (register those with DATASETS.REGISTER_COCO).
"""

import argparse
import json
import os
import time

from maskrcnn_benchmark.data.datasets.synthetic import generate_synthetic_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("shapes", "persons"), default="shapes")
    parser.add_argument("--output", default=None, help="dataset folder (default: datasets/synthetic_<kind>)")
    parser.add_argument("--train", type=int, default=1000, help="number of training images")
    parser.add_argument("--val", type=int, default=200, help="number of validation images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=320)
    args = parser.parse_args()

    output = args.output or os.path.join("datasets", f"synthetic_{args.kind}")
    splits = {name: count for name, count in (("train", args.train), ("val", args.val)) if count > 0}
    if not splits:
        parser.error("nothing to generate: --train and --val are both 0")
    start = time.perf_counter()
    written = generate_synthetic_dataset(
        output, kind=args.kind, splits=splits, seed=args.seed, image_size=(args.height, args.width)
    )
    elapsed = time.perf_counter() - start
    total = 0
    for split, (images, ann_file) in written.items():
        with open(ann_file) as f:
            data = json.load(f)
        total += len(data["images"])
        print(
            f"{split}: {len(data['images'])} images in {images}, {len(data['annotations'])} annotations in {ann_file}"
        )
    print(
        f"Wrote the synthetic {args.kind} dataset ({total} images of {args.height}x{args.width}, "
        f"seed {args.seed}) to {os.path.abspath(output)} in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
