"""The original demo module, kept so that scripts and notebooks written for it run unchanged:

    from predictor import COCODemo          # run from demo/
    coco_demo = COCODemo(cfg, min_image_size=800, confidence_threshold=0.7)
    drawn = coco_demo.run_on_opencv_image(cv2.imread("image.jpg"))   # BGR in, BGR out

The implementation lives in maskrcnn_benchmark.engine.predictor (COCODemo is built on Predictor).
"""

from maskrcnn_benchmark.data.transforms.transforms import Resize  # noqa: F401  (the original defined one here)
from maskrcnn_benchmark.engine.predictor import COCODemo, Predictor, vis_keypoints  # noqa: F401

__all__ = ["COCODemo", "Predictor", "Resize", "vis_keypoints"]
