"""A tiny COCO-format dataset and tiny tools/train_net.py runs (one process, torchrun, two launchers
acting as two nodes), shared by tools/fault_injection.py and the end-to-end tests."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from PIL import Image, ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")

# Deterministic tiny training: every anchor and proposal is sampled (no random subsets), per-image
# proposal top-N, no flips, one data process, float32 (the config's bfloat16 is emulated, several
# times slower, on CPUs without AVX512-BF16).
TINY = [
    "DTYPE",
    "float32",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "100000",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "100000",
    "MODEL.RPN.FPN_POST_NMS_PER_BATCH",
    "False",
    "MODEL.RPN.PRE_NMS_TOP_N_TRAIN",
    "100",
    "MODEL.RPN.POST_NMS_TOP_N_TRAIN",
    "50",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN",
    "50",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    "100",
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    "50",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    "50",
    "INPUT.MIN_SIZE_TRAIN",
    "(96,)",
    "INPUT.MAX_SIZE_TRAIN",
    "128",
    "INPUT.MIN_SIZE_TEST",
    "96",
    "INPUT.MAX_SIZE_TEST",
    "128",
    "INPUT.HORIZONTAL_FLIP_PROB_TRAIN",
    "0.0",
    "DATALOADER.NUM_WORKERS",
    "0",
    "SOLVER.LOG_PERIOD",
    "1",
    "SOLVER.WARMUP_ITERS",
    "0",
    "SOLVER.BASE_LR",
    "0.01",
    "DATASETS.TRAIN",
    "('tiny',)",
    "DATASETS.TEST",
    "('tiny',)",
    "MODEL.ROI_BOX_HEAD.NUM_CLASSES",
    "3",
    "TEST.IMS_PER_BATCH",
    "2",
]


def write_dataset(folder: Path, num_images: int, identical: bool = False) -> List[List[str]]:
    """A COCO-format dataset of 96x128 images with 2-3 coloured rectangles each (exact polygons);
    returns its DATASETS.REGISTER_COCO value (name "tiny")."""
    folder = Path(folder)
    os.makedirs(folder / "images", exist_ok=True)
    g = torch.Generator().manual_seed(0)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        if identical:
            g.manual_seed(0)
        image = Image.new("RGB", (128, 96), tuple(torch.randint(0, 80, (3,), generator=g).tolist()))
        draw = ImageDraw.Draw(image)
        for k in range(2 + int(torch.randint(0, 2, (1,), generator=g))):
            x, y = torch.randint(0, 80, (1,), generator=g).item(), torch.randint(0, 50, (1,), generator=g).item()
            w, h = torch.randint(16, 40, (2,), generator=g).tolist()
            draw.rectangle(
                [x, y, x + w - 1, y + h - 1], fill=tuple(torch.randint(120, 255, (3,), generator=g).tolist())
            )
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1 + 2 * (k % 2),
                    "iscrowd": 0,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                }
            )
        name = f"{image_id:04d}.png"
        image.save(folder / "images" / name)
        images.append({"id": image_id, "file_name": name, "width": 128, "height": 96})
    categories = [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}]
    with open(folder / "ann.json", "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return [["tiny", str(folder / "images"), str(folder / "ann.json")]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a run: one thread per process, unbuffered output, no inherited rank, and
    this checkout importable (also without `pip install -e .`)."""
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": path, **(extra or {})}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def launcher(
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    port: Optional[int] = None,
    script: str = "tools/train_net.py",
) -> List[str]:
    """The command that starts `script` (tools/train_net.py): python for one process, else torchrun
    with `nproc` processes on this node, one of `nnodes` meeting at 127.0.0.1:`port` (c10d rendezvous)."""
    if nproc == 1 and nnodes == 1:
        return [sys.executable, script]
    port = port or free_port()
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if nnodes == 1:
        command.append(f"--master_port={port}")
    else:
        # Every launcher here runs on the rendezvous host: node 0 serves the rendezvous store, node 1
        # only connects (each would otherwise try to serve it first).
        command += [
            f"--nnodes={nnodes}",
            f"--node_rank={node_rank}",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{port}",
            "--rdzv_id=tiny",
            f"--rdzv_conf=is_host={int(node_rank == 0)}",
        ]
    return command + [script]


def train_args(output_dir: Path, register: List[List[str]], opts: Sequence = (), skip_test: bool = True) -> List[str]:
    """train_net.py's arguments: the CPU Mask R-CNN config, TINY, the dataset and OUTPUT_DIR, then `opts`."""
    overrides = TINY + ["OUTPUT_DIR", str(output_dir), "DATASETS.REGISTER_COCO", repr(register), *map(str, opts)]
    return ["--config-file", CONFIG, *(["--skip-test"] if skip_test else []), *overrides]


def run(command: List[str], timeout: float = 600, env: Optional[Dict[str, str]] = None) -> str:
    """Run to the end in the repository; its output, or AssertionError with the output's tail."""
    proc = subprocess.run(command, cwd=REPO, env=env or run_env(), capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{output[-4000:]}"
    return output


def metrics(output_dir: Path) -> List[dict]:
    """metrics.json's lines; where a resumed run wrote an iteration again, its last line."""
    with open(Path(output_dir) / "metrics.json") as f:
        lines = [json.loads(line) for line in f]
    last = {m["iteration"]: m for m in lines if "loss" in m}
    return [last[i] for i in sorted(last)]


def weights(output_dir: Path, name: str = "model_final.pth") -> Dict[str, torch.Tensor]:
    return torch.load(Path(output_dir) / name, weights_only=True, map_location="cpu")["model"]


def weight_differences(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the tensors that are not bit-identical (or missing on one side)."""
    return [k for k in sorted(set(a) | set(b)) if k not in a or k not in b or not torch.equal(a[k], b[k])]
