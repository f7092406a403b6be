"""ONNX export (dynamic batch and image size) run by onnxruntime against the eager Predictor: boxes,
scores, labels, masks and keypoints on images of different sizes (one without detections), batched,
and for a model with another number of classes; the file holds only standard ONNX ops."""

import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.deploy import inputs as deploy_inputs
from maskrcnn_benchmark.deploy import load_onnx
from maskrcnn_benchmark.engine.predictor import Predictor
from maskrcnn_benchmark.structures.image_list import ImageList


def predictor(setup) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Predictor(setup.cfg, weights=setup.weights)


def test_mask_keypoint_model_matches_the_predictor(mask_keypoint, mask_keypoint_onnx, images, assert_same):
    detector, reference = load_onnx(mask_keypoint_onnx), predictor(mask_keypoint)
    expected = reference(images)  # a list: images 0, 2 and 3 (padded to 128 x 96) share a batch
    assert [len(r) for r in expected][2] == 0 and all(len(r) > 0 for i, r in enumerate(expected) if i != 2)
    for actual, wanted in zip(detector(images), expected):  # batched the same way
        assert_same(actual, wanted)
    for image, wanted in zip(images, expected):  # one at a time
        assert_same(detector(image), wanted)
    first = detector(images[0])
    assert first.get_field("mask").dtype == torch.bool and first.get_field("mask").shape[-2:] == (120, 90)
    assert first.get_field("keypoints").keypoints.shape[1:] == (17, 3)


def test_score_and_mask_thresholds_as_the_predictor(mask_keypoint, mask_keypoint_onnx, images, assert_same):
    detector = load_onnx(mask_keypoint_onnx, score_threshold=0.6, mask_threshold=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = Predictor(mask_keypoint.cfg, weights=mask_keypoint.weights, score_threshold=0.6, mask_threshold=-1)
    actual, expected = detector(images[1]), reference(images[1])
    assert 0 < len(expected) < len(predictor(mask_keypoint)(images[1]))  # the threshold dropped some
    assert actual.get_field("mask").dtype == torch.uint8  # heat maps 0..255
    assert_same(actual, expected, mask_tolerance=1.0)  # uint8 probabilities: compared below
    diff = (actual.get_field("mask").int() - expected.get_field("mask").int()).abs()
    assert diff.max().item() <= 1  # probability * 255 truncated: float rounding may move it one step


def test_a_batch_of_different_sizes_equals_the_eager_model(mask_keypoint, mask_keypoint_onnx, make_noise_image):
    # The graph clips and pools each image by its own size in a zero-padded batch.
    transform = build_transforms(mask_keypoint.cfg, is_train=False)
    sizes = ((96, 128), (90, 100), (70, 120))
    tensors = [deploy_inputs.preprocess(transform, make_noise_image(h, w, i))[0] for i, (h, w) in enumerate(sizes)]
    images, image_sizes = deploy_inputs.batch(tensors, 32)
    session = onnxruntime.InferenceSession(mask_keypoint_onnx, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"images": images.numpy(), "image_sizes": image_sizes.numpy()})))
    with torch.no_grad():
        expected = mask_keypoint.model(ImageList(images, [tuple(s) for s in image_sizes.tolist()]))
    assert got["batch_index"].tolist() == sum(([i] * len(e) for i, e in enumerate(expected)), [])
    assert all(len(e) > 0 for e in expected)
    boxes = torch.cat([e.bbox for e in expected])
    torch.testing.assert_close(torch.from_numpy(got["boxes"]), boxes, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(got["scores"]), torch.cat([e.get_field("scores") for e in expected]))
    assert got["labels"].tolist() == torch.cat([e.get_field("labels") for e in expected]).tolist()
    masks = torch.cat([e.get_field("mask") for e in expected])
    torch.testing.assert_close(torch.from_numpy(got["masks"]), masks, atol=1e-3, rtol=1e-3)
    assert got["keypoint_heatmaps"].shape == (len(boxes), 17, 56, 56)
    for image, e in zip(range(3), expected):  # boxes stay inside their own image
        rows = got["batch_index"] == image
        width, height = e.size
        assert (got["boxes"][rows][:, 2] <= width - 1).all() and (got["boxes"][rows][:, 3] <= height - 1).all()


def test_c4_mask_rcnn_with_another_number_of_classes(c4_mask, c4_mask_onnx, images, assert_same):
    detector, reference = load_onnx(c4_mask_onnx), predictor(c4_mask)
    expected = reference(images)
    assert len(expected[2]) == 0 and len(expected[0]) > 0
    labels = torch.cat([r.get_field("labels") for r in expected])
    assert labels.max().item() > 4  # classes beyond the other model's
    for actual, wanted in zip(detector(images), expected):
        assert_same(actual, wanted)
        assert set(actual.fields()) == {"scores", "labels", "mask"}


def test_file_holds_only_standard_onnx_ops(mask_keypoint, mask_keypoint_onnx):
    heads = mask_keypoint.cfg.MODEL
    # (output size, sampling ratio) of each head's pooler; 0 = adaptive (the keypoint head's default).
    poolers = {
        (h.POOLER_RESOLUTION, h.POOLER_SAMPLING_RATIO)
        for h in (heads.ROI_BOX_HEAD, heads.ROI_MASK_HEAD, heads.ROI_KEYPOINT_HEAD)
    }
    model = onnx.load(mask_keypoint_onnx)
    onnx.checker.check_model(model)
    ops = {(node.domain, node.op_type) for node in model.graph.node}
    assert {domain for domain, _ in ops} <= {"", "ai.onnx"}, ops
    assert ("", "NonMaxSuppression") in ops and ("", "RoiAlign") in ops
    for node in model.graph.node:
        if node.op_type == "RoiAlign":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attributes["coordinate_transformation_mode"] == b"output_half_pixel"
            assert (attributes["output_height"], attributes["sampling_ratio"]) in poolers, attributes
            assert attributes["output_width"] == attributes["output_height"]
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["maskrcnn_benchmark.image_size"] == "dynamic"
    assert "MASK_ON: true" in metadata["maskrcnn_benchmark.config"]


def test_too_small_input_fails_clearly(mask_keypoint_onnx, make_noise_image):
    detector = load_onnx(mask_keypoint_onnx)
    with pytest.raises(ValueError, match="smaller than the exported graph accepts"):
        detector(make_noise_image(40, 200, 0))  # resized to 32 x 160, padded 32 x 160: below 96


def test_image_without_detections_keeps_every_field(mask_keypoint_onnx, images):
    result = load_onnx(mask_keypoint_onnx)(images[2])
    assert len(result) == 0
    assert result.get_field("mask").shape == (0, 1, 130, 110)
    assert result.get_field("keypoints").keypoints.shape == (0, 17, 3)
    assert np.asarray(result.bbox).shape == (0, 4)


def test_masks_pasted_by_the_model_config(mask_keypoint, mask_keypoint_onnx, images, assert_same):
    # POSTPROCESS_MASKS only changes the pasting (the file's masks are probabilities either way):
    # the eager model pastes at its input size, the Predictor scales to the image.
    detector = load_onnx(mask_keypoint_onnx)
    detector.cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = True
    cfg = mask_keypoint.cfg.clone()
    cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = Predictor(cfg, weights=mask_keypoint.weights)
    actual, expected = detector(images[0]), reference(images[0])
    assert_same(actual, expected)
    assert actual.get_field("mask").shape[-2:] == (120, 90)
