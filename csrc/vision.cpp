// The extension module maskrcnn_benchmark._C.
//
// Every op is declared once here, in the `maskrcnn_benchmark` operator namespace, so that it is
// reachable as torch.ops.maskrcnn_benchmark.<name>. Kernels are registered per device in
// csrc/cpu/*.cpp (CPU) and csrc/cuda/*.cu (CUDA). Autograd formulas and fake (meta) kernels
// live in Python next to each wrapper (maskrcnn_benchmark/layers/*.py); torch imports that
// package by itself when it needs the fake kernels (set_python_module below).
//
// Box convention everywhere: (x1, y1, x2, y2) in image pixels; RoIs are (batch_index, x1, y1, x2, y2).
#include <Python.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/extension.h>

TORCH_LIBRARY(maskrcnn_benchmark, m) {
  m.set_python_module("maskrcnn_benchmark.layers");
  // Greedy NMS with the legacy "+1" area convention; suppresses a box when IoU > iou_threshold.
  // Returns kept indices into `dets`, in ascending index order.
  m.def("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor");
  // NMS applied independently within each value of `idxs` (class or level).
  // Returns kept indices ordered by idxs ascending, then index ascending.
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

namespace {

// The original library exposed its kernels as plain functions of `_C` (for example `_C.nms`).
// These keep that surface: each forwards to the dispatcher op, so device selection, autocast
// and tracing behave exactly as for torch.ops.maskrcnn_benchmark.*.
at::Tensor call_nms(const at::Tensor& dets, const at::Tensor& scores, double threshold) {
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("maskrcnn_benchmark::nms", "").typed<
      at::Tensor(const at::Tensor&, const at::Tensor&, double)>();
  return op.call(dets, scores, threshold);
}

at::Tensor call_roi_align_forward(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("maskrcnn_benchmark::roi_align_forward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, int64_t, int64_t, int64_t, bool)>();
  return op.call(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, false);
}

at::Tensor call_roi_align_backward(
    const at::Tensor& grad, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t sampling_ratio) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("maskrcnn_benchmark::roi_align_backward", "")
          .typed<at::Tensor(
              const at::Tensor&, const at::Tensor&, double, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
              int64_t, bool)>();
  return op.call(
      grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width, sampling_ratio,
      false);
}

std::tuple<at::Tensor, at::Tensor> call_roi_pool_forward(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("maskrcnn_benchmark::roi_pool_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double, int64_t, int64_t)>();
  return op.call(input, rois, spatial_scale, pooled_height, pooled_width);
}

// The original's signature carries `input` although only its shape was needed.
at::Tensor call_roi_pool_backward(
    const at::Tensor& grad, const at::Tensor& /*input*/, const at::Tensor& rois, const at::Tensor& argmax,
    double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
    int64_t height, int64_t width) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("maskrcnn_benchmark::roi_pool_backward", "")
          .typed<at::Tensor(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, double, int64_t, int64_t, int64_t, int64_t,
              int64_t, int64_t)>();
  return op.call(grad, rois, argmax, spatial_scale, pooled_height, pooled_width, batch_size, channels, height, width);
}

at::Tensor call_focal_forward(
    const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes, double gamma, double alpha) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("maskrcnn_benchmark::sigmoid_focal_loss_forward", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, double, double)>();
  return op.call(logits, targets, num_classes, gamma, alpha);
}

at::Tensor call_focal_backward(
    const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& d_losses, int64_t num_classes,
    double gamma, double alpha) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("maskrcnn_benchmark::sigmoid_focal_loss_backward", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, double, double)>();
  return op.call(logits, targets, d_losses, num_classes, gamma, alpha);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "maskrcnn_benchmark compiled ops (also registered as torch.ops.maskrcnn_benchmark.*)";
  m.def("nms", &call_nms, "non-maximum suppression (legacy +1 convention)");
  m.def("roi_align_forward", &call_roi_align_forward, "ROIAlign forward (aligned=False)");
  m.def("roi_align_backward", &call_roi_align_backward, "ROIAlign backward (aligned=False)");
  m.def("roi_pool_forward", &call_roi_pool_forward, "ROIPool forward");
  m.def("roi_pool_backward", &call_roi_pool_backward, "ROIPool backward");
  m.def("sigmoid_focalloss_forward", &call_focal_forward, "SigmoidFocalLoss forward");
  m.def("sigmoid_focalloss_backward", &call_focal_backward, "SigmoidFocalLoss backward");
#ifdef WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
}
