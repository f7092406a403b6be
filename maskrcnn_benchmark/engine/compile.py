"""torch.compile of a detector's dense parts (MODEL.COMPILE.*, the tools' --compile flag).

`compile_detector(model)` compiles, in place, each of these as its own region with `fullgraph=True`
(a graph break is an error, not a silent fall-back to slower mixed code):

- `backbone`: the ResNet body and the FPN (images -> feature maps);
- `rpn.head`: the RPN conv tower (feature maps -> objectness logits and box deltas per level);
- `roi_heads.<box|mask|keypoint>.feature_extractor`: everything after the RoI pooler (the MLP, the
  conv stack or the res5 head); the pooler runs eagerly just before the region;
- `roi_heads.<box|mask|keypoint>.predictor`: class scores and box deltas, mask and keypoint logits.

Each region does the same work on every call, on batches of images or of RoIs whose sizes vary
(dynamic shapes cover that). What stays eager is what depends on the values (how many boxes pass a
threshold or NMS, which FPN level a box goes to), where dynamo would break the graph or recompile on
every batch: anchor generation; proposal decoding, top-k and NMS (RPN post-processing); matching,
fg/bg sampling and the losses; RoI pooling (level assignment, per-level gathering); box
post-processing (score threshold, per-class NMS); mask / keypoint post-processing and mask pasting;
GeneralizedRCNN.forward's glue.

Parameters are neither moved nor renamed (no `_orig_mod.` prefix), so state_dict keys are those of the
uncompiled model and checkpoints load either way. Compile the model once built and on its device; it
works in train() and eval(), under autocast and inside DDP. Copies (copy.deepcopy, pickling) are
uncompiled, as with torch's nn.Module.compile.
"""

import copy
import logging
from typing import Any, Dict, List, Optional

import torch
from torch import nn

logger = logging.getLogger(__name__)

# torch.compile's modes ("reduce-overhead" records CUDA graphs: GPUs only).
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# MODEL.COMPILE.DYNAMIC -> torch.compile's `dynamic` ("auto": None, torch's automatic dynamic shapes).
DYNAMIC = {"auto": None, "true": True, "false": False}
COMPILE_HELP = (
    "torch.compile the model's backbone, RPN head and RoI head layers (sets MODEL.COMPILE.ENABLED True; "
    "the first iterations take longer)"
)


class _PooledInput(nn.Module):
    """Stands in for a feature extractor's pooler inside its compiled region: returns the pooled
    features (computed eagerly by the real pooler, passed in place of the boxes)."""

    def forward(self, features: Any, pooled: torch.Tensor) -> torch.Tensor:
        return pooled


class _PoolThenCompiled:
    """Calls a feature extractor: its pooler eagerly, then the rest of its own forward compiled.

    The compiled part runs on a shallow copy of the extractor that shares every parameter, buffer,
    hook and submodule except the pooler (a _PooledInput); the extractor keeps its pooler, so what
    state_dict(), .to() and train() see does not change.
    """

    def __init__(self, extractor: nn.Module, options: Dict[str, Any]):
        self.extractor = extractor
        self.tail = copy.copy(extractor)  # copy drops an earlier compilation (nn.Module.__getstate__)
        self.tail._modules = {**extractor._modules, "pooler": _PooledInput()}
        self.tail.compile(**options)

    def __call__(self, x: Any, proposals: Any) -> torch.Tensor:
        self.tail.training = self.extractor.training  # train()/eval() reach the shared children only
        return self.tail(x, self.extractor.pooler(x, proposals))


def _compile_module(module: nn.Module, options: Dict[str, Any]) -> None:
    if isinstance(getattr(module, "pooler", None), nn.Module):
        # What nn.Module.compile sets; nn.Module.__call__ calls it instead of forward, and copies
        # and pickles leave it out (they are uncompiled).
        module._compiled_call_impl = _PoolThenCompiled(module, options)
    else:
        module.compile(**options)


def compile_detector(
    model: nn.Module, mode: str = "default", dynamic: Optional[bool] = None, backend: str = "inductor"
) -> nn.Module:
    """Compile the dense parts of a GeneralizedRCNN in place (see the module docstring); returns it.

    mode, dynamic, backend: torch.compile's; modes other than "default" are the inductor backend's.
    """
    if mode not in MODES:
        raise ValueError(f"torch.compile mode {mode!r} is not known; use one of {list(MODES)}")
    if mode != "default" and backend != "inductor":
        raise ValueError(f'torch.compile mode {mode!r} is the inductor backend\'s; backend {backend!r} takes "default"')
    options: Dict[str, Any] = {"fullgraph": True, "dynamic": dynamic, "backend": backend}
    if backend == "inductor":
        options["mode"] = mode
    regions: List[str] = []
    seen = set()  # C4 Mask R-CNN shares one feature extractor between the box and mask heads
    parts = [("backbone", model.backbone), ("rpn.head", getattr(model.rpn, "head", None))]
    for name, head in model.roi_heads.items() if model.roi_heads else ():
        parts += [
            (f"roi_heads.{name}.feature_extractor", head.feature_extractor),
            (f"roi_heads.{name}.predictor", head.predictor),
        ]
    for name, module in parts:
        if module is not None and id(module) not in seen:
            seen.add(id(module))
            _compile_module(module, options)
            regions.append(name)
    logger.info("torch.compile (mode %s, dynamic %s, backend %s) of %s", mode, dynamic, backend, ", ".join(regions))
    return model


def compiled_regions(model: nn.Module) -> List[str]:
    """Names of the submodules of `model` that run compiled."""
    return [name for name, m in model.named_modules() if getattr(m, "_compiled_call_impl", None) is not None]


def maybe_compile(model: nn.Module, cfg: Any) -> nn.Module:
    """compile_detector(model) with MODEL.COMPILE's settings if MODEL.COMPILE.ENABLED, else model as is."""
    from ..config.checks import check_compile

    check_compile(cfg)
    c = cfg.MODEL.COMPILE
    if not c.ENABLED:
        return model
    return compile_detector(model, c.MODE, DYNAMIC[c.DYNAMIC], c.BACKEND)


def with_compile_flag(args: Any) -> Any:
    """The tools' --compile: MODEL.COMPILE.ENABLED True added to the KEY VALUE overrides; returns args."""
    if getattr(args, "compile", False):
        args.opts = [*(args.opts or []), "MODEL.COMPILE.ENABLED", "True"]
    return args
