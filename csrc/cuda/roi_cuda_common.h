// Pieces shared by the ROIAlign and ROIPool CUDA kernels (csrc/cuda/roi_align_cuda.cu and
// roi_pool_cuda.cu): launch size, the batch-index check, the backwards' accumulation and the output
// element -> (k, c, ph, pw) decomposition. CUDA only (include from .cu files); like csrc/cpu/roi_cpu_common.h, each
// kernel file gets its own internal copy.
#pragma once

#include <ATen/ATen.h>
#include <ATen/ceil_div.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>

#include <algorithm>
#include <cstdint>

namespace maskrcnn_benchmark {
namespace {

constexpr int kThreads = 256;

// Grid-stride loops: enough blocks to fill the device, not more.
int64_t num_blocks(int64_t total) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  return std::max<int64_t>(1, std::min<int64_t>(at::ceil_div(total, int64_t(kThreads)), sms * 32));
}

// Raises a clear error for batch indices outside [0, N) (the kernels would otherwise skip those RoIs).
// This reads one flag back from the GPU; it is skipped while a CUDA graph is being captured, where
// a synchronisation is not allowed (the kernels then write zeros for such RoIs).
void check_batch_indices(const at::Tensor& rois, int64_t batch_size, const char* fn) {
  if (rois.size(0) == 0 || c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    return;
  }
  const at::Tensor b = rois.select(1, 0);
  const bool ok = at::logical_and(b.gt(-1), b.lt(static_cast<double>(batch_size))).all().item<bool>();
  TORCH_CHECK(ok, fn, ": rois[:, 0] (batch index) must lie in [0, ", batch_size, ") for input with batch size ",
              batch_size);
}

// rois as a contiguous tensor of the opmath type T, its batch indices checked.
template <typename T>
at::Tensor checked_rois(const at::Tensor& rois, int64_t batch_size, const char* fn) {
  at::Tensor rois_t = rois.to(c10::CppTypeToScalarType<T>::value).contiguous();
  check_batch_indices(rois_t, batch_size, fn);
  return rois_t;
}

// The backwards' frame: grad_input [N, C, H, W] is accumulated in the opmath type T, starting from
// zeros, by scatter(total, rois, acc) (atomic adds; total = grad.numel(); skipped when there is
// nothing to scatter), and returned in the dtype of grad.
template <typename T, typename Scatter>
at::Tensor scatter_backward(const at::Tensor& grad, const at::Tensor& rois, int64_t N, int64_t C, int64_t H, int64_t W,
                            const char* fn, const Scatter& scatter) {
  at::Tensor acc = at::zeros({N, C, H, W}, grad.options().dtype(c10::CppTypeToScalarType<T>::value));
  const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
  const int64_t total = grad.numel();
  if (total > 0 && acc.numel() > 0) {
    scatter(total, rois_t.data_ptr<T>(), acc.data_ptr<T>());
  }
  return acc.scalar_type() == grad.scalar_type() ? acc : acc.to(grad.scalar_type());
}

// Element i of a contiguous [K, C, PH, PW] output (or gradient of the output).
struct OutputIndex {
  int64_t k, c, ph, pw;
};

__device__ __forceinline__ OutputIndex output_index(int64_t i, int64_t C, int64_t PH, int64_t PW) {
  OutputIndex o;
  o.pw = i % PW;
  o.ph = (i / PW) % PH;
  o.c = (i / (PW * PH)) % C;
  o.k = i / (PW * PH * C);
  return o;
}

}  // namespace
}  // namespace maskrcnn_benchmark
