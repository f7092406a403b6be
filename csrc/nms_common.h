// Shared by the NMS kernels, CPU (csrc/cpu/nms_cpu.cpp) and CUDA (csrc/cuda/nms_cuda.cu): the
// argument checks (same messages as the Python fake kernels in maskrcnn_benchmark/layers/nms.py) and
// the threshold conversion. Header-only host code, plain ATen: includable from .cpp and .cu files.
// Each device adds its own limit on the number of boxes after check_boxes_scores.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <type_traits>

namespace maskrcnn_benchmark {
namespace nms {

// dets [N, 4] and scores [N], floating, on one device. `op` prefixes the messages.
inline void check_boxes_scores(const char* op, const at::Tensor& dets, const at::Tensor& scores) {
  TORCH_CHECK(dets.dim() == 2 && dets.size(1) == 4, op, ": dets (boxes) must have shape [N, 4], got ", dets.sizes());
  TORCH_CHECK(scores.dim() == 1, op, ": scores must have shape [N], got ", scores.sizes());
  TORCH_CHECK(dets.size(0) == scores.size(0), op, ": dets and scores must have the same length, got ", dets.size(0),
              " boxes and ", scores.size(0), " scores");
  TORCH_CHECK(dets.device() == scores.device(), op, ": dets and scores must be on the same device, got dets on ",
              dets.device(), " and scores on ", scores.device());
  TORCH_CHECK(at::isFloatingType(dets.scalar_type()), op, ": dets (boxes) must be a floating-point tensor, got ",
              dets.scalar_type());
  TORCH_CHECK(at::isFloatingType(scores.scalar_type()), op, ": scores must be a floating-point tensor, got ",
              scores.scalar_type());
}

// batched_nms: idxs [N] of an integer (or bool) dtype, on the device of dets.
inline void check_idxs(const at::Tensor& dets, const at::Tensor& idxs) {
  TORCH_CHECK(idxs.dim() == 1, "batched_nms: idxs must have shape [N], got ", idxs.sizes());
  TORCH_CHECK(idxs.size(0) == dets.size(0), "batched_nms: idxs and dets must have the same length, got ", idxs.size(0),
              " idxs and ", dets.size(0), " boxes");
  TORCH_CHECK(idxs.device() == dets.device(), "batched_nms: idxs and dets must be on the same device, got idxs on ",
              idxs.device(), " and dets on ", dets.device());
  TORCH_CHECK(at::isIntegralType(idxs.scalar_type(), /*includeBool=*/true),
              "batched_nms: idxs must be an integer tensor, got ", idxs.scalar_type());
}

// Largest threshold t of type T with (v > t) == ((double)v > thr) for every v of type T, so that
// the kernels compare in T exactly as a float64 comparison with the given threshold would.
template <typename T>
T exact_threshold(double thr) {
  if (std::is_same<T, double>::value || std::isnan(thr)) {
    return static_cast<T>(thr);
  }
  T t = static_cast<T>(thr);
  if (static_cast<double>(t) > thr) {
    t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  }
  return t;
}

}  // namespace nms
}  // namespace maskrcnn_benchmark
