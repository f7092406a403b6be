"""Deploy a trained detector: export its inference to ONNX or to an AOTInductor package (export.py),
and run the exported file on images as the Predictor would (runtime.py). See docs/DEPLOY.md.

    from maskrcnn_benchmark.deploy import export_onnx, load_model, load_onnx
    export_onnx(load_model(cfg, "model_final.pth"), cfg, "model.onnx")
    detector = load_onnx("model.onnx", score_threshold=0.5)
    boxlist = detector(cv2.imread("image.jpg"))

onnx, onnxruntime and onnxscript are optional (`pip install -e .[export]`); they are imported only
by the ONNX functions.
"""

from .export import export_model, export_onnx, export_program, export_pt2, load_model, min_image_side
from .graph import DetectorGraph
from .runtime import ExportedDetector, load_onnx, load_pt2, ops_library_path, run_onnx, run_pt2
from .support import FORMATS, NotExportableError, check_config_exportable, check_model_exportable

__all__ = [
    "DetectorGraph",
    "ExportedDetector",
    "FORMATS",
    "NotExportableError",
    "check_config_exportable",
    "check_model_exportable",
    "export_model",
    "export_onnx",
    "export_program",
    "export_pt2",
    "load_model",
    "load_onnx",
    "load_pt2",
    "min_image_side",
    "ops_library_path",
    "run_onnx",
    "run_pt2",
]
