"""What the evaluation of a config covers."""

from maskrcnn_benchmark.engine.evaluation import iou_types_of


def test_iou_types_follow_the_model_heads():
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    assert iou_types_of(c) == ("bbox",)
    c.MODEL.MASK_ON, c.MODEL.KEYPOINT_ON = True, True
    assert iou_types_of(c) == ("bbox", "segm", "keypoints")


def test_run_test_passes_the_coco_eval_backend(monkeypatch, tmp_path):
    from maskrcnn_benchmark.config import cfg
    from maskrcnn_benchmark.engine import evaluation

    calls = []
    monkeypatch.setattr(evaluation, "make_data_loader", lambda c, is_train, is_distributed: ["loader"])
    monkeypatch.setattr(evaluation, "inference", lambda *args, **kwargs: calls.append(kwargs) or "result")
    c = cfg.clone()
    c.DATASETS.TEST = ("coco_2017_val",)
    c.TEST.COCO_EVAL_BACKEND = "pycocotools"
    assert evaluation.run_test(c, object(), False, str(tmp_path)) == ["result"]
    assert calls[0]["coco_eval_backend"] == "pycocotools"
