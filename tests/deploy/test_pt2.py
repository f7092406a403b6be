"""AOTInductor packages (fixed 160 x 160 input, dynamic batch) against the eager model on the same
padded inputs: boxes, scores, labels, masks and keypoints on images of different sizes (one without
detections), batched, for a model with another number of classes; and the package runs in a process
that never imports this library's Python code (only its compiled ops)."""

import json
import os
import subprocess
import sys

import torch

from maskrcnn_benchmark.data.transforms import build_transforms
from maskrcnn_benchmark.deploy import inputs as deploy_inputs
from maskrcnn_benchmark.deploy import load_pt2, ops_library_path
from maskrcnn_benchmark.deploy import outputs as deploy_outputs
from maskrcnn_benchmark.modeling.roi_heads.mask_head.inference import Masker
from maskrcnn_benchmark.structures.image_list import ImageList

FIXED = (160, 160)


def eager_on_fixed_size(setup, images):
    """What the eager model gives for `images` padded together to FIXED (the pt2 input), through the
    Predictor's post-processing (deploy/outputs.py, checked against the Predictor in test_onnx.py)."""
    transform = build_transforms(setup.cfg, is_train=False)
    prepared = [deploy_inputs.preprocess(transform, image) for image in images]
    batch, sizes = deploy_inputs.batch([p[0] for p in prepared], 32, FIXED)
    with torch.no_grad():
        predictions = setup.model(ImageList(batch, [tuple(s) for s in sizes.tolist()]))
    masker = Masker(0.5, padding=1)
    return [
        deploy_outputs.finalize(p, original, setup.cfg, 0.0, masker) for p, (_, original) in zip(predictions, prepared)
    ]


def test_mask_keypoint_package_matches_eager(mask_keypoint, mask_keypoint_pt2, images, assert_same):
    detector = load_pt2(mask_keypoint_pt2)
    assert detector.fixed_size == FIXED
    batched = detector(images)  # one run of 4 images: they all pad to 160 x 160
    for image, actual in zip(images, batched):
        (expected,) = eager_on_fixed_size(mask_keypoint, [image])
        assert_same(detector(image), expected)  # alone, batch of 1
        assert_same(actual, expected)  # in the batch: nothing depends on the other images
    assert len(batched[2]) == 0 and all(len(r) > 0 for i, r in enumerate(batched) if i != 2)
    assert batched[0].get_field("mask").shape[1:] == (1, 120, 90)
    assert batched[0].get_field("keypoints").keypoints.shape[1:] == (17, 3)


def test_c4_mask_rcnn_with_another_number_of_classes(c4_mask, c4_mask_pt2, images, assert_same):
    detector = load_pt2(c4_mask_pt2)
    expected = eager_on_fixed_size(c4_mask, images)
    assert len(expected[2]) == 0 and torch.cat([e.get_field("labels") for e in expected]).max() > 4
    for actual, wanted in zip(detector(images), expected):
        assert_same(actual, wanted)


_STANDALONE = """
import json, sys, torch
torch.ops.load_library(sys.argv[1])
model = torch._inductor.aoti_load_package(sys.argv[2])
images, image_sizes = torch.load(sys.argv[3])
outputs = model(images, image_sizes)
torch.save(list(outputs), sys.argv[4])
report = {"metadata_keys": sorted(model.get_metadata()), "library_imported": "maskrcnn_benchmark" in sys.modules}
print(json.dumps(report))
"""


def test_package_runs_without_the_library_python_code(mask_keypoint, mask_keypoint_pt2, images, tmp_path):
    transform = build_transforms(mask_keypoint.cfg, is_train=False)
    tensors = [deploy_inputs.preprocess(transform, image)[0] for image in images]
    batch = deploy_inputs.batch(tensors, 32, FIXED)
    torch.save(batch, tmp_path / "inputs.pt")
    # A clean process in another folder: the checkout is not importable from there.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", _STANDALONE, ops_library_path(), mask_keypoint_pt2, "inputs.pt", "outputs.pt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert not report["library_imported"]
    assert "maskrcnn_benchmark.config" in report["metadata_keys"]
    got = torch.load(tmp_path / "outputs.pt")
    with torch.no_grad():
        expected = mask_keypoint.model(ImageList(batch[0], [tuple(s) for s in batch[1].tolist()]))
    assert got[3].tolist() == sum(([i] * len(e) for i, e in enumerate(expected)), [])
    torch.testing.assert_close(got[0], torch.cat([e.bbox for e in expected]), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(got[4], torch.cat([e.get_field("mask") for e in expected]), atol=1e-3, rtol=1e-3)
