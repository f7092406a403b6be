"""Where datasets and published weights live.

`DatasetCatalog.get(name)` maps a dataset name (as used in DATASETS.TRAIN / DATASETS.TEST) to the
dataset class to build and its constructor arguments. Relative paths are resolved against the data
folder: $MASKRCNN_DATASETS if set, else `DatasetCatalog.DATA_DIR` ("datasets", relative to the
current working directory as in the original), always turned into an absolute path.

`ModelCatalog.get(name)` maps "ImageNetPretrained/..." and "Caffe2Detectron/COCO/<id>/<name>" to
the URLs of the published Detectron weights (used by MODEL.WEIGHT "catalog://...").

Users may point cfg.PATHS_CATALOG at a copy of this file of their own.
"""

import copy
import os
from typing import Any, Dict, Tuple

DATA_DIR_ENV = "MASKRCNN_DATASETS"


def _coco(img_dir: str, ann_file: str) -> Dict[str, str]:
    return {"img_dir": img_dir, "ann_file": ann_file}


# The embedded synthetic datasets (maskrcnn_benchmark.data.datasets.synthetic), generated into the data
# folder on first use, COCO format, evaluated like COCO. This is the one place that names them and lays
# out their files; the generator writes exactly there.
SYNTHETIC_ANNOTATION_PREFIXES: Dict[str, str] = {"shapes": "instances", "persons": "person_keypoints"}
SYNTHETIC_DATASETS: Dict[str, Tuple[str, str]] = {  # catalog name -> (kind, split)
    f"synthetic_{kind}_{split}": (kind, split) for kind in SYNTHETIC_ANNOTATION_PREFIXES for split in ("train", "val")
}


def synthetic_folder(kind: str) -> str:
    """The folder of a synthetic kind, relative to the data folder."""
    return f"synthetic_{kind}"


def synthetic_split_files(kind: str, split: str) -> Tuple[str, str]:
    """(images folder, annotation json) of a split, relative to its kind's folder (COCO's layout)."""
    return split, os.path.join("annotations", f"{SYNTHETIC_ANNOTATION_PREFIXES[kind]}_{split}.json")


def _synthetic(kind: str, split: str) -> Dict[str, str]:
    img_dir, ann_file = synthetic_split_files(kind, split)
    return _coco(os.path.join(synthetic_folder(kind), img_dir), os.path.join(synthetic_folder(kind), ann_file))


def _voc(data_dir: str, split: str) -> Dict[str, str]:
    return {"data_dir": data_dir, "split": split}


def _cityscapes(split: str, mode: str, mini: int = 0) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {
        "img_dir": "cityscapes/leftImg8bit",
        "ann_dir": "cityscapes/gtFine",
        "split": split,
        "mode": mode,
    }
    if mini:
        attrs["mini"] = mini
    return attrs


class DatasetCatalog:
    DATA_DIR = "datasets"
    DATASETS: Dict[str, Dict[str, Any]] = {
        "coco_2017_train": _coco("coco/train2017", "coco/annotations/instances_train2017.json"),
        "coco_2017_val": _coco("coco/val2017", "coco/annotations/instances_val2017.json"),
        "coco_2014_train": _coco("coco/train2014", "coco/annotations/instances_train2014.json"),
        "coco_2014_val": _coco("coco/val2014", "coco/annotations/instances_val2014.json"),
        "coco_2014_minival": _coco("coco/val2014", "coco/annotations/instances_minival2014.json"),
        "coco_2014_valminusminival": _coco("coco/val2014", "coco/annotations/instances_valminusminival2014.json"),
        "keypoints_coco_2017_train": _coco("coco/train2017", "coco/annotations/person_keypoints_train2017.json"),
        "keypoints_coco_2017_val": _coco("coco/val2017", "coco/annotations/person_keypoints_val2017.json"),
        "keypoints_coco_2014_train": _coco("coco/train2014", "coco/annotations/person_keypoints_train2014.json"),
        "keypoints_coco_2014_val": _coco("coco/val2014", "coco/annotations/person_keypoints_val2014.json"),
        "keypoints_coco_2014_minival": _coco("coco/val2014", "coco/annotations/person_keypoints_minival2014.json"),
        "keypoints_coco_2014_valminusminival": _coco(
            "coco/val2014", "coco/annotations/person_keypoints_valminusminival2014.json"
        ),
        "voc_2007_train": _voc("voc/VOC2007", "train"),
        "voc_2007_val": _voc("voc/VOC2007", "val"),
        "voc_2007_test": _voc("voc/VOC2007", "test"),
        "voc_2012_train": _voc("voc/VOC2012", "train"),
        "voc_2012_val": _voc("voc/VOC2012", "val"),
        "voc_2012_test": _voc("voc/VOC2012", "test"),  # no public annotations
        "voc_2007_train_cocostyle": _coco("voc/VOC2007/JPEGImages", "voc/VOC2007/Annotations/pascal_train2007.json"),
        "voc_2007_val_cocostyle": _coco("voc/VOC2007/JPEGImages", "voc/VOC2007/Annotations/pascal_val2007.json"),
        "voc_2007_test_cocostyle": _coco("voc/VOC2007/JPEGImages", "voc/VOC2007/Annotations/pascal_test2007.json"),
        "voc_2012_train_cocostyle": _coco("voc/VOC2012/JPEGImages", "voc/VOC2012/Annotations/pascal_train2012.json"),
        "voc_2012_val_cocostyle": _coco("voc/VOC2012/JPEGImages", "voc/VOC2012/Annotations/pascal_val2012.json"),
        **{name: _synthetic(kind, split) for name, (kind, split) in SYNTHETIC_DATASETS.items()},
        # Deprecated in the original; kept so that old configs resolve.
        "cityscapes_fine_instanceonly_seg_train_cocostyle": _coco(
            "cityscapes/images", "cityscapes/annotations/instancesonly_filtered_gtFine_train.json"
        ),
        "cityscapes_fine_instanceonly_seg_val_cocostyle": _coco(
            "cityscapes/images", "cityscapes/annotations/instancesonly_filtered_gtFine_val.json"
        ),
        "cityscapes_fine_instanceonly_seg_test_cocostyle": _coco(
            "cityscapes/images", "cityscapes/annotations/instancesonly_filtered_gtFine_test.json"
        ),
        "cityscapes_poly_instance_train": _cityscapes("train", "poly"),
        "cityscapes_poly_instance_val": _cityscapes("val", "poly"),
        "cityscapes_poly_instance_minival": _cityscapes("val", "poly", mini=10),
        "cityscapes_mask_instance_train": _cityscapes("train", "mask"),
        "cityscapes_mask_instance_val": _cityscapes("val", "mask"),
        "cityscapes_mask_instance_minival": _cityscapes("val", "mask", mini=10),
    }

    @staticmethod
    def data_dir() -> str:
        """The data folder as an absolute path ($MASKRCNN_DATASETS overrides DATA_DIR)."""
        return os.path.abspath(os.path.expanduser(os.environ.get(DATA_DIR_ENV) or DatasetCatalog.DATA_DIR))

    @staticmethod
    def register_coco(name: str, img_dir: str, ann_file: str) -> None:
        """Register a COCO-format dataset (an images folder and an annotation json) under `name`.

        Relative paths are taken relative to the data folder; absolute paths are kept.
        """
        DatasetCatalog.DATASETS[name] = _coco(img_dir, ann_file)

    @staticmethod
    def get(name: str) -> Dict[str, Any]:
        """{"factory": dataset class name, "args": constructor kwargs with absolute paths}."""
        if name not in DatasetCatalog.DATASETS:
            known = ", ".join(sorted(DatasetCatalog.DATASETS))
            raise RuntimeError(f"Dataset not available: {name!r}. Known datasets: {known}")
        data_dir = DatasetCatalog.data_dir()
        attrs = copy.deepcopy(DatasetCatalog.DATASETS[name])
        # The factory follows the entry's fields, whatever the name says (register_coco() accepts any
        # name): an annotation json -> COCO format (COCO, the *_cocostyle conversions, the synthetic
        # sets, registered datasets); a VOC folder and split; Cityscapes image and annotation folders.
        if "ann_file" in attrs:
            args = {
                "root": os.path.join(data_dir, attrs["img_dir"]),
                "ann_file": os.path.join(data_dir, attrs["ann_file"]),
            }
            return {"factory": "COCODataset", "args": args}
        if "data_dir" in attrs and "split" in attrs:
            args = {"data_dir": os.path.join(data_dir, attrs["data_dir"]), "split": attrs["split"]}
            return {"factory": "PascalVOCDataset", "args": args}
        if "ann_dir" in attrs:
            attrs["img_dir"] = os.path.join(data_dir, attrs["img_dir"])
            attrs["ann_dir"] = os.path.join(data_dir, attrs["ann_dir"])
            return {"factory": "CityScapesDataset", "args": attrs}
        raise RuntimeError(f"Dataset not available: {name!r} (no dataset factory matches its entry {attrs})")


class ModelCatalog:
    S3_C2_DETECTRON_URL = "https://dl.fbaipublicfiles.com/detectron"
    C2_IMAGENET_MODELS = {
        "MSRA/R-50": "ImageNetPretrained/MSRA/R-50.pkl",
        "MSRA/R-50-GN": "ImageNetPretrained/47261647/R-50-GN.pkl",
        "MSRA/R-101": "ImageNetPretrained/MSRA/R-101.pkl",
        "MSRA/R-101-GN": "ImageNetPretrained/47592356/R-101-GN.pkl",
        "FAIR/20171220/X-101-32x8d": "ImageNetPretrained/20171220/X-101-32x8d.pkl",
    }
    C2_DETECTRON_SUFFIX = (
        "output/train/{}coco_2014_train%3A{}coco_2014_valminusminival/generalized_rcnn/model_final.pkl"
    )
    # "<model id>/<model name>" -> the signature Detectron appended to the yaml name.
    C2_DETECTRON_MODELS = {
        "35857197/e2e_faster_rcnn_R-50-C4_1x": "01_33_49.iAX0mXvW",
        "35857345/e2e_faster_rcnn_R-50-FPN_1x": "01_36_30.cUF7QR7I",
        "35857890/e2e_faster_rcnn_R-101-FPN_1x": "01_38_50.sNxI7sX7",
        "36761737/e2e_faster_rcnn_X-101-32x8d-FPN_1x": "06_31_39.5MIHi1fZ",
        "35858791/e2e_mask_rcnn_R-50-C4_1x": "01_45_57.ZgkA7hPB",
        "35858933/e2e_mask_rcnn_R-50-FPN_1x": "01_48_14.DzEQe4wC",
        "35861795/e2e_mask_rcnn_R-101-FPN_1x": "02_31_37.KqyEK4tT",
        "36761843/e2e_mask_rcnn_X-101-32x8d-FPN_1x": "06_35_59.RZotkLKI",
        "37129812/e2e_mask_rcnn_X-152-32x8d-FPN-IN5k_1.44x": "09_35_36.8pzTQKYK",
        "37697547/e2e_keypoint_rcnn_R-50-FPN_1x": "08_42_54.kdzV35ao",
    }

    @staticmethod
    def get(name: str) -> str:
        """URL of a catalog entry ("ImageNetPretrained/..." or "Caffe2Detectron/COCO/<id>/<name>")."""
        if name.startswith("Caffe2Detectron/COCO"):
            return ModelCatalog.get_c2_detectron_12_2017_baselines(name)
        if name.startswith("ImageNetPretrained"):
            return ModelCatalog.get_c2_imagenet_pretrained(name)
        raise RuntimeError(f"model not present in the catalog: {name!r}")

    @staticmethod
    def get_c2_imagenet_pretrained(name: str) -> str:
        key = name[len("ImageNetPretrained/") :]
        if key not in ModelCatalog.C2_IMAGENET_MODELS:
            raise RuntimeError(
                f"model not present in the catalog: {name!r}; known: {sorted(ModelCatalog.C2_IMAGENET_MODELS)}"
            )
        return "/".join([ModelCatalog.S3_C2_DETECTRON_URL, ModelCatalog.C2_IMAGENET_MODELS[key]])

    @staticmethod
    def get_c2_detectron_12_2017_baselines(name: str) -> str:
        # URL layout: <prefix>/<model id>/12_2017_baselines/<model name>.yaml.<signature>/<suffix>
        key = name[len("Caffe2Detectron/COCO/") :]
        if key not in ModelCatalog.C2_DETECTRON_MODELS:
            raise RuntimeError(
                f"model not present in the catalog: {name!r}; known: {sorted(ModelCatalog.C2_DETECTRON_MODELS)}"
            )
        model_id, model_name = key.split("/")
        dataset_tag = "keypoints_" if "keypoint" in name else ""
        suffix = ModelCatalog.C2_DETECTRON_SUFFIX.format(dataset_tag, dataset_tag)
        unique_name = f"{model_name}.yaml.{ModelCatalog.C2_DETECTRON_MODELS[key]}"
        return "/".join([ModelCatalog.S3_C2_DETECTRON_URL, model_id, "12_2017_baselines", unique_name, suffix])
