"""Deformable position-sensitive RoI pooling, `deform_roi_pooling`: the original's
`deform_psroi_pooling` CUDA op written with tensor operations, so it runs on any device and autograd
gives the gradients of the original's backward kernel (none for the RoIs).

For RoI r (a row `[batch_index, x1, y1, x2, y2]` in image pixels), output channel c and bin (i, j)
of the `out_size` x `out_size` grid:

- the RoI on the feature map starts at `round(x1) * spatial_scale - 0.5` and ends at
  `(round(x2) + 1) * spatial_scale - 0.5` (y likewise; halves rounded away from zero), at least 0.1
  wide and high; a bin is 1 / out_size of that;
- unless `no_trans`, the bin is shifted by `offset[r, 2k] * trans_std * RoI width` in x and
  `offset[r, 2k + 1] * trans_std * RoI height` in y, read at part cell `(i * part_size // out_size,
  j * part_size // out_size)`; k is c's offset class: offset has `2 * K` channels and the output
  channels are split into K consecutive classes;
- `sample_per_part` x `sample_per_part` points, spaced 1 / sample_per_part of the bin from its
  shifted corner, are read bilinearly from input channel `(c * group_size + gi) * group_size + gj`,
  `gi = i * group_size // out_size` (the position-sensitive group; gj likewise); points outside
  `[-0.5, W - 0.5] x [-0.5, H - 0.5]` are skipped, the others clamped to the map;
- the bin's value is the mean of the points read, 0 when none was.

Memory grows with `num_rois * out_channels * out_size**2 * sample_per_part**2` (every point is
materialised), unlike the original's one-thread-per-bin kernel.
"""

from typing import Optional

import torch

__all__ = ["DeformRoIPoolingFunction", "deform_roi_pooling"]


def _check(data: torch.Tensor, rois: torch.Tensor, out_channels: int, group_size: int, trans_std: float) -> None:
    if not 0.0 <= trans_std <= 1.0:
        raise ValueError(f"trans_std must be in [0, 1], got {trans_std}")
    if data.dim() != 4:
        raise ValueError(f"deform_roi_pooling expects data [N, C, H, W], got shape {tuple(data.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be [R, 5] rows (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}")
    if data.shape[1] != out_channels * group_size**2:
        raise ValueError(
            f"data has {data.shape[1]} channels; out_channels={out_channels} with group_size={group_size} "
            f"needs out_channels * group_size**2 = {out_channels * group_size**2}"
        )


def _bin_shifts(offset: torch.Tensor, num_rois: int, out_size: int, out_channels: int, part_size: int):
    """The per (RoI, output channel, bin) shifts [R, C, P, P] in x and y, in RoI units."""
    expected = (num_rois, part_size, part_size)
    if offset.dim() != 4 or offset.shape[1] % 2 or (offset.shape[0], *offset.shape[2:]) != expected:
        raise ValueError(
            f"offset must be [R, 2 * K, part_size, part_size] = [{num_rois}, 2 * K, {part_size}, {part_size}], "
            f"got shape {tuple(offset.shape)}"
        )
    num_classes = offset.shape[1] // 2
    if num_classes == 0 or out_channels % num_classes:
        raise ValueError(f"out_channels {out_channels} cannot be split into the offset's {num_classes} classes")
    part = torch.arange(out_size, device=offset.device) * part_size // out_size
    trans = offset.reshape(num_rois, num_classes, 2, part_size, part_size)[:, :, :, part][..., part]
    trans = trans[:, torch.arange(out_channels, device=offset.device) // (out_channels // num_classes)]
    return trans[:, :, 0], trans[:, :, 1]


def _straight_through_clamp(t: torch.Tensor, high: float) -> torch.Tensor:
    # Clamped value, unclamped gradient: the original's backward differentiates the bilinear read at
    # the clamped point with respect to the unclamped position.
    return t + (t.clamp(0, high) - t).detach()


def _round_half_away(t: torch.Tensor) -> torch.Tensor:
    # C's round() (the original's kernel), not torch.round's half-to-even.
    return t.sign() * (t.abs() + 0.5).floor()


def deform_roi_pooling(
    data: torch.Tensor,
    rois: torch.Tensor,
    offset: torch.Tensor,
    spatial_scale: float,
    out_size: int,
    out_channels: int,
    no_trans: bool,
    group_size: int = 1,
    part_size: Optional[int] = None,
    sample_per_part: int = 4,
    trans_std: float = 0.0,
) -> torch.Tensor:
    """[R, out_channels, out_size, out_size] pooled features (see the module docstring); `offset` is
    [R, 2 * K, part_size, part_size] (part_size defaults to out_size), unused with `no_trans`."""
    _check(data, rois, out_channels, group_size, trans_std)
    part_size = out_size if part_size is None else part_size
    num_rois, (_, channels, height, width) = rois.shape[0], data.shape
    device, dtype = data.device, data.dtype

    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        # t laid along one dim of [R, C, P (i), P (j), S (ih), S (iw)]
        shape = [1] * 6
        shape[dim] = -1
        return t.reshape(shape)

    rois = rois.detach().to(dtype)
    corners = _round_half_away(rois[:, 1:])
    start_x = corners[:, 0] * spatial_scale - 0.5
    start_y = corners[:, 1] * spatial_scale - 0.5
    roi_w = ((corners[:, 2] + 1) * spatial_scale - 0.5 - start_x).clamp(min=0.1)
    roi_h = ((corners[:, 3] + 1) * spatial_scale - 0.5 - start_y).clamp(min=0.1)
    grid = torch.arange(out_size, device=device, dtype=dtype)
    steps = torch.arange(sample_per_part, device=device, dtype=dtype) / sample_per_part
    x = (along(grid, 3) + along(steps, 5)) * along(roi_w / out_size, 0) + along(start_x, 0)
    y = (along(grid, 2) + along(steps, 4)) * along(roi_h / out_size, 0) + along(start_y, 0)
    if not no_trans:
        shift_x, shift_y = _bin_shifts(offset, num_rois, out_size, out_channels, part_size)
        # an offset of 1 moves the bin by trans_std RoI widths (heights)
        x = x + (shift_x * (trans_std * roi_w).view(-1, 1, 1, 1))[..., None, None]
        y = y + (shift_y * (trans_std * roi_h).view(-1, 1, 1, 1))[..., None, None]

    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    x = _straight_through_clamp(x, width - 1)
    y = _straight_through_clamp(y, height - 1)
    x0, y0 = x.detach().floor(), y.detach().floor()
    x1, y1 = x.detach().ceil(), y.detach().ceil()
    dx, dy = x - x0, y - y0

    group = (torch.arange(out_size, device=device) * group_size // out_size).clamp(max=group_size - 1)
    channel = (along(torch.arange(out_channels, device=device), 1) * group_size + along(group, 2)) * group_size
    channel = channel + along(group, 3)
    plane = (along(rois[:, 0].long(), 0) * channels + channel) * height  # [R, C, P, P, 1, 1]
    flat = data.reshape(-1)

    def read(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat[(plane + yy.long()) * width + xx.long()]

    value = (1 - dx) * (1 - dy) * read(y0, x0) + (1 - dx) * dy * read(y1, x0)
    value = value + dx * (1 - dy) * read(y0, x1) + dx * dy * read(y1, x1)
    inside = inside.expand_as(value)
    total = torch.where(inside, value, 0).sum(dim=(4, 5))
    return total / inside.sum(dim=(4, 5)).clamp(min=1).to(dtype)


class DeformRoIPoolingFunction:
    """The original's autograd Function: `DeformRoIPoolingFunction.apply(...)` is `deform_roi_pooling(...)`."""

    apply = staticmethod(deform_roi_pooling)
