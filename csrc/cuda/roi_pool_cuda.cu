// ROIPool (forward and backward) on CUDA. Semantics: see csrc/cpu/roi_pool_cpu.cpp (the original's
// Caffe-style kernel = torchvision.ops.roi_pool): round() box corners, +1 sizes, floor/ceil bins,
// max with the first argmax (flat h * W + w), empty bin -> 0 / -1; backward scatters to argmax.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ceil_div.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>  // (not ATen/cuda/CUDAContext.h: that one needs the cuSPARSE/cuBLAS headers)
#include <torch/library.h>

#include <cfloat>

namespace maskrcnn_benchmark {
namespace {

constexpr int kThreads = 256;

// Grid-stride loops: enough blocks to fill the device, not more.
int64_t num_blocks(int64_t total) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  return std::max<int64_t>(1, std::min<int64_t>(at::ceil_div(total, int64_t(kThreads)), sms * 32));
}

void check_common(const at::Tensor& rois, int64_t pooled_height, int64_t pooled_width, const char* fn) {
  TORCH_CHECK(
      rois.dim() == 2 && rois.size(1) == 5, fn, ": rois must be a 2-D tensor [K, 5] of (batch_index, x1, y1, x2, y2), got shape ",
      rois.sizes());
  TORCH_CHECK(at::isFloatingType(rois.scalar_type()), fn, ": rois must have a floating-point dtype, got ", rois.scalar_type());
  TORCH_CHECK(
      pooled_height > 0 && pooled_width > 0, fn, ": pooled_height and pooled_width must be positive, got (", pooled_height, ", ",
      pooled_width, ")");
}

// See roi_align_cuda.cu: a clear error for batch indices outside [0, N), skipped during graph capture.
void check_batch_indices(const at::Tensor& rois, int64_t batch_size, const char* fn) {
  if (rois.size(0) == 0 || c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    return;
  }
  const at::Tensor b = rois.select(1, 0);
  const bool ok = at::logical_and(b.gt(-1), b.lt(static_cast<double>(batch_size))).all().item<bool>();
  TORCH_CHECK(ok, fn, ": rois[:, 0] (batch index) must lie in [0, ", batch_size, ") for input with batch size ", batch_size);
}

template <typename T>
__device__ __forceinline__ int64_t to_coord(T v) {
  const T limit = T(1 << 30);
  if (!(v > -limit)) {
    return -(int64_t(1) << 30);
  }
  if (v > limit) {
    return int64_t(1) << 30;
  }
  return static_cast<int64_t>(v);
}

template <typename T>
__device__ __forceinline__ void bin_range(T coord_start, T coord_end, T scale, int64_t p, int64_t pooled, int64_t limit, int64_t& b, int64_t& e) {
  const int64_t start = to_coord(round(coord_start * scale));
  const int64_t end = to_coord(round(coord_end * scale));
  const int64_t size = max(end - start + 1, int64_t(1));
  const T bin = static_cast<T>(size) / static_cast<T>(pooled);
  b = min(max(to_coord(floor(static_cast<T>(p) * bin)) + start, int64_t(0)), limit);
  e = min(max(to_coord(ceil(static_cast<T>(p + 1) * bin)) + start, int64_t(0)), limit);
}

template <typename scalar_t, typename T>
__global__ void roi_pool_forward_kernel(
    int64_t total, const scalar_t* __restrict__ input, int64_t sN, int64_t sC, int64_t sH, int64_t sW,
    const T* __restrict__ rois, T scale, int64_t N, int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW,
    scalar_t* __restrict__ output, int32_t* __restrict__ argmax) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t pw = i % PW;
    const int64_t ph = (i / PW) % PH;
    const int64_t c = (i / (PW * PH)) % C;
    const int64_t k = i / (PW * PH * C);
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
__global__ void roi_pool_backward_kernel(
    int64_t total, const scalar_t* __restrict__ grad, int64_t gs0, int64_t gs1, int64_t gs2, int64_t gs3,
    const int32_t* __restrict__ argmax, const T* __restrict__ rois, int64_t N, int64_t C, int64_t HW, int64_t PH, int64_t PW,
    T* __restrict__ grad_input) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t pw = i % PW;
    const int64_t ph = (i / PW) % PH;
    const int64_t c = (i / (PW * PH)) % C;
    const int64_t k = i / (PW * PH * C);
    const T bf = rois[k * 5];
    const int32_t a = argmax[i];
    if (a < 0 || a >= HW || !(bf > T(-1) && bf < static_cast<T>(N))) {
      continue;
    }
    const int64_t b = static_cast<int64_t>(bf);
    gpuAtomicAddNoReturn(grad_input + (b * C + c) * HW + a, static_cast<T>(grad[k * gs0 + c * gs1 + ph * gs2 + pw * gs3]));
  }
}

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cuda(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height, int64_t pooled_width) {
  constexpr const char* fn = "roi_pool_forward";
  TORCH_CHECK(input.dim() == 4, fn, ": input must be a 4-D tensor [N, C, H, W], got ", input.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), fn, ": input must have a floating-point dtype, got ", input.scalar_type());
  TORCH_CHECK(
      rois.device() == input.device(), fn, ": rois must be on the same device as input (input on ", input.device(), ", rois on ",
      rois.device(), ")");
  check_common(rois, pooled_height, pooled_width, fn);
  const c10::cuda::CUDAGuard device_guard(input.device());

  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  TORCH_CHECK(H * W <= std::numeric_limits<int32_t>::max(), fn, ": input planes larger than 2^31 elements are not supported");
  at::Tensor output = at::empty({K, C, pooled_height, pooled_width}, input.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor argmax = at::empty({K, C, pooled_height, pooled_width}, input.options().dtype(at::kInt).memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) {
    return {output, argmax};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_pool_forward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = rois.to(c10::CppTypeToScalarType<T>::value).contiguous();
    check_batch_indices(rois_t, N, fn);
    const int64_t total = output.numel();
    roi_pool_forward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        total, input.data_ptr<scalar_t>(), input.stride(0), input.stride(1), input.stride(2), input.stride(3),
        rois_t.data_ptr<T>(), static_cast<T>(spatial_scale), N, C, H, W, pooled_height, pooled_width,
        output.data_ptr<scalar_t>(), argmax.data_ptr<int32_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {output, argmax};
}

at::Tensor roi_pool_backward_cuda(
    const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t batch_size, int64_t channels, int64_t height, int64_t width) {
  constexpr const char* fn = "roi_pool_backward";
  (void)spatial_scale;
  TORCH_CHECK(at::isFloatingType(grad.scalar_type()), fn, ": grad must have a floating-point dtype, got ", grad.scalar_type());
  TORCH_CHECK(
      rois.device() == grad.device() && argmax.device() == grad.device(), fn,
      ": rois and argmax must be on the same device as grad (grad on ", grad.device(), ", rois on ", rois.device(),
      ", argmax on ", argmax.device(), ")");
  check_common(rois, pooled_height, pooled_width, fn);
  TORCH_CHECK(
      batch_size >= 0 && channels >= 0 && height >= 0 && width >= 0, fn,
      ": batch_size, channels, height and width must be non-negative");
  const int64_t K = rois.size(0);
  TORCH_CHECK(
      grad.dim() == 4 && grad.size(0) == K && grad.size(1) == channels && grad.size(2) == pooled_height &&
          grad.size(3) == pooled_width,
      fn, ": grad must have shape [K, channels, pooled_height, pooled_width] = [", K, ", ", channels, ", ", pooled_height, ", ",
      pooled_width, "], got ", grad.sizes());
  TORCH_CHECK(argmax.sizes() == grad.sizes(), fn, ": argmax must have the shape of grad ", grad.sizes(), ", got ", argmax.sizes());
  TORCH_CHECK(
      at::isIntegralType(argmax.scalar_type(), /*includeBool=*/false), fn, ": argmax must have an integer dtype, got ",
      argmax.scalar_type());
  const c10::cuda::CUDAGuard device_guard(grad.device());
  at::globalContext().alertNotDeterministic("roi_pool_backward_cuda");

  const int64_t N = batch_size, C = channels, H = height, W = width;
  const at::Tensor am = argmax.to(at::kInt).contiguous();
  at::Tensor grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_pool_backward_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::ScalarType acc_type = c10::CppTypeToScalarType<T>::value;
    at::Tensor acc = at::zeros({N, C, H, W}, grad.options().dtype(acc_type));
    const at::Tensor rois_t = rois.to(acc_type).contiguous();
    check_batch_indices(rois_t, N, fn);
    const int64_t total = grad.numel();
    if (total > 0 && acc.numel() > 0) {
      roi_pool_backward_kernel<scalar_t, T><<<num_blocks(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          total, grad.data_ptr<scalar_t>(), grad.stride(0), grad.stride(1), grad.stride(2), grad.stride(3),
          am.data_ptr<int32_t>(), rois_t.data_ptr<T>(), N, C, H * W, pooled_height, pooled_width, acc.data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    grad_input = acc.scalar_type() == grad.scalar_type() ? acc : acc.to(grad.scalar_type());
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  m.impl("roi_pool_forward", &roi_pool_forward_cuda);
  m.impl("roi_pool_backward", &roi_pool_backward_cuda);
}

}  // namespace maskrcnn_benchmark
