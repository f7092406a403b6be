"""The original's block and stem classes, with its constructor signatures, over this package's
Bottleneck and Stem. Importable from maskrcnn_benchmark.modeling.backbone.resnet, as before;
configs name them in MODEL.RESNETS.TRANS_FUNC / STEM_FUNC."""

from typing import Any, Mapping, Optional

from ...config import CfgNode
from ...layers.batch_norm import FrozenBatchNorm2d
from ..make_layers import gn_factory
from .resnet import Bottleneck, DCNSpec, Stem


def _dcn(dcn_config: Optional[Mapping[str, Any]]) -> Optional[DCNSpec]:
    # The original passed {"stage_with_dcn": bool, "with_modulated_dcn": bool, "deformable_groups": int}.
    if not dcn_config or not dcn_config.get("stage_with_dcn", False):
        return None
    return DCNSpec(bool(dcn_config.get("with_modulated_dcn", False)), int(dcn_config.get("deformable_groups", 1)))


class _OriginalBottleneck(Bottleneck):
    """The original's bottleneck signature; subclasses choose the norm (`make_norm`)."""

    @staticmethod
    def make_norm():
        raise NotImplementedError

    def __init__(
        self,
        in_channels: int,
        bottleneck_channels: int,
        out_channels: int,
        num_groups: int = 1,
        stride_in_1x1: bool = True,
        stride: int = 1,
        dilation: int = 1,
        dcn_config: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__(
            in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
            norm=self.make_norm(), dcn=_dcn(dcn_config),
        )  # fmt: skip


class BottleneckWithFixedBatchNorm(_OriginalBottleneck):
    @staticmethod
    def make_norm():
        return FrozenBatchNorm2d


class BottleneckWithGN(_OriginalBottleneck):
    """GroupNorm with MODEL.GROUP_NORM's default settings (the builders pass the config's own)."""

    @staticmethod
    def make_norm():
        return gn_factory()


class StemWithFixedBatchNorm(Stem):
    def __init__(self, cfg: CfgNode):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, FrozenBatchNorm2d)


class StemWithGN(Stem):
    def __init__(self, cfg: CfgNode):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, gn_factory(cfg.MODEL.GROUP_NORM))
