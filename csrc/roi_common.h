// Shared by the ROIAlign and ROIPool kernels, CPU (csrc/cpu/) and CUDA (csrc/cuda/): the argument
// checks and ROIPool's coordinate rounding.
//
// Header-only, plain ATen/c10: includable from .cpp and .cu files alike. The messages are the ops'
// documented errors (the Python fake kernels in maskrcnn_benchmark/layers/_roi_common.py check the
// same conditions); `fn` is the op name that prefixes each message. Device-specific checks stay with
// their kernels (the batch indices, for example, are checked on the host data on the CPU and with
// one flag read back from the GPU on CUDA).
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cstdint>

namespace maskrcnn_benchmark {

// ROIPool: float -> integer pixel coordinate, saturating at +-2^30 (NaN -> the lower bound) so that
// absurd boxes stay defined. Host and device.
template <typename T>
C10_HOST_DEVICE inline int64_t roi_pool_coord(T v) {
  constexpr T kLimit = T(1 << 30);
  if (!(v > -kLimit)) {
    return -(int64_t(1) << 30);
  }
  if (v > kLimit) {
    return int64_t(1) << 30;
  }
  return static_cast<int64_t>(v);
}

// rois [K, 5] of a floating dtype, and a positive output size.
inline void check_rois(const at::Tensor& rois, int64_t pooled_height, int64_t pooled_width, const char* fn) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, fn,
              ": rois must be a 2-D tensor [K, 5] of (batch_index, x1, y1, x2, y2), got shape ", rois.sizes());
  TORCH_CHECK(at::isFloatingType(rois.scalar_type()), fn, ": rois must have a floating-point dtype, got ",
              rois.scalar_type());
  TORCH_CHECK(pooled_height > 0 && pooled_width > 0, fn, ": pooled_height and pooled_width must be positive, got (",
              pooled_height, ", ", pooled_width, ")");
}

// Forward: input [N, C, H, W] of a floating dtype, rois on its device, then check_rois.
inline void check_roi_forward_args(const at::Tensor& input, const at::Tensor& rois, int64_t pooled_height,
                                   int64_t pooled_width, const char* fn) {
  TORCH_CHECK(input.dim() == 4, fn, ": input must be a 4-D tensor [N, C, H, W], got ", input.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), fn, ": input must have a floating-point dtype, got ",
              input.scalar_type());
  TORCH_CHECK(rois.device() == input.device(), fn, ": rois must be on the same device as input (input on ",
              input.device(), ", rois on ", rois.device(), ")");
  check_rois(rois, pooled_height, pooled_width, fn);
}

// Backward: grad [K, channels, pooled_height, pooled_width] of a floating dtype, rois (and argmax)
// on its device, check_rois, a non-negative input shape. `argmax` is ROIPool's argmax (same shape
// as grad, integer dtype); nullptr for ROIAlign.
inline void check_roi_backward_args(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor* argmax,
                                    int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                                    int64_t height, int64_t width, const char* fn) {
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), fn, ": grad must have a floating-point dtype, got ",
              grad.scalar_type());
  if (argmax == nullptr) {
    TORCH_CHECK(rois.device() == grad.device(), fn, ": rois must be on the same device as grad (grad on ",
                grad.device(), ", rois on ", rois.device(), ")");
  } else {
    TORCH_CHECK(rois.device() == grad.device() && argmax->device() == grad.device(), fn,
                ": rois and argmax must be on the same device as grad (grad on ", grad.device(), ", rois on ",
                rois.device(), ", argmax on ", argmax->device(), ")");
  }
  check_rois(rois, pooled_height, pooled_width, fn);
  TORCH_CHECK(batch_size >= 0 && channels >= 0 && height >= 0 && width >= 0, fn,
              ": batch_size, channels, height and width must be non-negative");
  const int64_t K = rois.size(0);
  TORCH_CHECK(grad.dim() == 4 && grad.size(0) == K && grad.size(1) == channels && grad.size(2) == pooled_height &&
                  grad.size(3) == pooled_width,
              fn, ": grad must have shape [K, channels, pooled_height, pooled_width] = [", K, ", ", channels, ", ",
              pooled_height, ", ", pooled_width, "], got ", grad.sizes());
  if (argmax != nullptr) {
    TORCH_CHECK(argmax->sizes() == grad.sizes(), fn, ": argmax must have the shape of grad ", grad.sizes(), ", got ",
                argmax->sizes());
    TORCH_CHECK(at::isIntegralType(argmax->scalar_type(), /*includeBool=*/false), fn,
                ": argmax must have an integer dtype, got ", argmax->scalar_type());
  }
}

}  // namespace maskrcnn_benchmark
