"""Modules at the original's import paths, used the way its callers used them."""

import importlib
import sys

import numpy as np
import pytest
import torch
from PIL import Image


def test_env_runs_the_custom_setup_module(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    module = tmp_path / "site_env.py"
    module.write_text(f"def setup_environment():\n    open({str(marker)!r}, 'w').write('yes')\n")
    monkeypatch.setenv("TORCH_DETECTRON_ENV_MODULE", str(module))
    sys.modules.pop("maskrcnn_benchmark.utils.env", None)
    env = importlib.import_module("maskrcnn_benchmark.utils.env")  # runs the set-up on import
    assert marker.read_text() == "yes"
    marker.unlink()
    env.setup_environment()
    assert marker.exists()

    bad = tmp_path / "bad_env.py"
    bad.write_text("x = 1\n")
    with pytest.raises(AttributeError, match="bad_env.py.*setup_environment"):
        env.setup_custom_environment(str(bad))
    monkeypatch.delenv("TORCH_DETECTRON_ENV_MODULE")
    env.setup_environment()  # nothing to do


def test_registry_at_both_paths_is_one_class():
    from maskrcnn_benchmark.modeling import registry as model_registries
    from maskrcnn_benchmark.utils.registry import Registry

    assert isinstance(model_registries.BACKBONES, Registry)
    reg = Registry()

    @reg.register("a")
    def make_a():
        return "a"

    reg.register("b", lambda: "b")
    assert reg["a"]() == "a" and reg["b"]() == "b"
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a", make_a)
    with pytest.raises(KeyError, match="registered names: a, b"):
        reg["c"]


def test_timer_averages_and_formats():
    from maskrcnn_benchmark.utils.timer import Timer, get_time_str

    timer = Timer()
    assert timer.average_time == 0.0
    timer.add(1.0)
    timer.add(3.0)
    assert timer.calls == 2 and timer.total_time == 4.0 and timer.diff == 3.0 and timer.average_time == 2.0
    timer.tic()
    last = timer.toc(average=False)
    assert 0 <= last < 1 and timer.calls == 3
    assert timer.toc() == pytest.approx(timer.total_time / 4)  # average by default
    assert timer.avg_time_str().startswith("0:00:0")
    assert get_time_str(3661.5) == "1:01:01.500000"
    timer.reset()
    assert (timer.calls, timer.total_time, timer.diff) == (0, 0.0, 0.0)


def test_list_dataset_yields_images_with_a_whole_image_box(tmp_path):
    from maskrcnn_benchmark.data.collate_batch import BatchCollator
    from maskrcnn_benchmark.data.datasets.list_dataset import ListDataset
    from maskrcnn_benchmark.data.transforms import transforms as T

    paths = []
    for i, (h, w) in enumerate([(20, 30), (16, 8)]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.full((h, w, 3), 40 * i, dtype=np.uint8)).save(paths[-1])
    ds = ListDataset(paths, transforms=T.Compose([T.ToTensor()]))
    assert len(ds) == 2 and ds.get_img_info(1) == {"width": 8, "height": 16}
    image, target, index = ds[0]
    assert image.shape == (3, 20, 30) and index == 0
    assert target.bbox.tolist() == [[0, 0, 30, 20]] and target.size == (30, 20)
    images, targets, ids = BatchCollator(size_divisible=32)([ds[0], ds[1]])
    assert images.tensors.shape == (2, 3, 32, 32) and ids == (0, 1)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.png"):
        ListDataset([str(tmp_path / "broken.png")])[0]


def test_abstract_dataset_maps_class_names_to_contiguous_ids():
    from maskrcnn_benchmark.data.datasets.abstract import AbstractDataset

    class Fruit(AbstractDataset):
        CLASSES = ("__background__", "apple", "pear")

        def __init__(self):
            super().__init__()
            self.initMaps()

    ds = Fruit()
    assert ds.name_to_id == {"__background__": 0, "apple": 1, "pear": 2}
    assert ds.id_to_name[2] == "pear"
    for method, args in (("__getitem__", (0,)), ("get_img_info", (0,)), ("__len__", ())):
        with pytest.raises(NotImplementedError):
            getattr(ds, method)(*args)

    class NoBackground(AbstractDataset):
        CLASSES = ("apple",)

    with pytest.raises(ValueError, match="__background__"):
        NoBackground().initMaps()


def test_layers_utils_exposes_the_compiled_ops(tmp_path):
    from maskrcnn_benchmark.layers import _utils

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    keep = _utils._C.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    with pytest.raises(FileNotFoundError, match="source checkout"):
        _utils._load_C_extensions(str(tmp_path))
