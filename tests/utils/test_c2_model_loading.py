"""Detectron .pkl weights: restricted unpickling and the renaming rules, end to end on a backbone."""

import os
import pickle

import numpy as np
import pytest
import torch

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.modeling.backbone import build_backbone
from maskrcnn_benchmark.utils.c2_model_loading import UnsafePickleError, load_c2_format, load_c2_pickle
from maskrcnn_benchmark.utils.model_serialization import load_state_dict
from maskrcnn_benchmark.utils.weights_file import CheckpointFileError, CheckpointNotFoundError

BLOCKS = {2: 3, 3: 4, 4: 6, 5: 3}  # R-50 blocks per res stage


def _detectron_r50_fpn_blobs(rng):
    """Blob names as Detectron writes them for an R-50-FPN body, with shapes of our model."""
    blobs = {}

    def put(name, *shape):
        blobs[name] = rng.standard_normal(shape).astype(np.float32)

    put("conv1_w", 64, 3, 7, 7)
    put("res_conv1_bn_s", 64)
    put("res_conv1_bn_b", 64)
    in_ch = 64
    for stage, count in BLOCKS.items():
        width, out = 64 * 2 ** (stage - 2), 256 * 2 ** (stage - 2)
        for b in range(count):
            p = f"res{stage}_{b}_"
            if b == 0:
                put(p + "branch1_w", out, in_ch, 1, 1)
                put(p + "branch1_bn_s", out)
                put(p + "branch1_bn_b", out)
            put(p + "branch2a_w", width, in_ch if b == 0 else out, 1, 1)
            put(p + "branch2b_w", width, width, 3, 3)
            put(p + "branch2c_w", out, width, 1, 1)
            for branch, ch in (("2a", width), ("2b", width), ("2c", out)):
                put(p + f"branch{branch}_bn_s", ch)
                put(p + f"branch{branch}_bn_b", ch)
        in_ch = out
    for stage in (2, 3, 4, 5):
        last = BLOCKS[stage] - 1
        lateral = "_lateral" if stage < 5 else ""
        put(f"fpn_inner_res{stage}_{last}_sum{lateral}_w", 256, 256 * 2 ** (stage - 2), 1, 1)
        put(f"fpn_inner_res{stage}_{last}_sum{lateral}_b", 256)
        put(f"fpn_res{stage}_{last}_sum_w", 256, 256, 3, 3)
        put(f"fpn_res{stage}_{last}_sum_b", 256)
    put("res2_0_branch2a_w_momentum", 64, 64, 1, 1)  # optimizer state: dropped
    return blobs


@pytest.fixture
def fpn_cfg():
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = "R-50-FPN"
    c.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 256
    return c


def test_detectron_pkl_fills_every_backbone_tensor(tmp_path, fpn_cfg):
    blobs = _detectron_r50_fpn_blobs(np.random.default_rng(0))
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    model = build_backbone(fpn_cfg)
    loaded = load_c2_format(fpn_cfg, str(path))["model"]
    assert not any("momentum" in k for k in loaded)
    assert load_state_dict(model, loaded, require="all").complete  # FrozenBN statistics included
    sd = model.state_dict()
    torch.testing.assert_close(sd["body.stem.conv1.weight"], torch.from_numpy(blobs["conv1_w"]))
    torch.testing.assert_close(sd["body.stem.bn1.weight"], torch.from_numpy(blobs["res_conv1_bn_s"]))
    torch.testing.assert_close(sd["body.layer3.5.bn3.weight"], torch.from_numpy(blobs["res4_5_branch2c_bn_s"]))
    torch.testing.assert_close(sd["body.layer1.0.downsample.1.bias"], torch.from_numpy(blobs["res2_0_branch1_bn_b"]))
    torch.testing.assert_close(sd["fpn.fpn_inner4.weight"], torch.from_numpy(blobs["fpn_inner_res5_2_sum_w"]))
    torch.testing.assert_close(sd["fpn.fpn_inner1.bias"], torch.from_numpy(blobs["fpn_inner_res2_2_sum_lateral_b"]))
    torch.testing.assert_close(sd["fpn.fpn_layer2.weight"], torch.from_numpy(blobs["fpn_res3_3_sum_w"]))
    assert torch.equal(sd["body.layer2.1.bn2.running_mean"], torch.zeros(128))  # AffineChannel: identity statistics
    assert torch.equal(sd["body.stem.bn1.running_var"], torch.ones(64))
    # Every weight/bias came from some blob (the running statistics are not in a pkl).
    values = {id(v) for v in loaded.values()}
    blob_sums = sorted(float(v.sum()) for v in loaded.values())
    for key, value in sd.items():
        if key.endswith(("running_mean", "running_var")):
            continue
        assert any(abs(float(value.sum()) - s) < 1e-3 for s in blob_sums), key
    assert values


def test_plain_dict_pickle_without_blobs_key(tmp_path):
    path = tmp_path / "w.pkl"
    with open(path, "wb") as f:
        pickle.dump({"conv1_w": np.ones((2, 2), np.float32)}, f)
    assert list(load_c2_pickle(str(path))) == ["conv1_w"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def test_malicious_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": {"conv1_w": evil}}, f)
    with pytest.raises(UnsafePickleError, match="evil.pkl.*refusing to load"):
        load_c2_pickle(str(path))
    assert not marker.exists()


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "cut.pkl"
    data = pickle.dumps({"blobs": {"conv1_w": np.ones((64, 3, 7, 7), np.float32)}}, protocol=2)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="cut.pkl.*truncated or corrupt"):
        load_c2_pickle(str(path))


def test_unknown_depth_is_explained(tmp_path, fpn_cfg):
    path = tmp_path / "w.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": {}}, f)
    fpn_cfg.MODEL.BACKBONE.CONV_BODY = "R-18-FPN"
    with pytest.raises(KeyError, match="R-18-FPN"):
        load_c2_format(fpn_cfg, str(path))


def _pickled(obj):
    return pickle.dumps(obj, protocol=2)


GOOD = _pickled({"blobs": {"conv1_w": np.ones((64, 3, 7, 7), np.float32)}})


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty (0 bytes)"),
        (GOOD[:-1], "truncated or corrupt"),
        (bytes(range(256)) * 4, "truncated or corrupt"),
        (b"blobs:\n  conv1_w: [1, 2]\n", "a text file (starting 'blobs:')"),
        (b"\x93NUMPY\x01\x00" + bytes(60), "a NumPy .npy array"),
        (_pickled([1, 2]), "expected a dict of blobs, got list"),
        (_pickled({"blobs": [np.ones(2)]}), "expected a dict of blobs, got list"),
        (_pickled({"blobs": {"conv1_w": "weights"}}), "blob 'conv1_w' is not a numeric array (str)"),
        (_pickled({"blobs": {"conv1_w": np.array(["a"])}}), "blob 'conv1_w' is not a numeric array (array of <U1)"),
        (_pickled({"blobs": {7: np.ones(2)}}), "blob name 7 is not a string"),
    ],
)
def test_broken_pickles_raise_one_error_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointFileError) as info:
        load_c2_pickle(str(path))
    assert str(info.value).startswith(str(path)) and expected in str(info.value)


def test_a_torch_checkpoint_named_pkl_and_other_non_files(tmp_path):
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "model.pkl")
    with pytest.raises(CheckpointFileError, match=r"model\.pkl is a PyTorch checkpoint .* name it \*\.pth"):
        load_c2_pickle(str(tmp_path / "model.pkl"))
    os.makedirs(tmp_path / "folder.pkl")
    with pytest.raises(CheckpointFileError, match="is a directory"):
        load_c2_pickle(str(tmp_path / "folder.pkl"))
    with pytest.raises(CheckpointNotFoundError, match="nope.pkl"):
        load_c2_pickle(str(tmp_path / "nope.pkl"))
    with pytest.raises(FileNotFoundError):  # still what older callers caught
        load_c2_pickle(str(tmp_path / "nope.pkl"))


def test_a_detectron_detector_covers_the_whole_model_but_its_anchors(tmp_path):
    from maskrcnn_benchmark.modeling.detector import build_detection_model
    from maskrcnn_benchmark.utils.checkpoint import DetectronCheckpointer
    from maskrcnn_benchmark.utils.model_serialization import WeightsCoverageError

    c = cfg.clone()
    c.merge_from_file(os.path.join(os.path.dirname(__file__), "..", "..", "configs", "rpn_R_50_FPN_1x.yaml"))
    c.merge_from_list(["MODEL.DEVICE", "cpu"])
    model = build_detection_model(c)
    anchors = {k: v.clone() for k, v in model.state_dict().items() if "anchor_generator" in k}
    assert anchors  # buffers of the model that Detectron files do not hold
    rng = np.random.default_rng(1)
    blobs = _detectron_r50_fpn_blobs(rng)
    rpn = {
        "conv_rpn_fpn2_w": (256, 256, 3, 3),
        "conv_rpn_fpn2_b": (256,),
        "rpn_cls_logits_fpn2_w": (3, 256, 1, 1),
        "rpn_cls_logits_fpn2_b": (3,),
        "rpn_bbox_pred_fpn2_w": (12, 256, 1, 1),
        "rpn_bbox_pred_fpn2_b": (12,),
    }
    with open(tmp_path / "backbone_only.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    blobs.update({name: rng.standard_normal(shape).astype(np.float32) for name, shape in rpn.items()})
    with open(tmp_path / "model_final.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    checkpointer = DetectronCheckpointer(c, model)
    checkpointer.load(str(tmp_path / "model_final.pkl"), require="all")
    assert checkpointer.last_load_result.complete
    sd = model.state_dict()
    torch.testing.assert_close(sd["rpn.head.bbox_pred.weight"], torch.from_numpy(blobs["rpn_bbox_pred_fpn2_w"]))
    assert all(torch.equal(sd[k], v) for k, v in anchors.items())
    with pytest.raises(
        WeightsCoverageError,
        match=(
            r"6 of \d+ model tensors .*\n  not in the file \(6\): "
            r"rpn\.head\.conv\.weight, .*rpn\.head\.bbox_pred\.bias\n"
        ),
    ):
        DetectronCheckpointer(c, model).load(str(tmp_path / "backbone_only.pkl"), require="all")


def test_deformable_stages_take_the_imagenet_conv2_weights(tmp_path, fpn_cfg):
    blobs = _detectron_r50_fpn_blobs(np.random.default_rng(0))
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    fpn_cfg.MODEL.RESNETS.STAGE_WITH_DCN = (False, True, True, True)
    fpn_cfg.MODEL.RESNETS.WITH_MODULATED_DCN = True
    model = build_backbone(fpn_cfg)
    loaded = load_c2_format(fpn_cfg, str(path))["model"]
    assert "layer1.0.conv2.weight" in loaded and "layer2.0.conv2.conv.weight" in loaded
    result = load_state_dict(model, loaded)
    sd = model.state_dict()
    torch.testing.assert_close(sd["body.layer2.1.conv2.conv.weight"], torch.from_numpy(blobs["res3_1_branch2b_w"]))
    torch.testing.assert_close(sd["body.layer1.2.conv2.weight"], torch.from_numpy(blobs["res2_2_branch2b_w"]))
    # Only the offset predictors are not in an ImageNet model.
    assert result.missing and all(".conv2.offset." in key for key in result.missing)
