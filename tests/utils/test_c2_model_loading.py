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
    load_state_dict(model, loaded)
    sd = model.state_dict()
    torch.testing.assert_close(sd["body.stem.conv1.weight"], torch.from_numpy(blobs["conv1_w"]))
    torch.testing.assert_close(sd["body.stem.bn1.weight"], torch.from_numpy(blobs["res_conv1_bn_s"]))
    torch.testing.assert_close(sd["body.layer3.5.bn3.weight"], torch.from_numpy(blobs["res4_5_branch2c_bn_s"]))
    torch.testing.assert_close(sd["body.layer1.0.downsample.1.bias"], torch.from_numpy(blobs["res2_0_branch1_bn_b"]))
    torch.testing.assert_close(sd["fpn.fpn_inner4.weight"], torch.from_numpy(blobs["fpn_inner_res5_2_sum_w"]))
    torch.testing.assert_close(sd["fpn.fpn_inner1.bias"], torch.from_numpy(blobs["fpn_inner_res2_2_sum_lateral_b"]))
    torch.testing.assert_close(sd["fpn.fpn_layer2.weight"], torch.from_numpy(blobs["fpn_res3_3_sum_w"]))
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
