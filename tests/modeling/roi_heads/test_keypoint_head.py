"""Keypoint decoding, heat-map loss and sampling (docs/CONVENTIONS.md#keypoints)."""

import numpy as np
import torch

from maskrcnn_benchmark.modeling.balanced_positive_negative_sampler import BalancedPositiveNegativeSampler
from maskrcnn_benchmark.modeling.matcher import Matcher
from maskrcnn_benchmark.modeling.roi_heads.keypoint_head.inference import KeypointPostProcessor, heatmaps_to_keypoints
from maskrcnn_benchmark.modeling.roi_heads.keypoint_head.loss import KeypointRCNNLossComputation
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.keypoint import PersonKeypoints


def test_heatmap_peak_maps_to_pixel_centre():
    maps = np.zeros((1, 17, 56, 56), np.float32)
    maps[0, 3, 10, 20] = 5.0
    rois = np.array([[100.0, 200.0, 156.0, 256.0]], np.float32)  # 56 x 56: no rescaling
    kps, scores = heatmaps_to_keypoints(maps, rois)
    assert kps.shape == (1, 17, 3) and scores.shape == (1, 17)
    np.testing.assert_allclose(kps[0, 3], [100 + 20.5, 200 + 10.5, 1.0])
    assert scores[0, 3] == 5.0


def test_scaling_for_non_integer_boxes():
    maps = np.zeros((1, 1, 56, 56), np.float32)
    maps[0, 0, 0, 0] = 1.0
    rois = np.array([[0.0, 0.0, 111.5, 27.0]], np.float32)  # w 111.5 -> ceil 112, h 27
    kps, _ = heatmaps_to_keypoints(maps, rois)
    np.testing.assert_allclose(kps[0, 0, :2], [0.5 * 111.5 / 112, 0.5], rtol=1e-5)


def test_post_processor_works_for_several_images():
    maps = torch.zeros(3, 17, 56, 56)
    maps[:, :, 28, 28] = 1.0
    boxes = [
        BoxList(torch.tensor([[0.0, 0.0, 56.0, 56.0], [10.0, 10.0, 66.0, 66.0]]), (100, 100)),
        BoxList(torch.tensor([[0.0, 0.0, 56.0, 56.0]]), (60, 60)),
    ]
    for b in boxes:
        b.add_field("scores", torch.ones(len(b)))
    out = KeypointPostProcessor()(maps, boxes)
    assert [len(o) for o in out] == [2, 1]
    kp = out[0].get_field("keypoints")
    assert isinstance(kp, PersonKeypoints) and kp.keypoints.shape == (2, 17, 3)
    torch.testing.assert_close(kp.keypoints[1, 0, :2], torch.tensor([10 + 28.5, 10 + 28.5]))
    assert kp.get_field("logits").shape == (2, 17)


def _person(box, points, size=(100, 100)):
    target = BoxList(torch.tensor([box], dtype=torch.float32), size)
    target.add_field("labels", torch.tensor([1]))
    kp = torch.zeros(1, 17, 3)
    for k, (x, y) in points.items():
        kp[0, k] = torch.tensor([x, y, 2.0])
    target.add_field("keypoints", PersonKeypoints(kp, size))
    return target


def test_loss_on_known_target_pixel():
    torch.manual_seed(0)
    loss_fn = KeypointRCNNLossComputation(Matcher(0.5, 0.5), BalancedPositiveNegativeSampler(512, 0.25), 56)
    target = _person([0, 0, 55, 55], {0: (10.2, 20.7)})
    proposals = BoxList(torch.tensor([[0.0, 0.0, 56.0, 56.0], [70.0, 70.0, 90.0, 90.0]]), (100, 100))
    (sampled,) = loss_fn.subsample([proposals], [target])
    assert len(sampled) == 1  # only positives are kept
    logits = torch.zeros(1, 17, 56, 56, requires_grad=True)
    loss = loss_fn([sampled], logits)
    # uniform logits: cross-entropy = log(56 * 56) for the one valid keypoint
    torch.testing.assert_close(loss, torch.tensor(float(np.log(56 * 56))))
    loss.backward()
    # the target pixel is (y=20, x=10): floor((k - x1) * 56 / (x2 - x1))
    assert logits.grad[0, 0].argmin().item() == 20 * 56 + 10


def test_person_without_visible_keypoints_is_ignored():
    loss_fn = KeypointRCNNLossComputation(Matcher(0.5, 0.5), BalancedPositiveNegativeSampler(512, 0.25), 56)
    target = _person([0, 0, 55, 55], {})
    proposals = BoxList(torch.tensor([[0.0, 0.0, 56.0, 56.0]]), (100, 100))
    labels, _ = loss_fn.prepare_targets([proposals], [target])
    assert labels[0].tolist() == [-1]
    (sampled,) = loss_fn.subsample([proposals], [target])
    logits = torch.zeros(0, 17, 56, 56, requires_grad=True)
    assert loss_fn([sampled], logits).item() == 0


def test_non_finite_heat_maps_and_boxes_decode_to_finite_numbers():
    maps = np.zeros((4, 17, 56, 56), np.float32)
    maps[0] = np.nan  # all NaN: first pixel, lowest score
    maps[1, :, 10, 20] = 3.0
    maps[1, :, 30:, :] = np.nan  # part NaN: the finite peak still wins
    maps[2, :, 5, 6] = np.inf
    rois = np.array([[0, 0, 56, 56], [0, 0, 56, 56], [0, 0, 56, 56], [np.nan, 0, 56, 56]], np.float32)
    kps, scores = heatmaps_to_keypoints(maps, rois)
    assert np.isfinite(kps).all() and np.isfinite(scores).all()
    lowest, highest = np.finfo(np.float32).min, np.finfo(np.float32).max
    np.testing.assert_allclose(kps[0, :, :2], 0.5)
    assert (scores[0] == lowest).all()
    np.testing.assert_allclose(kps[1, :, :2], [[20.5, 10.5]] * 17)
    assert (scores[1] == 3.0).all()
    assert (scores[2] == highest).all()
    assert (kps[3] == 0).all() and (scores[3] == lowest).all()  # no box: not labelled (v = 0)


def test_post_processor_without_detections():
    boxes = [BoxList(torch.zeros(0, 4), (100, 100)), BoxList(torch.zeros(0, 4), (60, 60))]
    for b in boxes:
        b.add_field("scores", torch.zeros(0))
    out = KeypointPostProcessor()(torch.zeros(0, 17, 56, 56), boxes)
    for o in out:
        kp = o.get_field("keypoints")
        assert kp.keypoints.shape == (0, 17, 3) and kp.get_field("logits").shape == (0, 17)


def test_images_without_persons_train_as_background():
    loss_fn = KeypointRCNNLossComputation(Matcher(0.5, 0.5), BalancedPositiveNegativeSampler(512, 0.25), 56)
    nobody = BoxList(torch.zeros(0, 4), (100, 100))
    nobody.add_field("labels", torch.zeros(0, dtype=torch.int64))
    nobody.add_field("keypoints", PersonKeypoints(torch.zeros(0, 17, 3), (100, 100)))
    proposals = BoxList(torch.tensor([[0.0, 0.0, 56.0, 56.0]]), (100, 100))
    person = _person([0, 0, 55, 55], {0: (10.2, 20.7)})
    sampled = loss_fn.subsample([proposals, proposals, proposals[[]]], [nobody, person, person])
    assert [len(s) for s in sampled] == [0, 1, 0]
    assert sampled[0].get_field("keypoints").keypoints.shape == (0, 17, 3)
    logits = torch.zeros(1, 17, 56, 56, requires_grad=True)
    torch.testing.assert_close(loss_fn(sampled, logits), torch.tensor(float(np.log(56 * 56))))
