"""The original's block and stem classes, with its constructor signatures, over this package's
Bottleneck and Stem, and its stage-spec constants. Importable from
maskrcnn_benchmark.modeling.backbone.resnet, as before; configs name the classes in
MODEL.RESNETS.TRANS_FUNC / STEM_FUNC."""

from ...config import CfgNode
from ...layers.batch_norm import FrozenBatchNorm2d
from ..make_layers import gn_factory
from .resnet import STAGE_SPECS, Bottleneck, DCNConfig, NormFactory, Stem

# The original's stage specs by name (STAGE_SPECS holds them by MODEL.BACKBONE.CONV_BODY).
ResNet50StagesTo5 = STAGE_SPECS["R-50-C5"]
ResNet50StagesTo4 = STAGE_SPECS["R-50-C4"]
ResNet101StagesTo5 = STAGE_SPECS["R-101-C5"]
ResNet101StagesTo4 = STAGE_SPECS["R-101-C4"]
ResNet50FPNStagesTo5 = STAGE_SPECS["R-50-FPN"]
ResNet101FPNStagesTo5 = STAGE_SPECS["R-101-FPN"]
ResNet152FPNStagesTo5 = STAGE_SPECS["R-152-FPN"]


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
        dcn_config: DCNConfig = None,
    ):
        super().__init__(
            in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
            norm_func=self.make_norm(), dcn_config=dcn_config,
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


class BaseStem(Stem):
    """The stem with cfg.MODEL.RESNETS.STEM_OUT_CHANNELS channels and the norm `norm_func`."""

    def __init__(self, cfg: CfgNode, norm_func: NormFactory):
        super().__init__(cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, norm_func)


class StemWithFixedBatchNorm(BaseStem):
    def __init__(self, cfg: CfgNode):
        super().__init__(cfg, FrozenBatchNorm2d)


class StemWithGN(BaseStem):
    def __init__(self, cfg: CfgNode):
        super().__init__(cfg, gn_factory(cfg.MODEL.GROUP_NORM))
