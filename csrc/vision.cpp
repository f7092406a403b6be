// The extension module maskrcnn_benchmark._C.
//
// Every op is declared once here, in the `maskrcnn_benchmark` operator namespace, so that it is
// reachable as torch.ops.maskrcnn_benchmark.<name>. Kernels are registered per device in
// csrc/cpu/*.cpp (CPU) and csrc/cuda/*.cu (CUDA). Autograd formulas and fake (meta) kernels
// live in Python next to each wrapper (maskrcnn_benchmark/layers/*.py); torch imports that
// package by itself when it needs the fake kernels (set_python_module below).
//
// Box convention everywhere: (x1, y1, x2, y2) in image pixels; RoIs are (batch_index, x1, y1, x2, y2).
#include <pybind11/pybind11.h>  // (first: it includes Python.h, which must precede the standard headers)
#include <torch/library.h>

TORCH_LIBRARY(maskrcnn_benchmark, m) {
  m.set_python_module("maskrcnn_benchmark.layers");
  // Greedy NMS (semantics: docs/CONVENTIONS.md#nms); batched_nms runs it within each value of `idxs`.
  m.def("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor");
  m.def("batched_nms(Tensor dets, Tensor scores, Tensor idxs, float iou_threshold) -> Tensor");
  m.def(
      "roi_align_forward(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width, int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width, int batch_size, int channels, int height, int width, int sampling_ratio, "
      "bool aligned) -> Tensor");
  m.def(
      "roi_pool_forward(Tensor input, Tensor rois, float spatial_scale, int pooled_height, "
      "int pooled_width) -> (Tensor, Tensor)");
  m.def(
      "roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, "
      "int pooled_height, int pooled_width, int batch_size, int channels, int height, int width) -> Tensor");
  m.def(
      "sigmoid_focal_loss_forward(Tensor logits, Tensor targets, int num_classes, float gamma, "
      "float alpha) -> Tensor");
  m.def(
      "sigmoid_focal_loss_backward(Tensor logits, Tensor targets, Tensor d_losses, int num_classes, "
      "float gamma, float alpha) -> Tensor");
}

// The module object itself. The original library's plain functions (_C.nms, _C.roi_align_forward,
// ...) are written in Python, each forwarding to its op above, and copied onto the module here so
// that `import maskrcnn_benchmark._C` alone provides them: see maskrcnn_benchmark/_legacy_c.py.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "maskrcnn_benchmark compiled ops (registered as torch.ops.maskrcnn_benchmark.*)";
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  const pybind11::module_ legacy = pybind11::module_::import("maskrcnn_benchmark._legacy_c");
  for (const pybind11::handle name : legacy.attr("__all__")) {
    m.attr(name) = legacy.attr(name);
  }
}
