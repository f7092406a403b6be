"""Checkpointer: round trips, last_checkpoint, atomic saves, safe loading, catalog/URL weights."""
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.utils import checkpoint as ckpt_module
from maskrcnn_benchmark.utils.checkpoint import Checkpointer, DetectronCheckpointer, load_checkpoint_file
from maskrcnn_benchmark.utils.model_zoo import cache_url, cached_path_for


def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _training_state():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def test_save_and_resume_restores_everything(tmp_path):
    model, opt, sched = _training_state()
    Checkpointer(model, opt, sched, str(tmp_path), save_to_disk=True).save("model_0000010", iteration=10)
    assert (tmp_path / "model_0000010.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "model_0000010.pth")

    model2 = _model()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.5, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2)
    extra = Checkpointer(model2, opt2, sched2, str(tmp_path)).load("ignored-because-last-checkpoint-exists")
    assert extra == {"iteration": 10}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert sched2.state_dict() == sched.state_dict()


def test_no_save_without_dir_or_flag(tmp_path):
    model = _model()
    Checkpointer(model, save_dir="", save_to_disk=True).save("x")
    Checkpointer(model, save_dir=str(tmp_path), save_to_disk=False).save("x")
    assert list(tmp_path.iterdir()) == []
    assert Checkpointer(model, save_dir=str(tmp_path)).load(None) == {}


def test_bare_and_prefixed_state_dicts(tmp_path):
    src = _model()
    torch.save(src.state_dict(), tmp_path / "bare.pth")
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "ddp.pth")
    for name in ("bare.pth", "ddp.pth"):
        dst = _model()
        assert Checkpointer(dst).load(str(tmp_path / name)) == {}
        for a, b in zip(src.state_dict().values(), dst.state_dict().values()):
            assert torch.equal(a, b)


def test_use_latest_false_loads_the_given_file(tmp_path):
    a, b = _model(), _model()
    Checkpointer(a, save_dir=str(tmp_path), save_to_disk=True).save("a")
    torch.save(b.state_dict(), tmp_path / "b.pth")
    dst = _model()
    Checkpointer(dst, save_dir=str(tmp_path)).load(str(tmp_path / "b.pth"), use_latest=False)
    assert torch.equal(dst[0].weight, b[0].weight)


def test_moved_output_folder_still_resumes(tmp_path):
    os.makedirs(tmp_path / "run")
    Checkpointer(_model(), save_dir=str(tmp_path / "run"), save_to_disk=True).save("model_final")
    os.rename(tmp_path / "run", tmp_path / "moved")
    ck = Checkpointer(_model(), save_dir=str(tmp_path / "moved"))
    assert ck.get_checkpoint_file() == str(tmp_path / "moved" / "model_final.pth")
    ck.load()


def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = _model()
    ck = Checkpointer(model, save_dir=str(tmp_path), save_to_disk=True)
    ck.save("model_0000001", iteration=1)
    good = (tmp_path / "model_0000001.pth").read_bytes()

    def dying_save(obj, f):
        f.write(b"partial bytes")
        raise KeyboardInterrupt("killed during save")

    monkeypatch.setattr(ckpt_module.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save("model_0000001", iteration=2)
    with pytest.raises(KeyboardInterrupt):
        ck.save("model_0000002", iteration=2)
    assert (tmp_path / "model_0000001.pth").read_bytes() == good
    assert not (tmp_path / "model_0000002.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text().endswith("model_0000001.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    torch.save({"model": _model().state_dict()}, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match=r"cut\.pth: cannot read checkpoint \(truncated or corrupt\?\)"):
        Checkpointer(_model()).load(str(tmp_path / "cut.pth"))


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        Checkpointer(_model()).load(str(tmp_path / "nope.pth"))


class Payload:
    """A pickled object that runs code when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": _model().state_dict(), "evil": Payload(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(pickle.UnpicklingError, match="MASKRCNN_TRUST_CHECKPOINTS"):
        Checkpointer(_model()).load(str(tmp_path / "evil.pth"))
    assert not marker.exists()


class LegacyExtra:
    pass


def test_trusted_opt_in_loads_legacy_objects(tmp_path, monkeypatch):
    torch.save({"model": _model().state_dict(), "extra": LegacyExtra()}, tmp_path / "legacy.pth")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(str(tmp_path / "legacy.pth"))
    assert isinstance(load_checkpoint_file(str(tmp_path / "legacy.pth"), trusted=True)["extra"], LegacyExtra)
    monkeypatch.setenv("MASKRCNN_TRUST_CHECKPOINTS", "1")
    assert "extra" in Checkpointer(_model()).load(str(tmp_path / "legacy.pth"))


def test_offline_url_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_MODEL_ZOO", str(tmp_path / "zoo"))
    url = "http://127.0.0.1:9/detectron/ImageNetPretrained/MSRA/R-50.pkl"
    with pytest.raises(RuntimeError, match=str(tmp_path / "zoo" / "R-50.pkl")):
        cache_url(url, timeout=2)
    assert not any((tmp_path / "zoo").iterdir())  # no partial download left behind


def test_detectron_model_final_cache_name():
    url = "https://dl.fbaipublicfiles.com/detectron/35858933/12_2017_baselines/x.yaml.sig/output/model_final.pkl"
    assert os.path.basename(cached_path_for(url, "/c")) == "_detectron_35858933_12_2017_baselines_x.yaml.sig_output_model_final.pkl"


def test_catalog_weights_resolve_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_MODEL_ZOO", str(tmp_path))
    with open(tmp_path / "R-50.pkl", "wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.full((64, 3, 7, 7), 0.5, np.float32)}}, f, protocol=2)
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = "R-50-C4"
    from maskrcnn_benchmark.modeling.backbone import build_backbone

    model = build_backbone(c)
    DetectronCheckpointer(c, model).load("catalog://ImageNetPretrained/MSRA/R-50")
    assert torch.all(model.body.stem.conv1.weight == 0.5)


def test_optimizer_state_with_other_groups_is_skipped_with_a_warning(tmp_path, caplog):
    model = _model()
    per_param = torch.optim.SGD([{"params": [p]} for p in model.parameters()], lr=0.1)
    Checkpointer(model, per_param, save_dir=str(tmp_path), save_to_disk=True).save("old", iteration=3)
    grouped = torch.optim.SGD(_model().parameters(), lr=0.1)
    extra = Checkpointer(_model(), grouped).load(str(tmp_path / "old.pth"))
    assert extra == {"iteration": 3}
    assert "does not fit this optimizer" in caplog.text
