// CUDA kernels of maskrcnn_benchmark::sigmoid_focal_loss_forward / _backward.
//
// Same formulas as csrc/cpu/sigmoid_focal_loss_cpu.cpp (see there for the derivation): with
// p = sigmoid(x), q = 1 - p, c1 = (t == d + 1), c2 = (t >= 0 && t != d + 1):
//   loss = -c1 * alpha * q^gamma * log(p) - c2 * (1 - alpha) * p^gamma * log(q)
//   dloss/dx = c1 * alpha * q^gamma * (gamma * p * log(p) - q)
//            + c2 * (1 - alpha) * p^gamma * (p - gamma * q * log(q))
// computed in float32 for float32/float16/bfloat16 (float64 for float64), with stable logs
// (log p = min(x, 0) - log1p(exp(-|x|))) and p, q both formed from exp(-|x|).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ceil_div.h>
#include <c10/cuda/CUDAStream.h>  // (not ATen/cuda/CUDAContext.h: that one needs the cuSPARSE/cuBLAS headers)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>

#include "focal_common.h"

namespace {

namespace focal = maskrcnn_benchmark::focal;

__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double dev_log1p(double x) { return log1p(x); }

// With c1: base = q, other = p; otherwise base = p, other = q. Returns base^gamma.
template <typename T>
__device__ __forceinline__ T focal_terms(T x, bool c1, T gamma, int mode, T& base, T& other, T& log_other) {
  const T e = dev_exp(-(x < T(0) ? -x : x));
  const T l = dev_log1p(e);
  const T inv = T(1) / (T(1) + e);
  const T ei = e * inv;
  const bool nonneg = x >= T(0);
  const T p = nonneg ? inv : ei;
  const T q = nonneg ? ei : inv;
  const T logp = (x > T(0) ? T(0) : x) - l;
  const T logq = (x < T(0) ? T(0) : -x) - l;
  base = c1 ? q : p;
  other = c1 ? p : q;
  log_other = c1 ? logp : logq;
  switch (mode) {
    case 0:
      return T(1);
    case 1:
      return base;
    case 2:
      return base * base;
    default:
      return dev_exp(gamma * (c1 ? logq : logp));
  }
}

// One thread per element: the loss (forward) or, with kBackward, its gradient times d_losses.
template <bool kBackward, typename scalar_t>
__global__ void focal_kernel(int64_t total, int64_t C, const scalar_t* __restrict__ logits,
                             const int64_t* __restrict__ targets, const scalar_t* __restrict__ d_losses,
                             at::opmath_type<scalar_t> gamma, at::opmath_type<scalar_t> alpha, int mode,
                             scalar_t* __restrict__ out) {
  using T = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t t = targets[i / C];
    const int64_t d = i % C;
    T value = T(0);
    if (t >= 0) {
      const bool c1 = t == d + 1;
      T base, other, log_other;
      const T pow_base = focal_terms<T>(static_cast<T>(logits[i]), c1, gamma, mode, base, other, log_other);
      if constexpr (kBackward) {
        // other * log(other) -> 0 as other -> 0 (only reached for infinite logits).
        const T olo = other == T(0) ? T(0) : other * log_other;
        value = static_cast<T>(d_losses[i]) * ((c1 ? alpha : -(T(1) - alpha)) * pow_base * (gamma * olo - base));
      } else {
        value = (c1 ? -alpha : -(T(1) - alpha)) * pow_base * log_other;
      }
    }
    out[i] = static_cast<scalar_t>(value);
  }
}

int launch_blocks(int64_t total) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::ceil_div<int64_t>(total, 256), 65536)));
}

// The forward (the losses) or, with kBackward, the backward (the gradients; d_losses_in is then
// given), in the dtype of logits (computed in float32 for float16/bfloat16).
template <bool kBackward>
at::Tensor focal_cuda(const at::Tensor& logits_in, const at::Tensor& targets_in, const at::Tensor* d_losses_in,
                      double gamma, double alpha) {
  constexpr const char* name = kBackward ? "sigmoid_focal_loss_backward" : "sigmoid_focal_loss_forward";
  c10::cuda::CUDAGuard device_guard(logits_in.device());
  const at::Tensor logits = logits_in.contiguous();
  const at::Tensor targets = targets_in.to(at::kLong).contiguous();
  const at::Tensor d_losses = kBackward ? d_losses_in->to(logits.scalar_type()).contiguous() : at::Tensor();
  at::Tensor out = at::empty_like(logits, at::MemoryFormat::Contiguous);
  const int64_t total = logits.numel();
  const int64_t C = logits.size(1);
  if (total == 0) {
    return out;
  }
  const int mode = focal::gamma_mode(gamma);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), name, [&] {
    using T = at::opmath_type<scalar_t>;
    const scalar_t* d_losses_p = kBackward ? d_losses.data_ptr<scalar_t>() : nullptr;
    focal_kernel<kBackward, scalar_t><<<launch_blocks(total), 256, 0, stream>>>(
        total, C, logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(), d_losses_p, static_cast<T>(gamma),
        static_cast<T>(alpha), mode, out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor focal_forward_cuda(const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes, double gamma,
                              double alpha) {
  focal::check_inputs("sigmoid_focal_loss_forward", logits, targets, num_classes);
  return focal_cuda</*kBackward=*/false>(logits, targets, nullptr, gamma, alpha);
}

at::Tensor focal_backward_cuda(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& d_losses,
                               int64_t num_classes, double gamma, double alpha) {
  focal::check_backward_inputs(logits, targets, d_losses, num_classes);
  return focal_cuda</*kBackward=*/true>(logits, targets, &d_losses, gamma, alpha);
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  m.impl("sigmoid_focal_loss_forward", focal_forward_cuda);
  m.impl("sigmoid_focal_loss_backward", focal_backward_cuda);
}
