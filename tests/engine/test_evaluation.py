"""What the evaluation of a config covers."""

from maskrcnn_benchmark.engine.evaluation import iou_types_of


def test_iou_types_follow_the_model_heads():
    from maskrcnn_benchmark.config import cfg

    c = cfg.clone()
    assert iou_types_of(c) == ("bbox",)
    c.MODEL.MASK_ON, c.MODEL.KEYPOINT_ON = True, True
    assert iou_types_of(c) == ("bbox", "segm", "keypoints")
