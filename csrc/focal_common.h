// Shared by the sigmoid focal loss kernels, CPU (csrc/cpu/sigmoid_focal_loss_cpu.cpp) and CUDA
// (csrc/cuda/sigmoid_focal_loss_cuda.cu): the argument checks (same messages as the Python fake
// kernels in maskrcnn_benchmark/layers/sigmoid_focal_loss.py) and the gamma specialisation.
// Header-only host code, plain ATen: includable from .cpp and .cu files.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <limits>

namespace maskrcnn_benchmark {
namespace focal {

// logits [N, num_classes] floating, targets [N] integer, on one device. `op` prefixes the messages.
// max_columns: logits.size(1) must be below it (the CPU kernel indexes classes with int32).
inline void check_inputs(const char* op, const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes,
                         int64_t max_columns = std::numeric_limits<int64_t>::max()) {
  TORCH_CHECK(logits.dim() == 2, op, ": logits must have shape [N, num_classes], got ", logits.sizes());
  TORCH_CHECK(at::isFloatingType(logits.scalar_type()), op, ": logits must be a floating-point tensor, got ",
              logits.scalar_type());
  TORCH_CHECK(targets.dim() == 1, op, ": targets must have shape [N], got ", targets.sizes());
  TORCH_CHECK(at::isIntegralType(targets.scalar_type(), /*includeBool=*/false), op,
              ": targets must be an integer tensor (class ids, 0 = background, -1 = ignore), got ",
              targets.scalar_type());
  TORCH_CHECK(targets.size(0) == logits.size(0), op, ": targets and logits must have the same length N, got ",
              targets.size(0), " targets and ", logits.size(0), " rows of logits");
  TORCH_CHECK(num_classes == logits.size(1), op, ": num_classes (", num_classes, ") must equal logits.shape[1] (",
              logits.size(1), ")");
  TORCH_CHECK(logits.size(1) < max_columns, op, ": too many classes: ", logits.size(1));
  TORCH_CHECK(targets.device() == logits.device(), op,
              ": targets and logits must be on the same device, got targets on ", targets.device(), " and logits on ",
              logits.device());
}

// sigmoid_focal_loss_backward: check_inputs, then d_losses of the shape of logits, on its device, floating.
inline void check_backward_inputs(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& d_losses,
                                  int64_t num_classes, int64_t max_columns = std::numeric_limits<int64_t>::max()) {
  check_inputs("sigmoid_focal_loss_backward", logits, targets, num_classes, max_columns);
  TORCH_CHECK(d_losses.sizes() == logits.sizes(),
              "sigmoid_focal_loss_backward: d_losses must have the shape of logits ", logits.sizes(), ", got ",
              d_losses.sizes());
  TORCH_CHECK(d_losses.device() == logits.device(),
              "sigmoid_focal_loss_backward: d_losses and logits must be on the same device, got d_losses on ",
              d_losses.device(), " and logits on ", logits.device());
  TORCH_CHECK(at::isFloatingType(d_losses.scalar_type()),
              "sigmoid_focal_loss_backward: d_losses must be a floating-point tensor, got ", d_losses.scalar_type());
}

// The kernels specialise the exponent: 0, 1, 2 = that exact gamma, -1 = any other (exp(gamma * log(base))).
inline int gamma_mode(double gamma) {
  if (gamma == 0.0) {
    return 0;
  }
  if (gamma == 1.0) {
    return 1;
  }
  if (gamma == 2.0) {
    return 2;
  }
  return -1;
}

}  // namespace focal
}  // namespace maskrcnn_benchmark
