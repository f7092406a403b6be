// ROIPool (forward and backward) on CUDA. Semantics: see csrc/cpu/roi_pool_cpu.cpp (the original's
// Caffe-style kernel = torchvision.ops.roi_pool): round() box corners, +1 sizes, floor/ceil bins,
// max with the first argmax (flat h * W + w), empty bin -> 0 / -1; backward scatters to argmax.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // (not ATen/cuda/CUDAContext.h: that one needs the cuSPARSE/cuBLAS headers)
#include <torch/library.h>

#include <cfloat>

#include "cuda/roi_cuda_common.h"
#include "roi_common.h"

namespace maskrcnn_benchmark {
namespace {

template <typename T>
__device__ __forceinline__ void bin_range(T coord_start, T coord_end, T scale, int64_t p, int64_t pooled, int64_t limit,
                                          int64_t& b, int64_t& e) {
  const int64_t start = roi_pool_coord(round(coord_start * scale));
  const int64_t end = roi_pool_coord(round(coord_end * scale));
  const int64_t size = max(end - start + 1, int64_t(1));
  const T bin = static_cast<T>(size) / static_cast<T>(pooled);
  b = min(max(roi_pool_coord(floor(static_cast<T>(p) * bin)) + start, int64_t(0)), limit);
  e = min(max(roi_pool_coord(ceil(static_cast<T>(p + 1) * bin)) + start, int64_t(0)), limit);
}

template <typename scalar_t, typename T>
__global__ void roi_pool_forward_kernel(int64_t total, const scalar_t* __restrict__ input, int64_t sN, int64_t sC,
                                        int64_t sH, int64_t sW, const T* __restrict__ rois, T scale, int64_t N,
                                        int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW,
                                        scalar_t* __restrict__ output, int32_t* __restrict__ argmax) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const auto [k, c, ph, pw] = output_index(i, C, PH, PW);
    const T* roi = rois + k * 5;
    if (!(roi[0] > T(-1) && roi[0] < static_cast<T>(N))) {
      output[i] = scalar_t(0);  // invalid batch index (only reachable during CUDA graph capture)
      argmax[i] = -1;
      continue;
    }
    const int64_t b = static_cast<int64_t>(roi[0]);
    int64_t hs, he, ws, we;
    bin_range(roi[2], roi[4], scale, ph, PH, H, hs, he);
    bin_range(roi[1], roi[3], scale, pw, PW, W, ws, we);
    const bool empty = he <= hs || we <= ws;
    T maxval = empty ? T(0) : static_cast<T>(-FLT_MAX);
    int32_t maxidx = -1;
    const scalar_t* plane = input + b * sN + c * sC;
    for (int64_t h = hs; h < he; ++h) {
      for (int64_t w = ws; w < we; ++w) {
        const T v = static_cast<T>(plane[h * sH + w * sW]);
        if (v > maxval) {
          maxval = v;
          maxidx = static_cast<int32_t>(h * W + w);
        }
      }
    }
    output[i] = static_cast<scalar_t>(maxval);
    argmax[i] = maxidx;
  }
}

template <typename scalar_t, typename T>
__global__ void roi_pool_backward_kernel(int64_t total, const scalar_t* __restrict__ grad, int64_t gs0, int64_t gs1,
                                         int64_t gs2, int64_t gs3, const int32_t* __restrict__ argmax,
                                         const T* __restrict__ rois, int64_t N, int64_t C, int64_t HW, int64_t PH,
                                         int64_t PW, T* __restrict__ grad_input) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const auto [k, c, ph, pw] = output_index(i, C, PH, PW);
    const T bf = rois[k * 5];
    const int32_t a = argmax[i];
    if (a < 0 || a >= HW || !(bf > T(-1) && bf < static_cast<T>(N))) {
      continue;
    }
    const int64_t b = static_cast<int64_t>(bf);
    gpuAtomicAddNoReturn(grad_input + (b * C + c) * HW + a,
                         static_cast<T>(grad[k * gs0 + c * gs1 + ph * gs2 + pw * gs3]));
  }
}

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                                                         double spatial_scale, int64_t pooled_height,
                                                         int64_t pooled_width) {
  constexpr const char* fn = "roi_pool_forward";
  check_roi_forward_args(input, rois, pooled_height, pooled_width, fn);
  const c10::cuda::CUDAGuard device_guard(input.device());

  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  TORCH_CHECK(H * W <= std::numeric_limits<int32_t>::max(), fn,
              ": input planes larger than 2^31 elements are not supported");
  at::Tensor output =
      at::empty({K, C, pooled_height, pooled_width}, input.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor argmax = at::empty({K, C, pooled_height, pooled_width},
                                input.options().dtype(at::kInt).memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) {
    return {output, argmax};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_pool_forward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const int64_t total = output.numel();
    roi_pool_forward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        total, input.data_ptr<scalar_t>(), input.stride(0), input.stride(1), input.stride(2), input.stride(3),
        rois_t.data_ptr<T>(), static_cast<T>(spatial_scale), N, C, H, W, pooled_height, pooled_width,
        output.data_ptr<scalar_t>(), argmax.data_ptr<int32_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {output, argmax};
}

at::Tensor roi_pool_backward_cuda(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax,
                                  double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch_size,
                                  int64_t channels, int64_t height, int64_t width) {
  constexpr const char* fn = "roi_pool_backward";
  (void)spatial_scale;
  check_roi_backward_args(grad, rois, &argmax, pooled_height, pooled_width, batch_size, channels, height, width, fn);
  const c10::cuda::CUDAGuard device_guard(grad.device());
  at::globalContext().alertNotDeterministic("roi_pool_backward_cuda");

  const int64_t N = batch_size, C = channels, H = height, W = width;
  const at::Tensor am = argmax.to(at::kInt).contiguous();
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_pool_backward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    grad_input = scatter_backward<T>(grad, rois, N, C, H, W, fn, [&](int64_t total, const T* rois_p, T* acc) {
      roi_pool_backward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          total, grad.data_ptr<scalar_t>(), grad.stride(0), grad.stride(1), grad.stride(2), grad.stride(3),
          am.data_ptr<int32_t>(), rois_p, N, C, H * W, pooled_height, pooled_width, acc);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  m.impl("roi_pool_forward", &roi_pool_forward_cuda);
  m.impl("roi_pool_backward", &roi_pool_backward_cuda);
}

}  // namespace maskrcnn_benchmark
