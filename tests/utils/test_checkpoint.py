"""Checkpointer: round trips, last_checkpoint, atomic saves (and the removal of what killed saves leave),
safe loading, broken files, the coverage requirement, catalog/URL weights."""

import copy
import logging
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg
from maskrcnn_benchmark.utils import checkpoint as ckpt_module
from maskrcnn_benchmark.utils import miscellaneous
from maskrcnn_benchmark.utils.checkpoint import (
    Checkpointer,
    CheckpointFileError,
    DetectronCheckpointer,
    UnsafeCheckpointError,
    WeightsCoverageError,
    load_checkpoint_file,
)
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


def _broken_files(folder):
    """{name: (path, expected message fragment)} of files that are no usable checkpoint."""
    folder.mkdir(exist_ok=True)
    torch.save({"model": _model().state_dict()}, folder / "full.pth")
    zipped = (folder / "full.pth").read_bytes()
    torch.save({"model": _model().state_dict()}, folder / "legacy.pth", _use_new_zipfile_serialization=False)
    legacy = (folder / "legacy.pth").read_bytes()
    files = {
        "random bytes": (
            np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes(),
            "truncated or corrupt",
        ),
        "text": (b"iteration: 10\nthis is not a checkpoint\n", "a text file (starting 'iteration: 10')"),
        "empty": (b"", "is empty (0 bytes)"),
        "truncated zip": (zipped[: len(zipped) // 2], "truncated or damaged zip archive"),
        "zip cut by 10 bytes": (zipped[:-10], "truncated or damaged zip archive"),
        "truncated legacy file": (legacy[: len(legacy) // 2], "cannot read checkpoint (truncated or corrupt?)"),
        "plain pickle": (pickle.dumps({"model": {}}, protocol=2), "not a file written by torch.save"),
        "gzip": (b"\x1f\x8b\x08\x00" + bytes(40), "gzip-compressed"),
        "hdf5": (b"\x89HDF\r\n\x1a\n" + bytes(40), "HDF5"),
    }
    paths = {}
    for name, (data, expected) in files.items():
        path = folder / (name.replace(" ", "_") + ".pth")
        path.write_bytes(data)
        paths[name] = (path, expected)
    import zipfile

    with zipfile.ZipFile(folder / "other.zip", "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    paths["zip of something else"] = (folder / "other.zip", "zip archive that is not a PyTorch checkpoint")
    np.save(folder / "array.npy", np.ones(3))
    paths["numpy .npy"] = (folder / "array.npy", "NumPy .npy array")
    np.savez(folder / "arrays.npz", a=np.ones(3))
    paths["numpy .npz"] = (folder / "arrays.npz", "NumPy .npz archive")
    (folder / "a_directory.pth").mkdir()
    paths["directory"] = (folder / "a_directory.pth", "is a directory")
    return paths


BROKEN = [
    "random bytes",
    "text",
    "empty",
    "truncated zip",
    "zip cut by 10 bytes",
    "truncated legacy file",
    "plain pickle",
    "gzip",
    "hdf5",
    "zip of something else",
    "numpy .npy",
    "numpy .npz",
    "directory",
]


@pytest.mark.parametrize("trusted", [False, True])
def test_broken_files_raise_one_error_naming_the_file_and_the_problem(tmp_path, trusted):
    files = _broken_files(tmp_path / "files")
    assert sorted(files) == sorted(BROKEN)
    for name, (path, expected) in files.items():
        with pytest.raises(CheckpointFileError) as info:
            load_checkpoint_file(str(path), trusted=trusted)
        assert str(path) in str(info.value), name
        assert expected in str(info.value), (name, str(info.value))
        assert isinstance(info.value, RuntimeError)
    # The same error through the Checkpointer, and the model is untouched.
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointFileError, match="truncated"):
        Checkpointer(model).load(str(files["truncated zip"][0]))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unreadable_file_says_so(tmp_path, monkeypatch):
    # No read permission (root reads any file, so opening it is made to fail as it would for a user).
    import builtins

    path = tmp_path / "locked.pth"
    torch.save(_model().state_dict(), path)
    real_open = builtins.open

    def no_permission(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    with pytest.raises(CheckpointFileError, match="permission denied"):
        load_checkpoint_file(str(path))


class NotImportableLater:
    pass


def test_a_pickle_naming_a_class_that_does_not_exist(tmp_path):
    path = tmp_path / "gone.pth"
    torch.save({"model": _model().state_dict(), "extra": NotImportableLater()}, path)
    # Rename the class inside the file (same length: the zip stores data.pkl uncompressed).
    raw = path.read_bytes().replace(b"NotImportableLater", b"NotImportableGone_")
    path.write_bytes(raw)
    with pytest.raises(UnsafeCheckpointError, match="MASKRCNN_TRUST_CHECKPOINTS"):
        load_checkpoint_file(str(path))
    with pytest.raises(CheckpointFileError, match=r"gone\.pth refers to Python code that is not available here"):
        load_checkpoint_file(str(path), trusted=True)


@pytest.mark.parametrize(
    "content, expected",
    [
        ([1, 2, 3], "holds a list, not a checkpoint"),
        (torch.zeros(3), "holds a Tensor, not a checkpoint"),
        ({"model": [torch.zeros(3)]}, "'model' entry is not a state_dict: the model weights are a list"),
        (
            {"model": {"0.weight": torch.zeros(3, 4), "0.bias": 1.5, "note": "x"}},
            "2 of 3 entries are not: '0.bias' (float)",
        ),
        (
            {"iteration": 5, "epoch": 2},
            "no 'model' entry and is not a state_dict either; its entries: 'iteration' (int)",
        ),
        ({"state_dict": {"0.weight": torch.zeros(3, 4)}}, "its entries: 'state_dict' (dict)"),
    ],
)
def test_checkpoint_contents_that_are_not_weights(tmp_path, content, expected):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(CheckpointFileError) as info:
        Checkpointer(_model()).load(str(path))
    assert str(path) in str(info.value) and expected in str(info.value)


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
    assert (
        os.path.basename(cached_path_for(url, "/c"))
        == "_detectron_35858933_12_2017_baselines_x.yaml.sig_output_model_final.pkl"
    )


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


# ------------------------------------------------------------------------------ coverage requirement


class _Other(nn.Module):
    """Another model: different keys and shapes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 8, 3)
        self.classifier = nn.Linear(8, 10)


def _same_values(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resuming_requires_the_whole_model(tmp_path):
    Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True).save("model_0000005", iteration=5)
    # The config changed (another head) but OUTPUT_DIR still holds the old run.
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 7))
    before = copy.deepcopy(other)
    with pytest.raises(WeightsCoverageError) as info:
        Checkpointer(other, save_dir=str(tmp_path)).load("ignored")
    message = str(info.value)
    assert "model_0000005.pth does not cover the whole model: 2 of 4 model tensors" in message
    assert "2.weight (model [7, 3] vs file [2, 3])" in message and "2.bias" in message
    assert "another output folder" in message and "last_checkpoint" in message
    assert _same_values(other, before)  # nothing was loaded
    # An explicit requirement wins.
    assert Checkpointer(other, save_dir=str(tmp_path)).load(require="any") == {"iteration": 5}
    assert torch.equal(other[0].weight, torch.load(tmp_path / "model_0000005.pth")["model"]["0.weight"])


def test_a_last_checkpoint_naming_nothing_is_an_error_when_resuming(tmp_path):
    (tmp_path / "last_checkpoint").write_text("")
    with pytest.raises(CheckpointFileError, match="names no checkpoint"):
        Checkpointer(_model(), save_dir=str(tmp_path)).load()
    (tmp_path / "last_checkpoint").write_bytes(b"\xff\xfe")
    with pytest.raises(CheckpointFileError, match="names no checkpoint"):
        Checkpointer(_model(), save_dir=str(tmp_path)).load()
    assert Checkpointer(_model(), save_dir=str(tmp_path)).load(require="none") == {}


def test_require_all_with_nothing_to_load(tmp_path):
    with pytest.raises(WeightsCoverageError, match="No weights to load"):
        Checkpointer(_model(), save_dir=str(tmp_path)).load(None, require="all")
    with pytest.raises(WeightsCoverageError, match="no save_dir"):
        Checkpointer(_model()).load("", require="all")
    assert Checkpointer(_model()).load("", require="none") == {}
    assert Checkpointer(_model()).load("") == {}  # "any": training from scratch, as the original


def test_initialising_from_a_file_that_matches_nothing_is_an_error(tmp_path):
    torch.save({"model": _Other().state_dict()}, tmp_path / "classifier.pth")
    model = _model()
    before = copy.deepcopy(model)
    with pytest.raises(WeightsCoverageError) as info:
        Checkpointer(model).load(str(tmp_path / "classifier.pth"), use_latest=False)
    message = str(info.value)
    assert str(tmp_path / "classifier.pth") in message and "None of the 4 model tensors" in message
    assert (
        "model keys: 0.weight, 0.bias, 2.weight" in message and "file keys:  features.weight, features.bias" in message
    )
    assert _same_values(model, before)
    ck = Checkpointer(model)
    ck.load(str(tmp_path / "classifier.pth"), require="none")
    assert ck.last_load_result.loaded == [] and len(ck.last_load_result.missing) == 4


def test_partial_files_load_by_default_and_are_logged(tmp_path, caplog):
    src = _model()
    torch.save({"model": {"0.weight": src[0].weight, "0.bias": src[0].bias}}, tmp_path / "part.pth")
    ck = Checkpointer(_model())
    with caplog.at_level(logging.INFO):
        ck.load(str(tmp_path / "part.pth"))
    assert torch.equal(ck.model[0].weight, src[0].weight)
    assert "Loaded 2 of 4 model tensors from" in caplog.text and "2.weight" in caplog.text
    assert not ck.last_load_result.complete and ck.last_load_result.missing == ["2.weight", "2.bias"]
    with pytest.raises(WeightsCoverageError, match="not in the file \\(2\\): 2.weight, 2.bias"):
        Checkpointer(_model()).load(str(tmp_path / "part.pth"), require="all")
    with pytest.raises(ValueError, match="require must be one of"):
        Checkpointer(_model()).load(str(tmp_path / "part.pth"), require="most")


def test_detectron_checkpointer_pkl_goes_through_the_same_rule(tmp_path):
    with open(tmp_path / "imagenet.pkl", "wb") as f:
        pickle.dump({"blobs": {"fc1000_w": np.ones((10, 4), np.float32)}}, f, protocol=2)
    c = cfg.clone()
    c.MODEL.BACKBONE.CONV_BODY = "R-50-C4"
    from maskrcnn_benchmark.modeling.backbone import build_backbone

    with pytest.raises(WeightsCoverageError, match="imagenet.pkl"):
        DetectronCheckpointer(c, build_backbone(c)).load(str(tmp_path / "imagenet.pkl"))
    with open(tmp_path / "stem.pkl", "wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.full((64, 3, 7, 7), 0.5, np.float32)}}, f, protocol=2)
    model = build_backbone(c)
    DetectronCheckpointer(c, model).load(str(tmp_path / "stem.pkl"))  # partial: allowed by default
    assert torch.all(model.body.stem.conv1.weight == 0.5)
    with pytest.raises(WeightsCoverageError, match="does not cover the whole model"):
        DetectronCheckpointer(c, model).load(str(tmp_path / "stem.pkl"), require="all")


# -------------------------------------------------------------------- temporaries of killed saves


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporary(folder, target, pid, host=None, age=3600.0):
    host = miscellaneous._host_tag() if host is None else host
    path = folder / f".{target}.{pid}@{host}.ab12cd_9.tmp"
    path.write_bytes(b"partial")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_temporary_names_carry_the_writer(tmp_path):
    seen = []
    miscellaneous.atomic_write(str(tmp_path / "x.pth"), lambda f: seen.extend(os.listdir(tmp_path)))
    assert len(seen) == 1 and seen[0].startswith(f".x.pth.{os.getpid()}@") and seen[0].endswith(".tmp")
    assert miscellaneous._TEMP_NAME.match(seen[0])


def test_stale_temporaries_are_removed_at_the_first_save_and_only_those(tmp_path, caplog):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            _temporary(tmp_path, "model_0000010.pth", _dead_pid()),
            _temporary(tmp_path, "model_0000011.pth", _dead_pid(), age=-5),  # its writer is dead, however new
            _temporary(tmp_path, "last_checkpoint", 4194303 + 1),  # above any pid_max: never alive
            _temporary(tmp_path, "model_final.pth", os.getpid()),  # an earlier process with our id (containers)
            _temporary(tmp_path, "model_0000020.pth", 12345, host="another-machine"),  # older than this process
        ]
        kept = [
            _temporary(tmp_path, "model_0000030.pth", sleeper.pid),  # its writer still runs, however old
            _temporary(tmp_path, "model_0000040.pth", os.getpid(), age=-5),  # this process is writing it
            _temporary(tmp_path, "model_0000050.pth", 12345, host="another-machine", age=-5),  # maybe being written
        ]
        others = ["notes.tmp", ".model.pth.tmp", ".model.pth.123.abcdefgh.tmp", "model_0000010.pth"]
        for name in others:
            (tmp_path / name).write_bytes(b"x")
            os.utime(tmp_path / name, (0, 0))
        ck = Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True)
        with caplog.at_level(logging.INFO):
            ck.save("model_0000060")
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept) and all((tmp_path / n).exists() for n in others)
        assert "Removed 5 temporary file(s)" in caplog.text and stale[0].name in caplog.text
        # Only at the first save of a Checkpointer.
        late = _temporary(tmp_path, "model_0000070.pth", _dead_pid())
        ck.save("model_0000070")
        assert late.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_save_killed_with_sigkill_leaves_a_temporary_that_the_next_save_removes(tmp_path, caplog):
    # The writer loads miscellaneous.py alone (no torch import: fast).
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import importlib.util, time\n"
                f"spec = importlib.util.spec_from_file_location('misc', {miscellaneous.__file__!r})\n"
                "misc = importlib.util.module_from_spec(spec); spec.loader.exec_module(misc)\n"
                "def slow(f):\n"
                "    f.write(b'half a checkpoint'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
                f"misc.atomic_write({str(tmp_path / 'model_0000001.pth')!r}, slow)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".model_0000001.pth.{writer.pid}@")
    with caplog.at_level(logging.INFO):
        Checkpointer(_model(), save_dir=str(tmp_path), save_to_disk=True).save("model_0000002")
    assert "Removed 1 temporary file(s)" in caplog.text and leftovers[0].name in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000002.pth"]
