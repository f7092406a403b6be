"""Small layer factories shared by heads and the FPN (the original's make_layers.py)."""

from typing import Callable, Optional

from torch import nn

from ..layers.misc import Conv2d

# MODEL.GROUP_NORM's defaults (a test keeps them equal): what a GroupNorm gets when the caller
# passes no settings. Builders always pass the config's own.
DEFAULT_GN_DIM_PER_GP = -1
DEFAULT_GN_NUM_GROUPS = 32
DEFAULT_GN_EPSILON = 1e-5


def get_group_gn(dim: int, dim_per_gp: int, num_groups: int) -> int:
    """Number of groups for `dim` channels: dim / dim_per_gp if dim_per_gp > 0, else num_groups."""
    if (dim_per_gp > 0) == (num_groups > 0):
        raise ValueError(f"GroupNorm: set exactly one of DIM_PER_GP ({dim_per_gp}) and NUM_GROUPS ({num_groups})")
    if dim_per_gp > 0:
        if dim % dim_per_gp != 0:
            raise ValueError(f"GroupNorm: {dim} channels are not divisible by DIM_PER_GP {dim_per_gp}")
        return dim // dim_per_gp
    if dim % num_groups != 0:
        raise ValueError(f"GroupNorm: {dim} channels are not divisible by NUM_GROUPS {num_groups}")
    return num_groups


def group_norm(
    out_channels: int,
    affine: bool = True,
    divisor: int = 1,
    *,
    dim_per_gp: Optional[int] = None,
    num_groups: Optional[int] = None,
    eps: Optional[float] = None,
) -> nn.GroupNorm:
    """nn.GroupNorm for `out_channels`. Unset keyword values are MODEL.GROUP_NORM's defaults (the
    original read them from the global config; its signature had only the first three arguments)."""
    dim_per_gp = (DEFAULT_GN_DIM_PER_GP if dim_per_gp is None else dim_per_gp) // divisor
    num_groups = (DEFAULT_GN_NUM_GROUPS if num_groups is None else num_groups) // divisor
    eps = DEFAULT_GN_EPSILON if eps is None else eps
    return nn.GroupNorm(get_group_gn(out_channels, dim_per_gp, num_groups), out_channels, eps, affine)


def gn_factory(gn_cfg=None) -> Callable[[int], nn.GroupNorm]:
    """channels -> nn.GroupNorm with the settings of `gn_cfg` (a MODEL.GROUP_NORM node; None: the
    defaults)."""
    if gn_cfg is None:
        return lambda channels: group_norm(channels)
    dim_per_gp, num_groups, eps = gn_cfg.DIM_PER_GP, gn_cfg.NUM_GROUPS, gn_cfg.EPSILON
    return lambda channels: group_norm(channels, dim_per_gp=dim_per_gp, num_groups=num_groups, eps=eps)


def make_conv3x3(
    in_channels: int,
    out_channels: int,
    dilation: int = 1,
    stride: int = 1,
    use_gn: bool = False,
    use_relu: bool = False,
    kaiming_init: bool = True,
    norm: Optional[Callable[[int], nn.Module]] = None,
) -> nn.Module:
    """3x3 conv (+ GroupNorm) (+ ReLU). Without GN and ReLU it is a bare Conv2d, so state_dict
    keys are `<name>.weight`; otherwise a Sequential (`<name>.0.weight`, `<name>.1.weight`, ...).
    `norm` builds the GN layer (default: gn_factory())."""
    conv = Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=not use_gn)
    if kaiming_init:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    else:
        nn.init.normal_(conv.weight, std=0.01)
    if not use_gn:
        nn.init.constant_(conv.bias, 0)
    return _with_norm_and_relu(conv, out_channels, use_gn, use_relu, norm)


def _with_norm_and_relu(
    conv: nn.Module, out_channels: int, use_gn: bool, use_relu: bool, norm: Optional[Callable[[int], nn.Module]]
) -> nn.Module:
    """conv alone, or Sequential(conv[, GN][, ReLU]) (the original's state_dict layout)."""
    modules = [conv]
    if use_gn:
        modules.append((norm or gn_factory())(out_channels))
    if use_relu:
        modules.append(nn.ReLU(inplace=True))
    return nn.Sequential(*modules) if len(modules) > 1 else conv


def make_fc(
    dim_in: int, hidden_dim: int, use_gn: bool = False, norm: Optional[Callable[[int], nn.Module]] = None
) -> nn.Module:
    """Linear layer (Caffe2's XavierFill init, i.e. kaiming_uniform with a=1); with GN the bias
    moves into the norm (built by `norm`, default gn_factory())."""
    if use_gn:
        fc = nn.Linear(dim_in, hidden_dim, bias=False)
        nn.init.kaiming_uniform_(fc.weight, a=1)
        return nn.Sequential(fc, (norm or gn_factory())(hidden_dim))
    fc = nn.Linear(dim_in, hidden_dim)
    nn.init.kaiming_uniform_(fc.weight, a=1)
    nn.init.constant_(fc.bias, 0)
    return fc


def conv_with_kaiming_uniform(
    use_gn: bool = False, use_relu: bool = False, norm: Optional[Callable[[int], nn.Module]] = None
) -> Callable[..., nn.Module]:
    """A factory make_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1) of
    "same"-padded convs initialised kaiming_uniform(a=1), optionally followed by GN (built by
    `norm`, default gn_factory()) and ReLU."""

    def make_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        conv = Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            bias=not use_gn,
        )
        nn.init.kaiming_uniform_(conv.weight, a=1)
        if not use_gn:
            nn.init.constant_(conv.bias, 0)
        return _with_norm_and_relu(conv, out_channels, use_gn, use_relu, norm)

    return make_conv
