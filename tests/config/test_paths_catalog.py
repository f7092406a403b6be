"""DatasetCatalog / ModelCatalog resolution."""

import os

import pytest

from maskrcnn_benchmark.config.paths_catalog import DATA_DIR_ENV, DatasetCatalog, ModelCatalog


def test_coco_entry_resolves_to_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    entry = DatasetCatalog.get("coco_2017_val")
    assert entry["factory"] == "COCODataset"
    assert entry["args"]["root"] == os.path.join(str(tmp_path), "datasets", "coco", "val2017")
    assert entry["args"]["ann_file"] == os.path.join(
        str(tmp_path), "datasets", "coco", "annotations", "instances_val2017.json"
    )


def test_environment_variable_overrides_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    entry = DatasetCatalog.get("keypoints_coco_2014_minival")
    assert entry["args"]["root"] == str(tmp_path / "data" / "coco" / "val2014")
    assert entry["args"]["ann_file"].endswith("person_keypoints_minival2014.json")


def test_relative_environment_variable_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, "rel/data")
    assert DatasetCatalog.data_dir() == str(tmp_path / "rel" / "data")


def test_the_originals_dataset_names_are_all_present():
    names = set(DatasetCatalog.DATASETS)
    expected = {
        "coco_2017_train",
        "coco_2017_val",
        "coco_2014_train",
        "coco_2014_val",
        "coco_2014_minival",
        "coco_2014_valminusminival",
        "keypoints_coco_2014_train",
        "keypoints_coco_2014_val",
        "keypoints_coco_2014_minival",
        "keypoints_coco_2014_valminusminival",
        "voc_2007_train",
        "voc_2007_val",
        "voc_2007_test",
        "voc_2012_train",
        "voc_2012_val",
        "voc_2012_test",
        "voc_2007_train_cocostyle",
        "voc_2007_val_cocostyle",
        "voc_2007_test_cocostyle",
        "voc_2012_train_cocostyle",
        "voc_2012_val_cocostyle",
        "cityscapes_fine_instanceonly_seg_train_cocostyle",
        "cityscapes_fine_instanceonly_seg_val_cocostyle",
        "cityscapes_fine_instanceonly_seg_test_cocostyle",
        "cityscapes_poly_instance_train",
        "cityscapes_poly_instance_val",
        "cityscapes_poly_instance_minival",
        "cityscapes_mask_instance_train",
        "cityscapes_mask_instance_val",
        "cityscapes_mask_instance_minival",
    }
    assert len(expected) == 30
    assert expected <= names


def test_voc_and_cityscapes_factories(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    voc = DatasetCatalog.get("voc_2007_test")
    assert voc == {
        "factory": "PascalVOCDataset",
        "args": {"data_dir": str(tmp_path / "voc" / "VOC2007"), "split": "test"},
    }
    assert DatasetCatalog.get("voc_2012_train_cocostyle")["factory"] == "COCODataset"
    city = DatasetCatalog.get("cityscapes_mask_instance_minival")
    assert city["factory"] == "CityScapesDataset"
    assert city["args"]["mini"] == 10 and city["args"]["mode"] == "mask"
    assert city["args"]["img_dir"] == str(tmp_path / "cityscapes" / "leftImg8bit")


def test_register_coco_any_name(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    DatasetCatalog.register_coco("my_shapes_train", "shapes/images", str(tmp_path / "abs" / "train.json"))
    try:
        entry = DatasetCatalog.get("my_shapes_train")
        assert entry["factory"] == "COCODataset"
        assert entry["args"]["root"] == str(tmp_path / "shapes" / "images")
        assert entry["args"]["ann_file"] == str(tmp_path / "abs" / "train.json")  # absolute kept
    finally:
        DatasetCatalog.DATASETS.pop("my_shapes_train")


def test_unknown_dataset_lists_known_names():
    with pytest.raises(RuntimeError, match="Dataset not available: 'nope'.*coco_2017_train"):
        DatasetCatalog.get("nope")


def test_model_catalog_urls():
    assert ModelCatalog.get("ImageNetPretrained/MSRA/R-50") == (
        "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/R-50.pkl"
    )
    assert ModelCatalog.get("Caffe2Detectron/COCO/35858933/e2e_mask_rcnn_R-50-FPN_1x") == (
        "https://dl.fbaipublicfiles.com/detectron/35858933/12_2017_baselines/"
        "e2e_mask_rcnn_R-50-FPN_1x.yaml.01_48_14.DzEQe4wC/output/train/"
        "coco_2014_train%3Acoco_2014_valminusminival/generalized_rcnn/model_final.pkl"
    )
    kp = ModelCatalog.get("Caffe2Detectron/COCO/37697547/e2e_keypoint_rcnn_R-50-FPN_1x")
    assert "keypoints_coco_2014_train%3Akeypoints_coco_2014_valminusminival" in kp


def test_model_catalog_unknown():
    with pytest.raises(RuntimeError, match="not present in the catalog"):
        ModelCatalog.get("Nope/x")
    with pytest.raises(RuntimeError, match="R-5000"):
        ModelCatalog.get("ImageNetPretrained/MSRA/R-5000")
