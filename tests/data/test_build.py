"""make_data_loader / build helpers on small registered COCO datasets written into tmp_path."""

import json
import sys

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.config.paths_catalog import DATA_DIR_ENV
from maskrcnn_benchmark.data import build as data_build
from maskrcnn_benchmark.data import make_data_loader
from maskrcnn_benchmark.data.build import _compute_aspect_ratios, _quantize, make_batch_data_sampler, make_data_sampler
from maskrcnn_benchmark.data.datasets import COCODataset, ConcatDataset
from maskrcnn_benchmark.data.samplers import DistributedSampler
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.structures.image_list import ImageList

CATALOG_MODULE = "maskrcnn_benchmark.config.paths_catalog"


def _write_dataset(folder, sizes, empty=()):
    """One image per (width, height) in `sizes`, each with one box (none for indices in `empty`)."""
    folder.mkdir(parents=True)
    images, anns = [], []
    for i, (w, h) in enumerate(sizes, start=1):
        Image.new("RGB", (w, h), (10 * i, 20, 30)).save(folder / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": w, "height": h})
        if i - 1 not in empty:
            anns.append(
                {
                    "id": i,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [2, 2, 10, 8],
                    "iscrowd": 0,
                    "area": 80,
                    "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]],
                }
            )
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    ann_file = folder / "ann.json"
    ann_file.write_text(json.dumps(data))
    return str(folder), str(ann_file)


# 10 images, 6 landscape (w > h) and 4 portrait, in a mixed order (even groups: full batches of 2).
SIZES = [(40, 30), (30, 40), (40, 30), (36, 32), (50, 30), (30, 50), (40, 20), (20, 40), (44, 33), (33, 44)]


@pytest.fixture(autouse=True)
def _isolated_catalog(monkeypatch):
    """Registrations made by a test stay in that test."""
    catalog = data_build.dataset_catalog_of(default_cfg)
    monkeypatch.setattr(catalog, "DATASETS", dict(catalog.DATASETS))
    monkeypatch.setitem(sys.modules, CATALOG_MODULE, sys.modules[CATALOG_MODULE])


@pytest.fixture
def cfg(tmp_path):
    train = _write_dataset(tmp_path / "train", SIZES)
    val = _write_dataset(tmp_path / "val", SIZES[:5], empty=(1,))
    c = default_cfg.clone()
    c.DATASETS.REGISTER_COCO = [["tiny_train", *train], ["tiny_val", *val]]
    c.DATASETS.TRAIN = ("tiny_train",)
    c.DATASETS.TEST = ("tiny_val",)
    c.INPUT.MIN_SIZE_TRAIN = (24,)
    c.INPUT.MAX_SIZE_TRAIN = 64
    c.INPUT.MIN_SIZE_TEST = 24
    c.INPUT.MAX_SIZE_TEST = 64
    c.DATALOADER.NUM_WORKERS = 0
    c.DATALOADER.SIZE_DIVISIBILITY = 32
    c.SOLVER.IMS_PER_BATCH = 2
    c.SOLVER.MAX_ITER = 7
    c.TEST.IMS_PER_BATCH = 2
    c.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 2  # one category + the background
    return c


def _orientation(dataset, i):
    info = dataset.get_img_info(i)
    return info["height"] >= info["width"]


def test_training_batches(cfg):
    loader = make_data_loader(cfg, is_train=True)
    assert isinstance(loader, DataLoader) and len(loader) == 7
    batches = list(loader)
    assert len(batches) == 7
    for images, targets, indices in batches:
        assert isinstance(images, ImageList) and isinstance(targets, tuple) and isinstance(indices, tuple)
        assert images.tensors.shape[0] == len(targets) == len(indices) == 2
        assert images.tensors.shape[2] % 32 == 0 and images.tensors.shape[3] % 32 == 0  # SIZE_DIVISIBILITY
        assert all(isinstance(t, BoxList) and t.has_field("labels") for t in targets)
        assert all(isinstance(i, int) for i in indices)
        # aspect-ratio grouping: one orientation per batch
        assert len({_orientation(loader.dataset, i) for i in indices}) == 1
        for size, target in zip(images.image_sizes, targets):
            assert min(size) == 24 and target.size == (size[1], size[0])


def test_no_divisibility_and_no_grouping(cfg):
    cfg.DATALOADER.SIZE_DIVISIBILITY = 0
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
    loader = make_data_loader(cfg, is_train=True)
    images, targets, indices = next(iter(loader))
    assert tuple(images.tensors.shape[2:]) == tuple(max(s[d] for s in images.image_sizes) for d in (0, 1))
    assert type(loader.batch_sampler.batch_sampler).__name__ == "BatchSampler"


def _index_batches(loader):
    return [list(b) for b in loader.batch_sampler]


@pytest.mark.parametrize("start_iter", [1, 4, 5, 9, 16])
def test_resume_gives_the_batches_of_an_uninterrupted_run(cfg, start_iter):
    cfg.SOLVER.MAX_ITER = 17  # about 3 passes over the 10 images (grouped batches of 2)
    full = _index_batches(make_data_loader(cfg, is_train=True))
    assert len(full) == 17
    resumed_loader = make_data_loader(cfg, is_train=True, start_iter=start_iter)
    assert _index_batches(resumed_loader) == full[start_iter:]
    assert len(resumed_loader) == 17  # the trainer's max_iter, as in the original
    # the data really follows those indices
    first = next(iter(resumed_loader))
    assert list(first[2]) == full[start_iter]


def test_training_order_is_deterministic_and_changes_per_pass(cfg):
    cfg.SOLVER.MAX_ITER = 17
    a = _index_batches(make_data_loader(cfg, is_train=True))
    b = _index_batches(make_data_loader(cfg, is_train=True))
    assert a == b
    per_pass = sorted(i for batch in a[:5] for i in batch)
    assert per_pass == list(range(10))  # first pass (5 batches): every image once
    assert a[:5] != a[5:10]


def test_per_process_split(cfg, monkeypatch):
    monkeypatch.setattr(data_build, "get_world_size", lambda: 2)
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.SOLVER.MAX_ITER = 3
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(data_build, "get_rank", lambda rank=rank: rank)
        loader = make_data_loader(cfg, is_train=True, is_distributed=True)
        sampler = loader.batch_sampler.batch_sampler.sampler
        assert isinstance(sampler, DistributedSampler) and (sampler.num_replicas, sampler.rank) == (2, rank)
        batches = _index_batches(loader)
        assert len(batches) == 3 and all(len(b) <= 2 for b in batches)
        assert len(next(iter(loader))[2]) <= 2
        sampler.set_epoch(0)
        seen.append(set(sampler))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(10))
    cfg.SOLVER.IMS_PER_BATCH = 3
    with pytest.raises(ValueError, match="IMS_PER_BATCH"):
        make_data_loader(cfg, is_train=True, is_distributed=True)


def test_test_loaders_are_a_sequential_list(cfg):
    cfg.DATASETS.TEST = ("tiny_val", "tiny_train")
    loaders = make_data_loader(cfg, is_train=False)
    assert isinstance(loaders, list) and len(loaders) == 2
    assert [len(loader.dataset) for loader in loaders] == [5, 10]  # images without annotations kept
    indices = [i for _, _, ids in loaders[0] for i in ids]
    assert sorted(indices) == list(range(5))
    batches = _index_batches(loaders[0])
    assert all(len(b) <= 2 for b in batches)
    # sequential within each aspect-ratio group
    for orientation in (False, True):
        group = [i for b in batches for i in b if _orientation(loaders[0].dataset, i) == orientation]
        assert group == sorted(group)


def test_distributed_test_loader_splits_without_shuffling(cfg, monkeypatch):
    monkeypatch.setattr(data_build, "get_world_size", lambda: 2)
    monkeypatch.setattr(data_build, "get_rank", lambda: 1)
    cfg.TEST.IMS_PER_BATCH = 2
    (loader,) = make_data_loader(cfg, is_train=False, is_distributed=True)
    sampler = loader.batch_sampler.sampler
    assert isinstance(sampler, DistributedSampler) and not sampler.shuffle
    assert list(sampler) == [1, 3, 0]  # 5 images padded to 6, dealt round-robin
    assert loader.batch_size is None and all(len(b) == 1 for b in _index_batches(loader))


def test_period_loader_is_one_training_style_loader_over_the_test_sets(cfg):
    cfg.DATASETS.TEST = ("tiny_val", "tiny_train")
    loader = make_data_loader(cfg, is_train=False, is_for_period=True)
    assert isinstance(loader, DataLoader) and isinstance(loader.dataset, ConcatDataset)
    assert len(loader.dataset) == 4 + 10  # the image without annotations is removed
    indices = sorted(i for _, targets, ids in loader for i in ids)
    assert indices == list(range(14))


def test_register_coco_from_a_yaml_config_with_relative_paths(cfg, tmp_path, monkeypatch):
    _write_dataset(tmp_path / "data" / "mine", SIZES[:3])
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    yaml_file = tmp_path / "cfg.yaml"
    yaml_file.write_text(
        'DATASETS:\n  REGISTER_COCO: [["mine_train", "mine", "mine/ann.json"]]\n  TRAIN: ("mine_train",)\n'
    )
    cfg.merge_from_file(str(yaml_file))
    loader = make_data_loader(cfg, is_train=True)
    assert isinstance(loader.dataset, COCODataset) and len(loader.dataset) == 3
    assert loader.dataset.name == "mine_train"
    assert len(list(loader)) == 7


def test_unknown_dataset_and_missing_files(cfg, tmp_path):
    cfg.DATASETS.TRAIN = ("no_such_dataset",)
    with pytest.raises(RuntimeError, match="Dataset not available"):
        make_data_loader(cfg, is_train=True)
    cfg.DATASETS.REGISTER_COCO = [["gone_train", str(tmp_path / "gone"), str(tmp_path / "gone.json")]]
    cfg.DATASETS.TRAIN = ("gone_train",)
    with pytest.raises(FileNotFoundError, match="gone_train.*gone.json"):
        make_data_loader(cfg, is_train=True)


def test_custom_paths_catalog_file(cfg, tmp_path):
    root, ann_file = _write_dataset(tmp_path / "custom", SIZES[:4])
    catalog_file = tmp_path / "my_catalog.py"
    catalog_file.write_text(
        "class DatasetCatalog:\n"
        "    ENTRIES = {'custom_train': {'factory': 'COCODataset', "
        f"'args': {{'root': {root!r}, 'ann_file': {ann_file!r}}}}}}}\n"
        "    @staticmethod\n"
        "    def get(name):\n"
        "        return DatasetCatalog.ENTRIES[name]\n"
    )
    cfg.PATHS_CATALOG = str(catalog_file)
    cfg.DATASETS.REGISTER_COCO = []
    cfg.DATASETS.TRAIN = ("custom_train",)
    loader = make_data_loader(cfg, is_train=True)
    assert len(loader.dataset) == 4


def test_aspect_ratio_helpers(cfg):
    assert _quantize([0.5, 1.0, 1.5, 0.99], [1]) == [0, 1, 1, 0]
    assert _quantize([0.2, 0.7, 3.0], [1.0, 0.5]) == [0, 1, 2]
    loader = make_data_loader(cfg, is_train=True)
    ratios = _compute_aspect_ratios(loader.dataset)
    assert ratios[:2] == [30 / 40, 40 / 30]


def test_make_batch_data_sampler_counts(cfg):
    dataset = make_data_loader(cfg, is_train=True).dataset
    sampler = make_data_sampler(dataset, shuffle=False, distributed=False)
    assert list(sampler) == list(range(10))
    batches = list(make_batch_data_sampler(dataset, sampler, [], 3))
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    limited = list(make_batch_data_sampler(dataset, sampler, [], 3, num_iters=6, start_iter=2))
    assert limited == [[6, 7, 8], [9], [0, 1, 2], [3, 4, 5]]
    shuffled = make_data_sampler(dataset, shuffle=True, distributed=False)
    assert isinstance(shuffled, DistributedSampler) and shuffled.num_replicas == 1
    assert sorted(shuffled) == list(range(10)) and list(shuffled) != list(range(10))


def test_bbox_aug_test_loader_gives_raw_images(cfg):
    cfg.TEST.BBOX_AUG.ENABLED = True
    (loader,) = make_data_loader(cfg, is_train=False)
    images, targets, ids = next(iter(loader))
    assert isinstance(images, tuple) and isinstance(images[0], Image.Image)


def test_workers_load_the_same_batches(cfg):
    cfg.DATALOADER.NUM_WORKERS = 2
    cfg.SOLVER.MAX_ITER = 3
    loader = make_data_loader(cfg, is_train=True)
    batches = list(loader)
    assert [list(ids) for _, _, ids in batches] == _index_batches(loader)
    assert all(torch.is_tensor(images.tensors) for images, _, _ in batches)


def test_a_registered_dataset_may_have_a_synthetic_name(cfg):
    # Only the embedded synthetic sets are generated on first use; "synthetic_*" of a user is plain data.
    cfg.DATASETS.REGISTER_COCO = [["synthetic_mine", *cfg.DATASETS.REGISTER_COCO[0][1:]]]
    cfg.DATASETS.TEST = ("synthetic_mine",)
    (loader,) = make_data_loader(cfg, is_train=False)
    assert len(loader.dataset) == 10


# ----------------------------------------------------------------- model / dataset agreement at start-up
def _register(cfg, tmp_path, name, **kwargs):
    """Register a dataset written by _write_dataset_with (keyword arguments) under `name`."""
    folder, ann_file = _write_dataset_with(tmp_path / name, **kwargs)
    cfg.DATASETS.REGISTER_COCO = list(cfg.DATASETS.REGISTER_COCO) + [[name, folder, ann_file]]


def _write_dataset_with(
    folder, categories=({"id": 1, "name": "thing"},), masks=True, keypoints=False, annotations=True
):
    """3 images with a box of category 1 each, with or without masks / keypoints / any annotation."""
    folder.mkdir(parents=True)
    images, anns = [], []
    for i in range(1, 4):
        Image.new("RGB", (40, 30)).save(folder / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "width": 40, "height": 30})
        ann = {"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 20, 16], "iscrowd": 0, "area": 320}
        if masks:
            ann["segmentation"] = [[2, 2, 22, 2, 22, 18, 2, 18]]
        if keypoints:
            ann["keypoints"] = [v for k in range(17) for v in (3 + k, 4, 2)]
            ann["num_keypoints"] = 17
        anns.append(ann)
    data = {"images": images, "categories": list(categories)}
    if annotations:
        data["annotations"] = anns
    (folder / "ann.json").write_text(json.dumps(data))
    return str(folder), str(folder / "ann.json")


def test_num_classes_must_be_the_categories_plus_the_background(cfg):
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 1  # forgot the background
    with pytest.raises(ValueError) as info:
        make_data_loader(cfg, is_train=True)
    assert str(info.value) == (
        "dataset 'tiny_train' has 1 categories but MODEL.ROI_BOX_HEAD.NUM_CLASSES is 1; "
        "set it to 2 (categories + background)"
    )
    with pytest.raises(ValueError, match="dataset 'tiny_val' has 1 categories"):
        make_data_loader(cfg, is_train=False)
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 81  # the COCO default on another dataset
    with pytest.raises(ValueError, match="NUM_CLASSES is 81; set it to 2"):
        make_data_loader(cfg, is_train=True)


def test_rpn_only_models_have_no_class_count(cfg):
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 81
    cfg.MODEL.RPN_ONLY = True
    assert len(make_data_loader(cfg, is_train=True).dataset) == 10
    cfg.MODEL.RETINANET_ON = True  # RetinaNet classifies: its own NUM_CLASSES counts
    cfg.MODEL.RETINANET.NUM_CLASSES = 3
    with pytest.raises(ValueError, match="MODEL.RETINANET.NUM_CLASSES is 3; set it to 2"):
        make_data_loader(cfg, is_train=True)


def test_keypoint_and_mask_heads_need_such_annotations(cfg, tmp_path):
    _register(cfg, tmp_path, "boxes_train", masks=False)
    _register(cfg, tmp_path, "people_train", keypoints=True)
    cfg.DATASETS.TRAIN = ("boxes_train",)
    cfg.MODEL.MASK_ON = True
    with pytest.raises(ValueError, match="MODEL.MASK_ON is set but dataset 'boxes_train' has no segmentation masks"):
        make_data_loader(cfg, is_train=True)
    cfg.MODEL.MASK_ON = False
    cfg.MODEL.KEYPOINT_ON = True
    with pytest.raises(ValueError, match="MODEL.KEYPOINT_ON is set but dataset 'boxes_train' has no keypoints"):
        make_data_loader(cfg, is_train=True)
    cfg.DATASETS.TRAIN = ("people_train",)
    cfg.MODEL.MASK_ON = True
    assert len(make_data_loader(cfg, is_train=True).dataset) == 3


def test_a_test_set_without_annotations_fits_any_head(cfg, tmp_path):
    _register(cfg, tmp_path, "dev_test", annotations=False)
    cfg.DATASETS.TEST = ("dev_test",)
    cfg.MODEL.MASK_ON = cfg.MODEL.KEYPOINT_ON = True
    (loader,) = make_data_loader(cfg, is_train=False)
    assert len(loader.dataset) == 3
    cfg.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 3  # its categories still define the classes
    with pytest.raises(ValueError, match="dataset 'dev_test' has 1 categories"):
        make_data_loader(cfg, is_train=False)


def test_every_part_of_a_concatenated_training_set_is_checked(cfg, tmp_path):
    _register(cfg, tmp_path, "more_train")
    _register(cfg, tmp_path, "boxes_train", masks=False)
    _register(cfg, tmp_path, "other_train", categories=[{"id": 1, "name": "other"}])
    _register(cfg, tmp_path, "two_train", categories=[{"id": 1, "name": "thing"}, {"id": 2, "name": "b"}])
    cfg.DATASETS.TRAIN = ("tiny_train", "more_train")
    cfg.MODEL.MASK_ON = True
    assert len(make_data_loader(cfg, is_train=True).dataset) == 13
    cfg.DATASETS.TRAIN = ("tiny_train", "boxes_train")
    with pytest.raises(ValueError, match="dataset 'boxes_train' has no segmentation masks"):
        make_data_loader(cfg, is_train=True)
    cfg.MODEL.MASK_ON = False
    cfg.DATASETS.TRAIN = ("tiny_train", "other_train")
    with pytest.raises(
        ValueError,
        match="'tiny_train' and 'other_train' are used together but have different "
        "categories: category id 1 is 'thing' in 'tiny_train' but 'other'",
    ):
        make_data_loader(cfg, is_train=True)
    cfg.DATASETS.TRAIN = ("tiny_train", "two_train")
    with pytest.raises(ValueError, match="dataset 'two_train' has 2 categories"):
        make_data_loader(cfg, is_train=True)


def test_broken_image_entries_never_reach_the_aspect_ratio_grouping(cfg, tmp_path):
    folder, ann_file = _write_dataset(tmp_path / "broken", SIZES[:4])
    data = json.loads(open(ann_file).read())
    data["images"][1]["width"] = 0  # would divide by zero in the grouping
    del data["images"][2]["height"]
    with open(ann_file, "w") as f:
        json.dump(data, f)
    cfg.DATASETS.REGISTER_COCO = [["broken_train", folder, ann_file]]
    cfg.DATASETS.TRAIN = ("broken_train",)
    loader = make_data_loader(cfg, is_train=True)
    assert loader.dataset.ids == [1, 4] and _compute_aspect_ratios(loader.dataset) == [30 / 40, 32 / 36]
    assert len(next(iter(loader))[1]) == 2
    cfg.DATASETS.ON_BAD_INPUT = "error"
    with pytest.raises(ValueError, match=r"image id 2: field 'width, height' = \[0, 40\]"):
        make_data_loader(cfg, is_train=True)
