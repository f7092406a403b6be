// ROIAlign (forward and backward) on CUDA. Semantics: see csrc/cpu/roi_align_cpu.cpp (= the original
// maskrcnn-benchmark / Detectron ROIAlign = torchvision.ops.roi_align; aligned=True subtracts 0.5).
//
// One thread per output element; the input is read through its strides (NCHW and channels-last work
// without a copy). Arithmetic is done in float (double for double inputs). The backward scatters
// with atomic adds into a float (or double) buffer, so it is not bitwise deterministic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // (not ATen/cuda/CUDAContext.h: that one needs the cuSPARSE/cuBLAS headers)
#include <torch/library.h>

#include "cuda/roi_cuda_common.h"
#include "roi_common.h"

namespace maskrcnn_benchmark {
namespace {

constexpr int64_t kMaxGrid = 65536;  // same bound on the adaptive sampling grid as on the CPU

template <typename T>
struct Geometry {
  T start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  T inv_count;
};

template <typename T>
__device__ __forceinline__ int64_t grid_size(T roi_size, int64_t pooled, int64_t sampling_ratio) {
  if (sampling_ratio > 0) {
    return sampling_ratio;
  }
  const T g = ceil(roi_size / static_cast<T>(pooled));
  if (!(g > T(0))) {
    return 0;
  }
  return g >= static_cast<T>(kMaxGrid) ? kMaxGrid : static_cast<int64_t>(g);
}

template <typename T>
__device__ __forceinline__ Geometry<T> roi_geometry(const T* roi, T scale, int64_t pooled_height, int64_t pooled_width,
                                                    int64_t sampling_ratio, bool aligned) {
  Geometry<T> g;
  const T offset = aligned ? T(0.5) : T(0);
  g.start_w = roi[1] * scale - offset;
  g.start_h = roi[2] * scale - offset;
  T roi_w = roi[3] * scale - offset - g.start_w;
  T roi_h = roi[4] * scale - offset - g.start_h;
  if (!aligned) {
    roi_w = max(roi_w, T(1));
    roi_h = max(roi_h, T(1));
  }
  g.bin_h = roi_h / static_cast<T>(pooled_height);
  g.bin_w = roi_w / static_cast<T>(pooled_width);
  g.grid_h = grid_size(roi_h, pooled_height, sampling_ratio);
  g.grid_w = grid_size(roi_w, pooled_width, sampling_ratio);
  const int64_t count = max(g.grid_h * g.grid_w, int64_t(1));
  g.inv_count = T(1) / static_cast<T>(count);
  return g;
}

// Sample coordinate -> (lo, hi, weight of lo, weight of hi); false when the sample lies outside [-1, size].
template <typename T>
__device__ __forceinline__ bool axis_weights(T y, int64_t size, int64_t& lo, int64_t& hi, T& wlo, T& whi) {
  if (y < T(-1) || y > static_cast<T>(size)) {
    return false;
  }
  if (y <= T(0)) {
    y = T(0);
  }
  lo = static_cast<int64_t>(y);
  if (lo >= size - 1) {
    lo = hi = size - 1;
    y = static_cast<T>(lo);
  } else {
    hi = lo + 1;
  }
  whi = y - static_cast<T>(lo);
  wlo = T(1) - whi;
  return true;
}

template <typename T>
__device__ __forceinline__ T sample_coord(T start, int64_t p, T bin, int64_t i, int64_t grid) {
  return start + static_cast<T>(p) * bin + static_cast<T>(static_cast<float>(i) + .5f) * bin / static_cast<T>(grid);
}

// Calls f(y0, y1, wy0, wy1, x0, x1, wx0, wx1) for every bilinear sample of bin (ph, pw) that lies
// inside the map: the sample is wy0 * wx0 * v[y0, x0] + wy0 * wx1 * v[y0, x1] + wy1 * wx0 * v[y1, x0]
// + wy1 * wx1 * v[y1, x1]. Shared by the forward (gather) and backward (scatter) kernels.
template <typename T, typename F>
__device__ __forceinline__ void for_each_sample(const Geometry<T>& g, int64_t ph, int64_t pw, int64_t H, int64_t W,
                                                const F& f) {
  for (int64_t iy = 0; iy < g.grid_h; ++iy) {
    int64_t y0, y1;
    T wy0, wy1;
    if (!axis_weights(sample_coord(g.start_h, ph, g.bin_h, iy, g.grid_h), H, y0, y1, wy0, wy1)) {
      continue;
    }
    for (int64_t ix = 0; ix < g.grid_w; ++ix) {
      int64_t x0, x1;
      T wx0, wx1;
      if (!axis_weights(sample_coord(g.start_w, pw, g.bin_w, ix, g.grid_w), W, x0, x1, wx0, wx1)) {
        continue;
      }
      f(y0, y1, wy0, wy1, x0, x1, wx0, wx1);
    }
  }
}

template <typename scalar_t, typename T>
__global__ void roi_align_forward_kernel(int64_t total, const scalar_t* __restrict__ input, int64_t sN, int64_t sC,
                                         int64_t sH, int64_t sW, const T* __restrict__ rois, T scale, int64_t N,
                                         int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW,
                                         int64_t sampling_ratio, bool aligned, scalar_t* __restrict__ output) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const auto [k, c, ph, pw] = output_index(i, C, PH, PW);
    const T* roi = rois + k * 5;
    if (!(roi[0] > T(-1) && roi[0] < static_cast<T>(N))) {
      output[i] = scalar_t(0);  // invalid batch index (only reachable during CUDA graph capture)
      continue;
    }
    const int64_t b = static_cast<int64_t>(roi[0]);
    const Geometry<T> g = roi_geometry(roi, scale, PH, PW, sampling_ratio, aligned);
    const scalar_t* plane = input + b * sN + c * sC;
    T acc = T(0);
    for_each_sample(g, ph, pw, H, W, [&](int64_t y0, int64_t y1, T wy0, T wy1, int64_t x0, int64_t x1, T wx0, T wx1) {
      acc +=
          wy0 * wx0 * static_cast<T>(plane[y0 * sH + x0 * sW]) + wy0 * wx1 * static_cast<T>(plane[y0 * sH + x1 * sW]) +
          wy1 * wx0 * static_cast<T>(plane[y1 * sH + x0 * sW]) + wy1 * wx1 * static_cast<T>(plane[y1 * sH + x1 * sW]);
    });
    output[i] = static_cast<scalar_t>(acc * g.inv_count);
  }
}

template <typename scalar_t, typename T>
__global__ void roi_align_backward_kernel(int64_t total, const scalar_t* __restrict__ grad, int64_t gs0, int64_t gs1,
                                          int64_t gs2, int64_t gs3, const T* __restrict__ rois, T scale, int64_t N,
                                          int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW,
                                          int64_t sampling_ratio, bool aligned, T* __restrict__ grad_input) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const auto [k, c, ph, pw] = output_index(i, C, PH, PW);
    const T* roi = rois + k * 5;
    if (!(roi[0] > T(-1) && roi[0] < static_cast<T>(N))) {
      continue;
    }
    const int64_t b = static_cast<int64_t>(roi[0]);
    const Geometry<T> g = roi_geometry(roi, scale, PH, PW, sampling_ratio, aligned);
    const T gval = static_cast<T>(grad[k * gs0 + c * gs1 + ph * gs2 + pw * gs3]) * g.inv_count;
    T* plane = grad_input + (b * C + c) * H * W;
    for_each_sample(g, ph, pw, H, W, [&](int64_t y0, int64_t y1, T wy0, T wy1, int64_t x0, int64_t x1, T wx0, T wx1) {
      gpuAtomicAddNoReturn(plane + y0 * W + x0, gval * wy0 * wx0);
      gpuAtomicAddNoReturn(plane + y0 * W + x1, gval * wy0 * wx1);
      gpuAtomicAddNoReturn(plane + y1 * W + x0, gval * wy1 * wx0);
      gpuAtomicAddNoReturn(plane + y1 * W + x1, gval * wy1 * wx1);
    });
  }
}

at::Tensor roi_align_forward_cuda(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                  int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  constexpr const char* fn = "roi_align_forward";
  check_roi_forward_args(input, rois, pooled_height, pooled_width, fn);
  const c10::cuda::CUDAGuard device_guard(input.device());

  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  at::Tensor output =
      at::empty({K, C, pooled_height, pooled_width}, input.options().memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) {
    return output;
  }
  if (H == 0 || W == 0) {
    check_batch_indices(rois, N, fn);
    return output.zero_();
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const int64_t total = output.numel();
    roi_align_forward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        total, input.data_ptr<scalar_t>(), input.stride(0), input.stride(1), input.stride(2), input.stride(3),
        rois_t.data_ptr<T>(), static_cast<T>(spatial_scale), N, C, H, W, pooled_height, pooled_width, sampling_ratio,
        aligned, output.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return output;
}

at::Tensor roi_align_backward_cuda(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                   int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                                   int64_t height, int64_t width, int64_t sampling_ratio, bool aligned) {
  constexpr const char* fn = "roi_align_backward";
  check_roi_backward_args(grad, rois, /*argmax=*/nullptr, pooled_height, pooled_width, batch_size, channels, height,
                          width, fn);
  const c10::cuda::CUDAGuard device_guard(grad.device());
  at::globalContext().alertNotDeterministic("roi_align_backward_cuda");

  const int64_t N = batch_size, C = channels, H = height, W = width;
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_align_backward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    grad_input = scatter_backward<T>(grad, rois, N, C, H, W, fn, [&](int64_t total, const T* rois_p, T* acc) {
      roi_align_backward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          total, grad.data_ptr<scalar_t>(), grad.stride(0), grad.stride(1), grad.stride(2), grad.stride(3), rois_p,
          static_cast<T>(spatial_scale), N, C, H, W, pooled_height, pooled_width, sampling_ratio, aligned, acc);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  m.impl("roi_align_forward", &roi_align_forward_cuda);
  m.impl("roi_align_backward", &roi_align_backward_cuda);
}

}  // namespace maskrcnn_benchmark
