"""Mask targets, loss, post-processing and the Masker (docs/CONVENTIONS.md#mask-targets,
docs/CONVENTIONS.md#mask-pasting)."""

import pytest
import torch
from torch.nn import functional as F

from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import (
    Masker,
    MaskPostProcessor,
    paste_mask_in_image,
    paste_masks_in_image,
)
from maskrcnn_benchmark.modeling.roi_heads.mask_head.loss import MaskRCNNLossComputation, project_masks_on_boxes
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.segmentation_mask import SegmentationMask


def _square_polygon(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def test_targets_of_a_mask_filling_its_proposal_are_all_ones():
    masks = SegmentationMask([_square_polygon(10, 10, 30, 30)], (64, 64))
    proposals = BoxList(torch.tensor([[10.0, 10.0, 30.0, 30.0]]), (64, 64))
    target = project_masks_on_boxes(masks, proposals, 28)
    assert target.shape == (1, 28, 28) and target.dtype == torch.float32
    assert target.mean() > 0.95


def test_targets_of_a_half_covered_proposal():
    # the mask covers the left half of the proposal
    masks = SegmentationMask([_square_polygon(0, 0, 20, 40)], (64, 64))
    proposals = BoxList(torch.tensor([[0.0, 0.0, 40.0, 40.0]]), (64, 64))
    target = project_masks_on_boxes(masks, proposals, 28)[0]
    assert target[:, :13].mean() > 0.95 and target[:, 15:].sum() == 0


def test_mask_loss_uses_the_ground_truth_class_channel_and_zero_without_positives():
    target = BoxList(torch.tensor([[10.0, 10.0, 30.0, 30.0]]), (64, 64))
    target.add_field("labels", torch.tensor([3]))
    target.add_field("masks", SegmentationMask([_square_polygon(10, 10, 30, 30)], (64, 64)))
    proposals = BoxList(torch.tensor([[10.0, 10.0, 30.0, 30.0]]), (64, 64))
    loss_fn = MaskRCNNLossComputation(Matcher(0.5, 0.5), 14)
    logits = torch.randn(1, 4, 14, 14, requires_grad=True)
    loss = loss_fn([proposals], logits, [target])
    expected_target = project_masks_on_boxes(target.get_field("masks"), proposals, 14)
    torch.testing.assert_close(loss, F.binary_cross_entropy_with_logits(logits[0, 3], expected_target[0]))
    loss.backward()
    assert logits.grad[0, :3].abs().sum() == 0 and logits.grad[0, 3].abs().sum() > 0
    far = BoxList(torch.tensor([[40.0, 40.0, 60.0, 60.0]]), (64, 64))
    zero = loss_fn([far], logits, [target])
    assert zero.item() == 0 and zero.requires_grad


def test_paste_full_mask_covers_its_box():
    mask = torch.ones(28, 28)
    pasted = paste_mask_in_image(mask, torch.tensor([10.0, 20.0, 49.0, 39.0]), 64, 80)
    assert pasted.dtype == torch.bool and pasted.shape == (64, 80)
    ys, xs = torch.nonzero(pasted, as_tuple=True)
    # the 1-pixel zero padding around the mask makes the pasted region match the box to ~1 px
    assert abs(xs.min().item() - 10) <= 1 and abs(xs.max().item() - 49) <= 1
    assert abs(ys.min().item() - 20) <= 1 and abs(ys.max().item() - 39) <= 1


def test_paste_clips_at_the_image_border_and_heatmap_mode():
    mask = torch.ones(28, 28) * 0.75
    pasted = paste_mask_in_image(mask, torch.tensor([-10.0, -10.0, 9.0, 9.0]), 16, 16)
    assert pasted[0, 0] and not pasted[15, 15]
    heat = paste_mask_in_image(mask, torch.tensor([0.0, 0.0, 9.0, 9.0]), 16, 16, thresh=-1)
    assert heat.dtype == torch.uint8 and heat[5, 5].item() == 191  # 0.75 * 255


def test_masker_batches_and_empty_images():
    masker = Masker(threshold=0.5, padding=1)
    boxes = [
        BoxList(torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 15.0, 15.0]]), (20, 30)),
        BoxList(torch.zeros(0, 4), (8, 6)),
    ]
    out = masker([torch.ones(2, 1, 28, 28), torch.zeros(0, 1, 28, 28)], boxes)
    assert out[0].shape == (2, 1, 30, 20) and out[1].shape == (0, 1, 6, 8)


def test_post_processor_picks_the_label_channel():
    logits = torch.zeros(2, 3, 4, 4)
    logits[0, 1] = 5.0
    logits[1, 2] = -5.0
    dets = BoxList(torch.tensor([[0.0, 0.0, 5.0, 5.0], [1.0, 1.0, 6.0, 6.0]]), (10, 10))
    dets.add_field("labels", torch.tensor([1, 2]))
    dets.add_field("scores", torch.tensor([0.9, 0.8]))
    (out,) = MaskPostProcessor()(logits, [dets])
    mask = out.get_field("mask")
    assert mask.shape == (2, 1, 4, 4)
    torch.testing.assert_close(mask[0], torch.full((1, 4, 4), torch.sigmoid(torch.tensor(5.0)).item()))
    torch.testing.assert_close(mask[1], torch.full((1, 4, 4), torch.sigmoid(torch.tensor(-5.0)).item()))
    assert out.get_field("scores").tolist() == dets.get_field("scores").tolist()


def test_batched_paste_equals_one_box_paste():
    # The batched paste (used on GPUs) against the one-box version, boxes partly outside the image,
    # sub-pixel boxes included; bool and uint8 heat-map modes.
    g = torch.Generator().manual_seed(0)
    n, m, h, w = 60, 28, 120, 160
    masks = torch.rand(n, m, m, generator=g)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w + 40.0, h + 40.0]) - 20
    wh = torch.rand(n, 2, generator=g) * 90 + 0.2
    boxes = torch.cat([xy, xy + wh], 1)
    for thresh in (0.5, 0.0, -1):
        batched = paste_masks_in_image(masks, boxes, h, w, thresh, chunk=7)
        one_by_one = torch.stack([paste_mask_in_image(mk, bx, h, w, thresh) for mk, bx in zip(masks, boxes)])
        assert batched.dtype == one_by_one.dtype and batched.shape == (n, h, w)
        # equal up to float rounding: at most a pixel off per 10^5, and uint8 values at most 1 apart
        assert ((batched.int() - one_by_one.int()).abs() > (0 if thresh >= 0 else 1)).sum() <= batched.numel() // 100000
    assert paste_masks_in_image(masks[:0], boxes[:0], h, w).shape == (0, h, w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_masker_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(40, 1, 28, 28, generator=g)
    xy = torch.rand(40, 2, generator=g) * 150
    boxes = BoxList(torch.cat([xy, xy + torch.rand(40, 2, generator=g) * 80 + 1], 1), (200, 160))
    on_cpu = Masker(0.5, 1)([masks], [boxes])[0]
    on_gpu = Masker(0.5, 1)([masks.cuda()], [boxes.to("cuda")])[0]
    assert on_gpu.device.type == "cuda" and on_gpu.shape == on_cpu.shape == (40, 1, 160, 200)
    assert (on_gpu.cpu() != on_cpu).sum() <= on_cpu.numel() // 100000


def test_nan_logits_give_empty_masks_and_no_detection_gives_empty_tensors():
    dets = BoxList(torch.tensor([[0.0, 0.0, 5.0, 5.0], [1.0, 1.0, 6.0, 6.0]]), (10, 8))
    dets.add_field("labels", torch.tensor([1, 2]))
    logits = torch.zeros(2, 3, 4, 4)
    logits[0] = float("nan")
    (out,) = MaskPostProcessor()(logits, [dets])
    mask = out.get_field("mask")
    assert torch.equal(mask[0], torch.zeros(1, 4, 4)) and torch.equal(mask[1], torch.full((1, 4, 4), 0.5))
    (pasted,) = MaskPostProcessor(Masker(0.4))(logits, [dets])
    assert not pasted.get_field("mask")[0].any() and pasted.get_field("mask")[1].any()
    nothing = dets[[]]
    for masker, shape in ((None, (0, 1, 4, 4)), (Masker(0.5), (0, 1, 8, 10))):
        (empty,) = MaskPostProcessor(masker)(logits[:0], [nothing])
        assert empty.get_field("mask").shape == shape and len(empty) == 0


@pytest.mark.parametrize("thresh", [0.5, -1])
def test_paste_of_non_finite_boxes_or_masks_is_empty(thresh):
    ones = torch.ones(28, 28)
    nan_mask = torch.full((28, 28), float("nan"))
    boxes = torch.tensor(
        [
            [float("nan"), 0.0, 9.0, 9.0],
            [0.0, 0.0, float("inf"), 9.0],
            [-float("inf"), 0.0, 9.0, 9.0],
            [2.0, 2.0, 12.0, 12.0],
        ]
    )
    masks = torch.stack([ones, ones, ones, nan_mask])
    one_by_one = torch.stack([paste_mask_in_image(m, b, 16, 20, thresh) for m, b in zip(masks, boxes)])
    batched = paste_masks_in_image(masks, boxes, 16, 20, thresh)
    for pasted in (one_by_one, batched):
        assert pasted.shape == (4, 16, 20) and not pasted.any()
    good = paste_masks_in_image(ones[None], boxes[3:], 16, 20, thresh)  # a finite box still pastes
    assert good.any() and torch.equal(good, paste_mask_in_image(ones, boxes[3], 16, 20, thresh)[None])
    huge = paste_masks_in_image(ones[None], torch.tensor([[-1e30, -1e30, 1e30, 1e30]]), 16, 20, thresh)
    assert huge.shape == (1, 16, 20)  # no overflow in the integer box


def test_coco_format_post_processor_gives_the_rles_of_the_pasted_masks():
    import pycocotools.mask as mask_util

    from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import (
        Masker,
        MaskPostProcessor,
        MaskPostProcessorCOCOFormat,
    )

    g = torch.Generator().manual_seed(0)
    boxes = BoxList(torch.tensor([[2.0, 3.0, 20.0, 17.0], [10.0, 1.0, 30.0, 25.0]]), (40, 30))
    boxes.add_field("labels", torch.tensor([1, 2]))
    logits = torch.randn(2, 3, 14, 14, generator=g) * 3
    masker = Masker(threshold=0.5, padding=1)
    pasted = MaskPostProcessor(masker)(logits, [boxes])[0].get_field("mask")  # [2, 1, 30, 40]
    rles = MaskPostProcessorCOCOFormat(masker)(logits, [boxes])[0].get_field("mask")
    assert len(rles) == 2 and all(isinstance(r["counts"], str) for r in rles)
    decoded = torch.from_numpy(mask_util.decode(rles)).permute(2, 0, 1)
    assert torch.equal(decoded.bool(), pasted[:, 0].bool()) and pasted.any()
    with pytest.raises(ValueError, match="Masker"):
        MaskPostProcessorCOCOFormat(None)(logits, [boxes])
