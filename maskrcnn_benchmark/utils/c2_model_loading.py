"""Load Caffe2/Detectron `.pkl` weights (ImageNet-pretrained bodies and Detectron models).

The file is read with a restricted unpickler that only builds numpy arrays and plain containers:
a malicious pickle cannot run code. Blob names are renamed to this library's module names with the
rules of the original maskrcnn-benchmark; the results are key suffixes, matched to the model by
`model_serialization.load_state_dict` (with the same coverage requirement as .pth files). Every
AffineChannel (scale and bias) also gets the running_mean = 0 / running_var = 1 of the
FrozenBatchNorm2d it becomes, so a complete Detectron model covers the whole model.
A file that cannot be read raises CheckpointFileError naming it (weights_file.py).
"""

import codecs
import logging
import pickle
from collections import OrderedDict
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..config import CfgNode
from .registry import Registry
from .weights_file import (
    CheckpointFileError,
    UnsafeCheckpointError,
    check_weights_file,
    is_torch_zip,
    unreadable_weights_file,
)

logger = logging.getLogger(__name__)


class UnsafePickleError(UnsafeCheckpointError):
    """The pickle asked for something other than numpy arrays and plain containers."""


def _numpy_core(name: str):
    try:
        return getattr(np._core.multiarray, name)  # numpy >= 2
    except AttributeError:
        return getattr(np.core.multiarray, name)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_core("_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_core("_reconstruct"),
        ("numpy.core.multiarray", "scalar"): lambda: _numpy_core("scalar"),
        ("numpy._core.multiarray", "scalar"): lambda: _numpy_core("scalar"),
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("collections", "OrderedDict"): lambda: OrderedDict,
        # Protocol-2 pickles written by Python 3 store bytes as codecs.encode(str, "latin1").
        ("_codecs", "encode"): lambda: codecs.encode,
    }

    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str):
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise UnsafePickleError(
                f"{self.source}: refusing to load {module}.{name} from a weights pickle (only numpy arrays "
                "and plain containers are allowed)"
            )
        return factory()


def load_c2_pickle(path: str) -> Dict[str, np.ndarray]:
    """{blob name: numpy array} of a Detectron .pkl (its "blobs" entry if present)."""
    check_weights_file(path)
    try:
        with open(path, "rb") as f:
            data = _ArraysOnlyUnpickler(f, path).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # the unpickler raises about anything on garbage
        if is_torch_zip(path):
            raise CheckpointFileError(
                f"{path} is a PyTorch checkpoint (written by torch.save), not a Caffe2/Detectron pickle: name it *.pth"
            ) from e
        raise unreadable_weights_file(path, e, kind="Caffe2/Detectron weights pickle") from e
    if isinstance(data, dict) and "blobs" in data:
        data = data["blobs"]
    if not isinstance(data, dict):
        raise CheckpointFileError(f"{path}: expected a dict of blobs, got {type(data).__name__}")
    for name, value in data.items():
        if not isinstance(name, str):
            raise CheckpointFileError(f"{path}: blob name {name!r} is not a string")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = f"array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise CheckpointFileError(f"{path}: blob {name!r} is not a numeric array ({kind})")
    return data


# Plain substring replacements, applied in order to every blob name (the original's rules).
_BASIC_RENAMES = [
    ("_", "."),
    (".w", ".weight"),
    (".bn", "_bn"),
    (".b", ".bias"),
    ("_bn.s", "_bn.scale"),
    (".biasranch", ".branch"),
    ("bbox.pred", "bbox_pred"),
    ("cls.score", "cls_score"),
    ("res.conv1_", "conv1_"),
    # RPN / Faster R-CNN
    (".biasbox", ".bbox"),
    ("conv.rpn", "rpn.conv"),
    ("rpn.bbox.pred", "rpn.bbox_pred"),
    ("rpn.cls.logits", "rpn.cls_logits"),
    # AffineChannel -> FrozenBatchNorm2d, torchvision-style names
    ("_bn.scale", "_bn.weight"),
    ("conv1_bn.", "bn1."),
    ("res2.", "layer1."),
    ("res3.", "layer2."),
    ("res4.", "layer3."),
    ("res5.", "layer4."),
    (".branch2a.", ".conv1."),
    (".branch2a_bn.", ".bn1."),
    (".branch2b.", ".conv2."),
    (".branch2b_bn.", ".bn2."),
    (".branch2c.", ".conv3."),
    (".branch2c_bn.", ".bn3."),
    (".branch1.", ".downsample.0."),
    (".branch1_bn.", ".downsample.1."),
    # GroupNorm
    ("conv1.gn.s", "bn1.weight"),
    ("conv1.gn.bias", "bn1.bias"),
    ("conv2.gn.s", "bn2.weight"),
    ("conv2.gn.bias", "bn2.bias"),
    ("conv3.gn.s", "bn3.weight"),
    ("conv3.gn.bias", "bn3.bias"),
    ("downsample.0.gn.s", "downsample.1.weight"),
    ("downsample.0.gn.bias", "downsample.1.bias"),
]
_HEAD_RENAMES = [
    # Mask R-CNN
    ("mask.fcn.logits", "mask_fcn_logits"),
    (".[mask].fcn", "mask_fcn"),
    ("conv5.mask", "conv5_mask"),
    # Keypoint R-CNN
    ("kps.score.lowres", "kps_score_lowres"),
    ("kps.score", "kps_score"),
    ("conv.fcn", "conv_fcn"),
    # our RPN module nests the head
    ("rpn.", "rpn.head."),
]
# Name of the last block of res2..res5 per depth ("<stage>.<last block index>").
C2_STAGE_NAMES = {
    "R-50": ["1.2", "2.3", "3.5", "4.2"],
    "R-101": ["1.2", "2.3", "3.22", "4.2"],
    "R-152": ["1.2", "2.7", "3.35", "4.2"],
}


def _apply(names: List[str], renames) -> List[str]:
    for old, new in renames:
        names = [name.replace(old, new) for name in names]
    return names


def _fpn_renames(stage_names: Sequence[str]):
    renames = []
    for idx, stage in enumerate(stage_names, 1):
        lateral = ".lateral" if idx < 4 else ""
        renames.append((f"fpn.inner.layer{stage}.sum{lateral}", f"fpn_inner{idx}"))
        renames.append((f"fpn.layer{stage}.sum", f"fpn_layer{idx}"))
    renames += [
        ("rpn.conv.fpn2", "rpn.conv"),
        ("rpn.bbox_pred.fpn2", "rpn.bbox_pred"),
        ("rpn.cls_logits.fpn2", "rpn.cls_logits"),
    ]
    return renames


def rename_c2_blob_names(names: Sequence[str], stage_names: Sequence[str]) -> List[str]:
    """This library's key suffixes for Detectron blob names (same order as `names`)."""
    renamed = ["fc1000_b" if n == "pred_b" else "fc1000_w" if n == "pred_w" else n for n in names]
    renamed = _apply(renamed, _BASIC_RENAMES)
    renamed = _apply(renamed, _fpn_renames(stage_names))
    return _apply(renamed, _HEAD_RENAMES)


def _stage_names_for(conv_body: str) -> List[str]:
    depth = conv_body.split("-C")[0].split("-FPN")[0]  # "R-50-FPN-RETINANET" -> "R-50"
    if depth not in C2_STAGE_NAMES:
        raise KeyError(
            f"No Caffe2 weight conversion for MODEL.BACKBONE.CONV_BODY {conv_body!r}; "
            f"supported depths: {sorted(C2_STAGE_NAMES)}"
        )
    return C2_STAGE_NAMES[depth]


# Loaders by MODEL.BACKBONE.CONV_BODY, the original's extension point: a body registered here gets
# its own loader; the others (the original registered the ResNet bodies) get load_resnet_c2_format.
C2_FORMAT_LOADER = Registry()


def load_c2_format(cfg: CfgNode, f: str) -> Dict[str, "OrderedDict[str, torch.Tensor]"]:
    """{"model": state_dict} of the Detectron .pkl `f`, by the loader of cfg.MODEL.BACKBONE.CONV_BODY."""
    conv_body = cfg.MODEL.BACKBONE.CONV_BODY
    loader = C2_FORMAT_LOADER[conv_body] if conv_body in C2_FORMAT_LOADER else load_resnet_c2_format
    return loader(cfg, f)


def load_resnet_c2_format(cfg: CfgNode, f: str) -> Dict[str, "OrderedDict[str, torch.Tensor]"]:
    """{"model": renamed state_dict} of the Detectron .pkl `f` for the ResNet body of
    cfg.MODEL.BACKBONE.CONV_BODY."""
    blobs = load_c2_pickle(f)
    names = sorted(blobs.keys())
    renamed = rename_c2_blob_names(names, _stage_names_for(cfg.MODEL.BACKBONE.CONV_BODY))
    state_dict = OrderedDict()
    for old, new in zip(names, renamed):
        if "_momentum" in old:
            continue
        state_dict[new] = torch.from_numpy(np.ascontiguousarray(blobs[old]))
        if old.endswith("_bn_s") and new.endswith(".weight"):
            # AffineChannel == FrozenBatchNorm2d with these statistics (their initial values).
            stem = new[: -len("weight")]
            state_dict.setdefault(stem + "running_mean", torch.zeros_like(state_dict[new]))
            state_dict.setdefault(stem + "running_var", torch.ones_like(state_dict[new]))
    return {"model": _move_conv2_into_deformable_convs(state_dict, cfg.MODEL.RESNETS.STAGE_WITH_DCN)}


def _move_conv2_into_deformable_convs(state_dict: "OrderedDict[str, torch.Tensor]", stage_with_dcn) -> "OrderedDict":
    """In stages with deformable convolutions (STAGE_WITH_DCN, res2..res5 = layer1..layer4) the
    blocks' 3x3 conv is `conv2.conv` next to its offset predictor `conv2.offset`: an ImageNet
    model's plain `conv2.weight` / `conv2.bias` initialise the former (the offsets keep their own
    initialisation, as in the original)."""
    layers = tuple(f"layer{i + 1}." for i, dcn in enumerate(stage_with_dcn) if dcn)
    if not layers:
        return state_dict
    renamed = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(layers) and (key.endswith(".conv2.weight") or key.endswith(".conv2.bias")):
            stem, param = key.rsplit(".", 1)
            key = f"{stem}.conv.{param}"
        renamed[key] = value
    return renamed


for _conv_body in (
    "R-50-C4", "R-50-C5", "R-101-C4", "R-101-C5", "R-50-FPN", "R-50-FPN-RETINANET", "R-101-FPN",
    "R-101-FPN-RETINANET", "R-152-FPN",
):  # fmt: skip
    C2_FORMAT_LOADER.register(_conv_body, load_resnet_c2_format)
del _conv_body
