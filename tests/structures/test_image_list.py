"""ImageList and to_image_list (zero padding, size divisibility, image_sizes height first)."""

import pytest
import torch

from maskrcnn_benchmark.structures.image_list import ImageList, to_image_list


def test_image_list_to_keeps_sizes():
    il = ImageList(torch.zeros(2, 3, 4, 5), [torch.Size([4, 5]), torch.Size([3, 2])])
    moved = il.to(torch.float64)
    assert moved.tensors.dtype == torch.float64 and moved.image_sizes == il.image_sizes
    assert il.to("cpu").tensors.device.type == "cpu"


def test_passthrough_of_image_list():
    il = ImageList(torch.zeros(1, 3, 4, 5), [torch.Size([4, 5])])
    assert to_image_list(il) is il and to_image_list(il, size_divisible=32) is il


def test_single_3d_and_batched_4d_tensors():
    img = torch.rand(3, 7, 9)
    il = to_image_list(img)
    assert il.tensors.shape == (1, 3, 7, 9) and il.image_sizes == [torch.Size([7, 9])]
    batch = torch.rand(2, 3, 7, 9)
    il = to_image_list(batch)
    assert il.tensors is batch and il.image_sizes == [torch.Size([7, 9])] * 2


def test_tensor_with_size_divisible_is_padded():
    img = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0))
    il = to_image_list(img, size_divisible=8)
    assert il.tensors.shape == (1, 3, 8, 16) and il.image_sizes == [torch.Size([7, 9])]
    torch.testing.assert_close(il.tensors[0, :, :7, :9], img)
    assert il.tensors[0, :, 7:].abs().sum() == 0 and il.tensors[0, :, :, 9:].abs().sum() == 0
    il4 = to_image_list(torch.stack([img, img]), size_divisible=8)  # a 4-D batch pads H and W only
    assert il4.tensors.shape == (2, 3, 8, 16) and il4.image_sizes == [torch.Size([7, 9])] * 2


def test_list_of_images_zero_padded_to_max_and_rounded_up():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 10, 20, generator=g), torch.rand(3, 33, 15, generator=g)
    il = to_image_list([a, b])
    assert il.tensors.shape == (2, 3, 33, 20)
    assert il.image_sizes == [torch.Size([10, 20]), torch.Size([33, 15])]
    torch.testing.assert_close(il.tensors[0, :, :10, :20], a)
    torch.testing.assert_close(il.tensors[1, :, :33, :15], b)
    assert il.tensors[0, :, 10:].abs().sum() == 0 and il.tensors[1, :, :, 15:].abs().sum() == 0

    il = to_image_list((a, b), size_divisible=32)
    assert il.tensors.shape == (2, 3, 64, 32)
    assert to_image_list([torch.rand(3, 32, 64)], size_divisible=32).tensors.shape == (1, 3, 32, 64)


def test_dtype_and_device_follow_the_first_image():
    il = to_image_list([torch.ones(1, 2, 2, dtype=torch.float16), torch.ones(1, 3, 1, dtype=torch.float16)])
    assert il.tensors.dtype == torch.float16 and il.tensors.device.type == "cpu"


def test_bad_inputs():
    with pytest.raises(TypeError, match="Unsupported type"):
        to_image_list("image")
    with pytest.raises(ValueError, match="at least one"):
        to_image_list([])
    with pytest.raises(ValueError, match=r"\(5, 5\)"):
        to_image_list(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="image 1"):
        to_image_list([torch.zeros(3, 4, 4), torch.zeros(4, 4)])
