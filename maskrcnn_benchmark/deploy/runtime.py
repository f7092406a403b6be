"""Load and run an exported detector (ONNX file or AOTInductor package) like the Predictor.

    detector = load_onnx("model.onnx", score_threshold=0.5)   # or load_pt2("model.pt2")
    result = detector(cv2.imread("image.jpg"))                # one image -> one BoxList
    results = detector([image_a, image_b])                    # a list -> a list, batched
    result = run_onnx("model.onnx", image)                    # load + run once

Results are what engine/predictor.py's Predictor returns for the same model and images: BoxLists on
the CPU in each original image's size, xyxy, sorted by decreasing score, with "scores", "labels" and,
as the model predicts them, "mask" (pasted at image size) and "keypoints" (PersonKeypoints with
"logits"). The config stored in the file gives the pre-processing (deploy/inputs.py).

The pt2 package calls two of this library's compiled ops (NMS and ROIAlign); `load_pt2` registers
them by loading `ops_library_path()` with torch.ops.load_library. Outside this library, do the same
with a copy of that shared object (docs/DEPLOY.md#the-pt2-package).
"""

import glob
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..config import CfgNode
from ..config import cfg as default_cfg
from ..data.transforms import build_transforms
from ..engine.predictor_inputs import check_image
from ..modeling.roi_heads.mask_head.inference import Masker
from ..structures.bounding_box import BoxList
from . import inputs, outputs

Runner = Callable[[torch.Tensor, torch.Tensor], Dict[str, torch.Tensor]]
_KEY = "maskrcnn_benchmark."


def ops_library_path() -> str:
    """Path of the shared object holding this library's compiled ops (maskrcnn_benchmark/_C*.so)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    found = sorted(glob.glob(os.path.join(package, "_C*.so")) + glob.glob(os.path.join(package, "_C*.pyd")))
    if not found:
        raise FileNotFoundError(f"no compiled ops library (_C*.so) in {package}: build it first (make build)")
    return found[0]


class ExportedDetector:
    """An exported graph plus the Predictor's pre- and post-processing (see the module docstring).

    Arguments:
        metadata: the file's metadata (export.metadata): config, image size, output names.
        run: (images [B, 3, H, W] float32, image_sizes [B, 2] int64) -> {output name: tensor}.
        score_threshold, mask_threshold: as the Predictor's.
        batch_size: images per run of the graph; None uses the config's TEST.IMS_PER_BATCH.
    """

    def __init__(
        self,
        metadata: Dict[str, str],
        run: Runner,
        score_threshold: float = 0.0,
        mask_threshold: float = 0.5,
        batch_size: Optional[int] = None,
    ):
        if metadata.get(_KEY + "format_version") != "1":
            raise ValueError("not a file exported by maskrcnn_benchmark (tools/export_model.py): no metadata")
        self.metadata = metadata
        self.cfg: CfgNode = default_cfg.clone()
        self.cfg.merge_from_other_cfg(CfgNode.load_cfg(metadata[_KEY + "config"]))
        size = metadata[_KEY + "image_size"]
        self.fixed_size: Optional[Tuple[int, int]] = None if size == "dynamic" else tuple(map(int, size.split("x")))
        self.min_side = int(metadata[_KEY + "min_image_side"])
        self.output_names: List[str] = json.loads(metadata[_KEY + "outputs"])
        self.run = run
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size or max(self.cfg.TEST.IMS_PER_BATCH, 1))
        self.transform = build_transforms(self.cfg, is_train=False)
        self.masker = Masker(threshold=mask_threshold, padding=1)

    def __call__(self, images: Union[Any, Sequence[Any]]) -> Union[BoxList, List[BoxList]]:
        """One image -> one BoxList; a list or tuple -> a list. As the Predictor, images share a run
        only with images of the same padded size (padding changes the features near the borders)."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        names = ["image"] if single else [f"image {i}" for i in range(len(batch))]
        for image, name in zip(batch, names):
            check_image(image, name)
        prepared = [inputs.preprocess(self.transform, image, name) for image, name in zip(batch, names)]
        divisor = self.cfg.DATALOADER.SIZE_DIVISIBILITY
        groups: Dict[Tuple[int, int], List[int]] = {}
        for index, (tensor, _) in enumerate(prepared):
            key = self.fixed_size or inputs.padded_size(tensor.shape[1], tensor.shape[2], divisor)
            groups.setdefault(key, []).append(index)
        results: List[Optional[BoxList]] = [None] * len(batch)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, result in zip(chunk, self._predict([prepared[i] for i in chunk])):
                    results[index] = result
        return results[0] if single else results

    def _predict(self, prepared: List[Tuple[torch.Tensor, Tuple[int, int]]]) -> List[BoxList]:
        images, image_sizes = inputs.batch(
            [p[0] for p in prepared], self.cfg.DATALOADER.SIZE_DIVISIBILITY, self.fixed_size
        )
        if self.fixed_size is None and min(images.shape[-2:]) < self.min_side:
            raise ValueError(
                f"padded input {tuple(images.shape[-2:])} is smaller than the exported graph accepts "
                f"({self.min_side} pixels per side: every feature map must be at least 2 x 2)"
            )
        raw = self.run(images, image_sizes)
        predictions = outputs.to_boxlists(raw, [tuple(s) for s in image_sizes.tolist()])
        return [
            outputs.finalize(p, original_size, self.cfg, self.score_threshold, self.masker)
            for p, (_, original_size) in zip(predictions, prepared)
        ]


def load_onnx(path: str, threads: Optional[int] = None, **kwargs: Any) -> ExportedDetector:
    """An ExportedDetector running the ONNX file `path` with onnxruntime (CPU); `threads` sets its
    intra-op threads (default: onnxruntime's). kwargs: ExportedDetector's."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(images: torch.Tensor, image_sizes: torch.Tensor) -> Dict[str, torch.Tensor]:
        values = session.run(None, {"images": images.numpy(), "image_sizes": image_sizes.numpy()})
        return {name: torch.from_numpy(value) for name, value in zip(names, values)}

    return ExportedDetector(dict(session.get_modelmeta().custom_metadata_map), run, **kwargs)


def load_pt2(path: str, **kwargs: Any) -> ExportedDetector:
    """An ExportedDetector running the AOTInductor package `path` (CPU). kwargs: ExportedDetector's."""
    torch.ops.load_library(ops_library_path())  # the NMS and ROIAlign ops the package calls
    compiled = torch._inductor.aoti_load_package(path)
    metadata = dict(compiled.get_metadata())
    names = json.loads(metadata[_KEY + "outputs"])

    def run(images: torch.Tensor, image_sizes: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(zip(names, compiled(images, image_sizes)))

    return ExportedDetector(metadata, run, **kwargs)


def run_onnx(path: str, images: Any, **kwargs: Any) -> Union[BoxList, List[BoxList]]:
    """load_onnx(path, **kwargs)(images)."""
    return load_onnx(path, **kwargs)(images)


def run_pt2(path: str, images: Any, **kwargs: Any) -> Union[BoxList, List[BoxList]]:
    """load_pt2(path, **kwargs)(images)."""
    return load_pt2(path, **kwargs)(images)
