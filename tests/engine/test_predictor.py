"""Predictor and COCODemo on a tiny randomly initialised Mask R-CNN (CPU): input types and sizes,
batching, original-size outputs, weights and class names, the demo's drawing."""

import importlib.util
import json
import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.engine.class_names import COCO_CATEGORIES, resolve_class_names
from maskrcnn_benchmark.engine.predictor import COCODemo, Predictor, default_weights
from maskrcnn_benchmark.modeling.detector import build_detection_model
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import to_image_list
from maskrcnn_benchmark.utils.checkpoint import Checkpointer, WeightsCoverageError

# Most tests run randomly initialised models on purpose (test_no_weights_warn_loudly checks the warning).
pytestmark = pytest.mark.filterwarnings("ignore:Predictor. no weights given:RuntimeWarning")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MASK_CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_mask_rcnn_R_18_FPN_cpu.yaml")
KEYPOINT_CONFIG = os.path.join(REPO, "configs", "cpu", "e2e_keypoint_rcnn_R_18_FPN_cpu.yaml")
TINY = [
    "MODEL.DEVICE",
    "cpu",
    "DTYPE",
    "float32",
    "MODEL.ROI_HEADS.SCORE_THRESH",
    "0.0",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMG",
    "8",
    "MODEL.RPN.PRE_NMS_TOP_N_TEST",
    "60",
    "MODEL.RPN.POST_NMS_TOP_N_TEST",
    "30",
    "MODEL.RPN.FPN_POST_NMS_TOP_N_TEST",
    "30",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "96",
    "TEST.IMS_PER_BATCH",
    "4",
]


def tiny_cfg(tmp_path, config=MASK_CONFIG, *opts):
    cfg = global_cfg.clone()
    cfg.merge_from_file(config)
    cfg.merge_from_list(TINY + ["OUTPUT_DIR", str(tmp_path / "output"), *map(str, opts)])
    return cfg


def save_random_model(cfg, folder, labels=None):
    """A checkpoint of a randomly initialised model (+ labels.json beside it): its path."""
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(1)
    model = build_detection_model(cfg)
    Checkpointer(model, save_dir=str(folder), save_to_disk=True).save("model")
    if labels is not None:
        with open(os.path.join(folder, "labels.json"), "w") as f:
            json.dump({"labels": labels}, f)
    return os.path.join(folder, "model.pth"), model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("predictor")
    cfg = tiny_cfg(tmp_path)
    weights, _ = save_random_model(cfg, tmp_path / "weights")
    return cfg, weights, Predictor(cfg, weights=weights)


def random_bgr(height, width, seed):
    return np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)


def assert_same(a: BoxList, b: BoxList, mask_tolerance=0.0):
    assert a.size == b.size and len(a) == len(b)
    torch.testing.assert_close(a.bbox, b.bbox, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(a.get_field("scores"), b.get_field("scores"), atol=1e-5, rtol=1e-4)
    assert torch.equal(a.get_field("labels"), b.get_field("labels"))
    differ = (a.get_field("mask") != b.get_field("mask")).float().mean().item()
    assert differ <= mask_tolerance


def test_single_image_in_its_original_size(setup):
    cfg, _, predictor = setup
    result = predictor(random_bgr(75, 100, 0))
    assert isinstance(result, BoxList) and result.size == (100, 75)
    assert set(result.fields()) == {"scores", "labels", "mask"}
    assert len(result) > 0 and result.bbox.device.type == "cpu"
    mask = result.get_field("mask")
    assert mask.dtype == torch.bool and mask.shape == (len(result), 1, 75, 100)
    scores = result.get_field("scores")
    assert torch.all(scores[:-1] >= scores[1:])  # sorted
    assert result.bbox[:, 2].max() <= 100 and result.bbox[:, 3].max() <= 75


def test_results_are_the_network_outputs_scaled_to_the_original_size(setup):
    cfg, _, predictor = setup
    image = random_bgr(150, 200, 1)  # network input 64 x 85 (short side 64)
    result = predictor(image)
    with torch.no_grad():
        raw = predictor.model(to_image_list([predictor.preprocess(image)], cfg.DATALOADER.SIZE_DIVISIBILITY))[0]
    assert raw.size != result.size
    order = torch.sort(raw.get_field("scores"), descending=True, stable=True).indices
    torch.testing.assert_close(result.bbox, raw[order].resize((200, 150)).bbox)


def test_batch_of_mixed_sizes_and_types_equals_one_by_one(setup, monkeypatch):
    _, _, predictor = setup
    bgr = [random_bgr(75, 100, 2), random_bgr(150, 200, 3), random_bgr(120, 170, 4), random_bgr(100, 60, 5)]
    images = [
        bgr[0],  # numpy BGR
        Image.fromarray(bgr[1][:, :, ::-1].copy()),  # PIL RGB
        torch.from_numpy(bgr[2][:, :, ::-1].copy()).permute(2, 0, 1),  # uint8 RGB tensor
        torch.from_numpy(bgr[3][:, :, ::-1].copy()).permute(2, 0, 1).float() / 255,  # float RGB tensor
    ]
    one_by_one = [predictor(image) for image in images]
    batch_sizes = []
    forward = predictor._predict_batch
    monkeypatch.setattr(predictor, "_predict_batch", lambda batch: batch_sizes.append(len(batch)) or forward(batch))
    batched = predictor(images)
    # the three landscape images share one padded input size (64 x 96), the portrait one runs alone
    assert sorted(batch_sizes) == [1, 3]
    assert [r.size for r in batched] == [(100, 75), (200, 150), (170, 120), (60, 100)]
    for a, b in zip(batched, one_by_one):
        assert a.get_field("mask").shape[-2:] == (a.size[1], a.size[0])
        assert_same(a, b, mask_tolerance=1e-3)
    assert predictor(tuple(images[:1]))[0].size == (100, 75)  # tuples are batches too
    assert predictor([]) == []


def test_bgr_numpy_pil_and_tensors_give_the_same_result(setup):
    _, _, predictor = setup
    bgr = random_bgr(90, 120, 6)
    rgb = bgr[:, :, ::-1].copy()
    reference = predictor(bgr)
    for image in (
        Image.fromarray(rgb),
        torch.from_numpy(rgb).permute(2, 0, 1),
        torch.from_numpy(rgb).permute(2, 0, 1).double() / 255,
    ):
        assert_same(predictor(image), reference)
    swapped = predictor(rgb)  # the same array read as BGR is another image
    assert not torch.equal(swapped.get_field("scores"), reference.get_field("scores"))


def test_grey_images_are_accepted(setup):
    _, _, predictor = setup
    grey = np.random.RandomState(7).randint(0, 256, (70, 90), dtype=np.uint8)
    assert_same(predictor(grey), predictor(Image.fromarray(grey)))


@pytest.mark.parametrize(
    "image, expected",
    [
        (np.zeros((20, 30, 3), dtype=np.float32), "uint8"),
        (np.zeros((20, 30, 4), dtype=np.uint8), "[H, W, 3]"),
        (torch.zeros((1, 3, 20, 30)), "list(batch)"),
        (torch.zeros((20, 30, 3), dtype=torch.uint8), "channels first"),
        (torch.full((3, 20, 30), 255.0), "0..1"),
        (torch.zeros((3, 20, 30), dtype=torch.int32), "uint8 or floating"),
        (np.zeros((0, 30, 3), dtype=np.uint8), "empty"),
        ("image.jpg", "got a str"),
    ],
)
def test_wrong_inputs_name_the_image_and_the_expectation(setup, image, expected):
    _, _, predictor = setup
    with pytest.raises(ValueError) as error:
        predictor([random_bgr(40, 50, 0), image])
    assert "image 1" in str(error.value) and expected in str(error.value)
    assert "BGR" in str(error.value)


def test_weights_must_cover_the_whole_model(setup, tmp_path, caplog):
    cfg, weights, _ = setup
    other_cfg = tiny_cfg(tmp_path, MASK_CONFIG, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3")
    with pytest.raises(WeightsCoverageError) as info:
        Predictor(other_cfg, weights=weights)  # weights of a 5-class model
    message = str(info.value)
    assert (
        "does not cover the whole model" in message and "cls_score.weight (model [3, 256] vs file [5, 256])" in message
    )
    assert "allow_random_weights=True" in message
    with caplog.at_level(logging.WARNING):
        predictor = Predictor(other_cfg, weights=weights, allow_random_weights=True)
    assert "keep RANDOM values" in caplog.text
    assert torch.equal(
        predictor.model.state_dict()["backbone.body.stem.conv1.weight"],
        torch.load(weights, weights_only=True)["model"]["backbone.body.stem.conv1.weight"],
    )
    # A backbone alone (e.g. ImageNet weights) is no model to predict with.
    backbone = {k: v for k, v in torch.load(weights, weights_only=True)["model"].items() if k.startswith("backbone.")}
    torch.save({"model": backbone}, tmp_path / "backbone.pth")
    with pytest.raises(WeightsCoverageError, match=r"not in the file \(\d+\): .*rpn\.head\.\*.*roi_heads"):
        Predictor(cfg, weights=str(tmp_path / "backbone.pth"))


def test_no_weights_warn_loudly(tmp_path):
    cfg = tiny_cfg(tmp_path)
    with pytest.warns(RuntimeWarning, match="no weights given .* RANDOM initialisation"):
        Predictor(cfg, weights="")
    with pytest.warns(RuntimeWarning, match="RANDOM"):
        Predictor(cfg)  # MODEL.WEIGHT is empty too


def test_empty_results_keep_every_field(tmp_path):
    cfg = tiny_cfg(tmp_path, MASK_CONFIG, "MODEL.ROI_HEADS.SCORE_THRESH", "1.0")
    predictor = Predictor(cfg, weights="")
    results = predictor([random_bgr(50, 70, 0), random_bgr(40, 40, 1)])
    for result, (w, h) in zip(results, [(70, 50), (40, 40)]):
        assert len(result) == 0 and result.size == (w, h)
        assert set(result.fields()) == {"scores", "labels", "mask"}
        assert result.get_field("mask").shape == (0, 1, h, w)


def test_score_threshold_filters(setup):
    cfg, weights, predictor = setup
    image = random_bgr(64, 64, 8)
    everything = predictor(image)
    threshold = float(everything.get_field("scores")[2])
    kept = Predictor(cfg, weights=weights, score_threshold=threshold)(image)
    assert len(kept) == 3 and torch.all(kept.get_field("scores") >= threshold)


def test_three_classes_with_labels_json_next_to_the_weights(tmp_path):
    cfg = tiny_cfg(tmp_path, MASK_CONFIG, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "3")
    labels = ["__background", "cat", "dog"]
    weights, model = save_random_model(cfg, tmp_path / "run", labels)
    predictor = Predictor(cfg, weights=weights)
    assert predictor.class_names == labels
    for key, value in model.state_dict().items():  # the checkpoint was loaded
        assert torch.equal(predictor.model.state_dict()[key], value), key
    result = predictor(random_bgr(60, 80, 9))
    assert set(result.get_field("labels").tolist()) <= {1, 2}
    # labels.json of OUTPUT_DIR when the weights' folder has none
    os.remove(tmp_path / "run" / "labels.json")
    os.makedirs(cfg.OUTPUT_DIR)
    with open(os.path.join(cfg.OUTPUT_DIR, "labels.json"), "w") as f:
        json.dump({"labels": ["__background", "a", "b"]}, f)
    assert Predictor(cfg, weights=weights).class_names == ["__background", "a", "b"]
    # a labels.json of another model is ignored
    with open(os.path.join(cfg.OUTPUT_DIR, "labels.json"), "w") as f:
        json.dump({"labels": ["__background", "a"]}, f)
    assert Predictor(cfg, weights=weights).class_names == ["__background", "class 1", "class 2"]
    # explicit names win, with or without the background
    assert Predictor(cfg, weights=weights, class_names=["x", "y"]).class_names == ["__background", "x", "y"]
    with pytest.raises(ValueError, match="3 classes"):
        Predictor(cfg, weights=weights, class_names=["x"])


def test_default_class_names(tmp_path):
    cfg = tiny_cfg(tmp_path, MASK_CONFIG, "MODEL.ROI_BOX_HEAD.NUM_CLASSES", "81")
    assert resolve_class_names(cfg) == COCO_CATEGORIES and len(COCO_CATEGORIES) == 81
    assert resolve_class_names(tiny_cfg(tmp_path, KEYPOINT_CONFIG)) == ["__background", "person"]
    assert resolve_class_names(tiny_cfg(tmp_path)) == ["__background"] + [f"class {k}" for k in range(1, 5)]


def test_weights_default_to_model_weight_and_last_checkpoint(setup, tmp_path):
    cfg, weights, reference = setup
    cfg = cfg.clone()
    cfg.merge_from_list(["MODEL.WEIGHT", weights, "OUTPUT_DIR", str(tmp_path / "empty")])
    predictor = Predictor(cfg)
    assert predictor.weights == weights
    image = random_bgr(64, 80, 10)
    assert_same(predictor(image), reference(image))
    assert default_weights(cfg) == weights
    cfg.merge_from_list(["OUTPUT_DIR", os.path.dirname(weights)])  # holds last_checkpoint
    assert os.path.samefile(default_weights(cfg), weights)


def test_keypoints_are_scaled_to_the_original_image(tmp_path):
    cfg = tiny_cfg(tmp_path, KEYPOINT_CONFIG)
    predictor = Predictor(cfg, weights="")
    image = random_bgr(150, 200, 11)
    result = predictor(image)
    keypoints = result.get_field("keypoints")
    assert keypoints.size == (200, 150) and keypoints.keypoints.shape == (len(result), 17, 3)
    assert keypoints.get_field("logits").shape == (len(result), 17)
    with torch.no_grad():
        raw = predictor.model(to_image_list([predictor.preprocess(image)], cfg.DATALOADER.SIZE_DIVISIBILITY))[0]
    order = torch.sort(raw.get_field("scores"), descending=True, stable=True).indices
    scale = torch.tensor([200 / raw.size[0], 150 / raw.size[1]])
    expected = raw[order].get_field("keypoints").keypoints[..., :2] * scale
    torch.testing.assert_close(keypoints.keypoints[..., :2], expected)
    empty = Predictor(tiny_cfg(tmp_path, KEYPOINT_CONFIG, "MODEL.ROI_HEADS.SCORE_THRESH", "1.0"), weights="")(image)
    assert empty.get_field("keypoints").keypoints.shape == (0, 17, 3)


def test_bfloat16_autocast_runs(tmp_path):
    predictor = Predictor(tiny_cfg(tmp_path, MASK_CONFIG, "DTYPE", "bfloat16"), weights="")
    result = predictor(random_bgr(48, 64, 12))
    assert result.bbox.dtype == torch.float32 and result.get_field("mask").shape[-2:] == (48, 64)


def test_masks_pasted_by_the_model_are_scaled_to_the_original_size(setup):
    cfg, weights, reference = setup
    cfg = cfg.clone()
    cfg.merge_from_list(["MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS", "True"])
    image = random_bgr(150, 200, 14)
    result = Predictor(cfg, weights=weights)(image)
    masks = result.get_field("mask")
    assert masks.dtype == torch.bool and masks.shape == (len(result), 1, 150, 200)
    expected = reference(image).get_field("mask")  # pasted at the original size directly
    assert (masks != expected).float().mean() < 0.05


# ------------------------------------------------------------------------------------------- COCODemo


def crafted_predictions(width=160, height=120):
    boxes = BoxList(
        torch.tensor([[20.0, 30.0, 70.0, 80.0], [100.0, 10.0, 140.0, 50.0], [0.0, 0.0, 5.0, 5.0]]), (width, height)
    )
    boxes.add_field("scores", torch.tensor([0.75, 0.9, 0.1]))
    boxes.add_field("labels", torch.tensor([1, 2, 3]))
    masks = torch.zeros((3, 1, height, width), dtype=torch.bool)
    masks[0, 0, 35:75, 25:65] = True
    masks[1, 0, 15:45, 105:135] = True
    boxes.add_field("mask", masks)
    return boxes


@pytest.fixture(scope="module")
def demo(setup):
    cfg, weights, _ = setup
    return COCODemo(cfg, confidence_threshold=0.7, weight_loading=weights)


def test_coco_demo_draws_where_the_detections_are(demo, monkeypatch):
    image = np.full((120, 160, 3), 30, dtype=np.uint8)
    monkeypatch.setattr(demo, "compute_prediction", lambda original: crafted_predictions())
    out = demo.run_on_opencv_image(image)
    changed = np.any(out != image, axis=2)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert changed[30:81, 20:71].any() and changed[10:51, 100:141].any()
    assert not changed[90:, :].any() and not changed[55:, 75:95].any()  # far from boxes and texts
    assert not changed[0:6, 0:6].any()  # the detection below the threshold is not drawn
    assert (image == 30).all()  # the input is left alone


def test_coco_demo_end_to_end_and_heat_maps(demo, setup):
    cfg, weights, _ = setup
    image = random_bgr(90, 120, 13)
    demo_all = COCODemo(cfg, confidence_threshold=0.0, weight_loading=weights)
    out = demo_all.run_on_opencv_image(image)
    assert out.shape == image.shape and (out != image).any()
    prediction = demo_all.compute_prediction(image)
    assert prediction.size == (120, 90) and prediction.get_field("mask").dtype == torch.bool
    assert demo_all.CATEGORIES == ["__background"] + [f"class {k}" for k in range(1, 5)]
    assert demo_all.build_transform()(image).shape[0] == 3
    assert [o.shape for o in demo_all.run_on_opencv_images([image, image[:50]])] == [(90, 120, 3), (50, 120, 3)]
    heat = COCODemo(cfg, confidence_threshold=0.0, show_mask_heatmaps=True, masks_per_dim=3, weight_loading=weights)
    assert heat.compute_prediction(image).get_field("mask").dtype == torch.uint8  # probabilities 0..255
    assert heat.run_on_opencv_image(image).shape == image.shape


def test_select_top_predictions_sorts_and_thresholds(demo):
    top = demo.select_top_predictions(crafted_predictions())
    assert top.get_field("scores").tolist() == pytest.approx([0.9, 0.75])
    assert top.get_field("labels").tolist() == [2, 1]
    assert len(demo.select_top_predictions(crafted_predictions()[[2]])) == 0


def test_create_mask_montage_and_colors(demo):
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    assert demo.create_mask_montage(image, crafted_predictions()).shape == (120, 160, 3)
    colors = demo.compute_colors_for_labels(torch.tensor([1, 2]))
    assert colors.shape == (2, 3)
    assert colors[0].tolist() == [(2**25 - 1) % 255, (2**15 - 1) % 255, (2**21 - 1) % 255]


def test_demo_predictor_shim_exports_the_same_class():
    spec = importlib.util.spec_from_file_location("demo_predictor", os.path.join(REPO, "demo", "predictor.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.COCODemo is COCODemo and callable(module.vis_keypoints)
