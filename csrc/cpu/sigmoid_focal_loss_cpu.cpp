// CPU kernels of maskrcnn_benchmark::sigmoid_focal_loss_forward / _backward (RetinaNet's loss).
//
// logits [N, C] (C foreground classes), targets [N] integers: 0 = background, 1..C = class,
// -1 = ignore. For element (n, d), with x = logits[n, d], t = targets[n], p = sigmoid(x), q = 1 - p:
//   c1 = (t == d + 1), c2 = (t >= 0 && t != d + 1)
//   loss = -c1 * alpha * q^gamma * log(p) - c2 * (1 - alpha) * p^gamma * log(q)
//   dloss/dx = c1 * alpha * q^gamma * (gamma * p * log(p) - q)
//            + c2 * (1 - alpha) * p^gamma * (p - gamma * q * log(q))
// (targets < -1 contribute 0 like -1; targets > C make the row all-background, as in the original).
// log(p) = min(x, 0) - log1p(exp(-|x|)) and log(q) = min(-x, 0) - log1p(exp(-|x|)) are computed
// without cancellation or clamping (the original clamped log(p) at log(FLT_MIN)); p and q are both
// formed from exp(-|x|), so neither loses precision when the other is close to 1. x^gamma is
// exp(gamma * log x) except for gamma in {0, 1, 2}, which are exact.
//
// float32 runs an own vectorisable exp/log1p (max error a few ulp) in a loop compiled for AVX-512,
// AVX2 and baseline x86-64 (the best one the CPU supports runs: dispatch_isa, cpu/cpu_isa.h);
// float16/bfloat16 are computed in float32; float64 uses the C library's exp/log1p. The AVX2 and
// baseline versions contract no multiply-add; the AVX-512 one does (AVX-512F includes FMA), so its
// float32 results can differ from theirs in the last bits.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cpu/cpu_isa.h"
#include "focal_common.h"

namespace {

namespace focal = maskrcnn_benchmark::focal;
using maskrcnn_benchmark::dispatch_isa;
using maskrcnn_benchmark::Isa;

// bit_cast without C++20 (torch < 2.13 builds extensions as C++17); memcpy of a register-sized
// value compiles to a plain move.
template <typename To, typename From>
MRB_INLINE To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

// Branch-free select c ? a : b on the bit patterns. A plain ?: whose arm holds floating-point
// arithmetic is not if-converted by GCC (the arithmetic might trap), which blocks vectorisation.
MRB_INLINE float sel(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return bit_cast<float>((bit_cast<uint32_t>(a) & m) | (bit_cast<uint32_t>(b) & ~m));
}
MRB_INLINE double sel(bool c, double a, double b) {
  const uint64_t m = uint64_t(0) - static_cast<uint64_t>(c);
  return bit_cast<double>((bit_cast<uint64_t>(a) & m) | (bit_cast<uint64_t>(b) & ~m));
}

template <typename T>
MRB_INLINE T vmin(T a, T b) {
  return a < b ? a : b;
}
template <typename T>
MRB_INLINE T vmax(T a, T b) {
  return a > b ? a : b;
}

// exp(x) in float32, branch-free. Cody-Waite reduction x = n ln2 + r, |r| <= ~ln2/2, then the
// Taylor polynomial of degree 7 (truncation error < 4e-9 relative). Results below 2^-126 are
// flushed to 0, NaN propagates; x > 88.3 is clamped (not reached here: every argument is <= 0 for gamma >= 0).
MRB_INLINE float exp_f32(float x) {
  // (Clamped with sel, not min/max: GCC would split the loop into paths on the clamp and stop
  // vectorising it.)
  const float xc = sel(x < -87.3f, -87.3f, sel(x > 88.3f, 88.3f, x));
  const float fn = (xc * 1.44269502162933350f + 12582912.0f) - 12582912.0f;  // round(x / ln2)
  float r = xc - fn * 0.693145751953125f;                                    // ln2, high part (exact product)
  r = r - fn * 1.428606765330187e-06f;                                       // ln2, low part
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t n = static_cast<int32_t>(sel(fn == fn, fn, 0.0f));  // (NaN: any n, result replaced)
  const float scale = bit_cast<float>((n + 127) << 23);
  const float y = p * scale;
  return sel(x < -87.3f, 0.0f, sel(x == x, y, x));  // NaN in, NaN out
}

// log1p(e) for e in [0, 1], float32, branch-free. log(u) for u = 1 + e in [1, 2] via
// u = 2^k m, m in [1/sqrt2, sqrt2], log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716
// (odd series to s^11, truncation < 1e-10 relative); then the classic correction
// log1p(e) = log(u) * e / (u - 1) for the rounding of 1 + e.
MRB_INLINE float log1p_unit_f32(float e) {
  const float u = 1.0f + e;
  const bool big = u > 1.41421356f;
  const float m = sel(big, u * 0.5f, u);
  const float k = sel(big, 1.0f, 0.0f);
  const float f = m - 1.0f;  // exact
  const float s = f / (2.0f + f);
  const float z = s * s;
  float poly = 1.0f / 11.0f;
  poly = poly * z + 1.0f / 9.0f;
  poly = poly * z + 1.0f / 7.0f;
  poly = poly * z + 1.0f / 5.0f;
  poly = poly * z + 1.0f / 3.0f;
  poly = poly * z;
  const float two_s = 2.0f * s;
  const float logu = k * 0.693145751953125f + (two_s + (two_s * poly + k * 1.428606765330187e-06f));
  const float du = u - 1.0f;
  const bool exact = du == 0.0f;
  return sel(exact, e, logu * (e / sel(exact, 1.0f, du)));
}

struct MathF32 {
  static MRB_INLINE float exp(float x) { return exp_f32(x); }
  static MRB_INLINE float log1p_unit(float e) { return log1p_unit_f32(e); }
};

struct MathF64 {
  static MRB_INLINE double exp(double x) { return std::exp(x); }
  static MRB_INLINE double log1p_unit(double e) { return std::log1p(e); }
};

// The per-element quantities. With c1 (the element's class is the target): base = q, other = p;
// otherwise base = p, other = q. pow_base = base^gamma, log_other = log(other).
template <typename T, typename M, int G>
MRB_INLINE void focal_terms(T x, bool c1, T gamma, T& pow_base, T& base, T& other, T& log_other) {
  const T e = M::exp(-std::fabs(x));
  const T l = M::log1p_unit(e);
  const T inv = T(1) / (T(1) + e);
  const T ei = e * inv;
  const bool nonneg = x >= T(0);
  const T p = sel(nonneg, inv, ei);
  const T q = sel(nonneg, ei, inv);
  const T logp = vmin(T(0), x) - l;  // (vmin keeps a NaN second argument)
  const T logq = vmin(T(0), -x) - l;
  base = sel(c1, q, p);
  other = sel(c1, p, q);
  log_other = sel(c1, logp, logq);
  if (G == 0) {
    pow_base = T(1);
  } else if (G == 1) {
    pow_base = base;
  } else if (G == 2) {
    pow_base = base * base;
  } else {
    pow_base = M::exp(gamma * sel(c1, logq, logp));
  }
}

template <typename T, typename M, int G>
MRB_INLINE void forward_row(const T* MRB_RESTRICT x, T* MRB_RESTRICT out, int32_t C, int32_t pos, T gamma, T alpha) {
  const T w_pos = -alpha;
  const T w_neg = -(T(1) - alpha);
  for (int32_t d = 0; d < C; ++d) {
    const bool c1 = d == pos;
    T pow_base, base, other, log_other;
    focal_terms<T, M, G>(x[d], c1, gamma, pow_base, base, other, log_other);
    out[d] = sel(c1, w_pos, w_neg) * pow_base * log_other;
  }
}

template <typename T, typename M, int G>
MRB_INLINE void backward_row(const T* MRB_RESTRICT x, const T* MRB_RESTRICT dl, T* MRB_RESTRICT out, int32_t C,
                             int32_t pos, T gamma, T alpha) {
  const T w_pos = alpha;
  const T w_neg = -(T(1) - alpha);
  for (int32_t d = 0; d < C; ++d) {
    const bool c1 = d == pos;
    T pow_base, base, other, log_other;
    focal_terms<T, M, G>(x[d], c1, gamma, pow_base, base, other, log_other);
    // other * log(other) -> 0 as other -> 0 (only reached for infinite logits).
    const T olo = sel(other == T(0), T(0), other * log_other);
    out[d] = dl[d] * (sel(c1, w_pos, w_neg) * pow_base * (gamma * olo - base));
  }
}

// Target of a row -> column of its positive class (-1: none) and whether the row counts at all.
MRB_INLINE int32_t positive_column(int64_t t, int64_t C) {
  return (t >= 1 && t <= C) ? static_cast<int32_t>(t - 1) : -1;
}

// Rows [r0, r1): the losses (forward) or the gradients (kBackward; dl = d_losses) of each element;
// rows with a negative target are all zero.
template <bool kBackward, typename T, typename M, int G>
MRB_INLINE void rows_impl(const T* x, const int64_t* t, const T* dl, T* out, int64_t r0, int64_t r1, int64_t C, T gamma,
                          T alpha) {
  for (int64_t r = r0; r < r1; ++r) {
    T* o = out + r * C;
    if (t[r] < 0) {
      for (int64_t d = 0; d < C; ++d) {
        o[d] = T(0);
      }
      continue;
    }
    if constexpr (kBackward) {
      backward_row<T, M, G>(x + r * C, dl + r * C, o, static_cast<int32_t>(C), positive_column(t[r], C), gamma, alpha);
    } else {
      forward_row<T, M, G>(x + r * C, o, static_cast<int32_t>(C), positive_column(t[r], C), gamma, alpha);
    }
  }
}

// rows_impl for the gamma mode (focal::gamma_mode) chosen at run time. Always inlined, so that each
// entry point below (and each of its instruction-set versions) gets its own vectorised loops.
template <bool kBackward, typename T, typename M>
MRB_INLINE void rows_for_mode(int mode, const T* x, const int64_t* t, const T* dl, T* out, int64_t r0, int64_t r1,
                              int64_t C, T gamma, T alpha) {
  switch (mode) {
    case 0:
      return rows_impl<kBackward, T, M, 0>(x, t, dl, out, r0, r1, C, gamma, alpha);
    case 1:
      return rows_impl<kBackward, T, M, 1>(x, t, dl, out, r0, r1, C, gamma, alpha);
    case 2:
      return rows_impl<kBackward, T, M, 2>(x, t, dl, out, r0, r1, C, gamma, alpha);
    default:
      return rows_impl<kBackward, T, M, -1>(x, t, dl, out, r0, r1, C, gamma, alpha);
  }
}

// The entry points: float32 compiled for AVX-512, AVX2 (without FMA) and the baseline, float64 for the
// baseline only (it calls the C library's exp/log1p).
template <typename T>
using ForwardRowsFn = void (*)(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, T, T, int);
template <typename T>
using BackwardRowsFn = void (*)(const T*, const int64_t*, const T*, T*, int64_t, int64_t, int64_t, T, T, int);

void forward_rows_f32(const float* x, const int64_t* t, float* out, int64_t r0, int64_t r1, int64_t C, float gamma,
                      float alpha, int mode) {
  dispatch_isa<Isa::kAvx512f, Isa::kAvx2>([&](auto) MRB_ALWAYS_INLINE {
    rows_for_mode<false, float, MathF32>(mode, x, t, nullptr, out, r0, r1, C, gamma, alpha);
  });
}

void backward_rows_f32(const float* x, const int64_t* t, const float* dl, float* out, int64_t r0, int64_t r1, int64_t C,
                       float gamma, float alpha, int mode) {
  dispatch_isa<Isa::kAvx512f, Isa::kAvx2>([&](auto) MRB_ALWAYS_INLINE {
    rows_for_mode<true, float, MathF32>(mode, x, t, dl, out, r0, r1, C, gamma, alpha);
  });
}

void forward_rows_f64(const double* x, const int64_t* t, double* out, int64_t r0, int64_t r1, int64_t C, double gamma,
                      double alpha, int mode) {
  rows_for_mode<false, double, MathF64>(mode, x, t, nullptr, out, r0, r1, C, gamma, alpha);
}

void backward_rows_f64(const double* x, const int64_t* t, const double* dl, double* out, int64_t r0, int64_t r1,
                       int64_t C, double gamma, double alpha, int mode) {
  rows_for_mode<true, double, MathF64>(mode, x, t, dl, out, r0, r1, C, gamma, alpha);
}

// ---------------------------------------------------------------------------------------------

// The kernels index the classes of a row with int32.
constexpr int64_t kMaxColumns = std::numeric_limits<int32_t>::max();

int64_t row_grain(int64_t C) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)); }

// Runs the forward rows (dl undefined) or the backward rows over all rows in parallel, in T.
template <typename T>
void run_rows(ForwardRowsFn<T> forward_rows, BackwardRowsFn<T> backward_rows, const at::Tensor& x, const at::Tensor& t,
              const at::Tensor& dl, at::Tensor& out, double gamma, double alpha, int mode) {
  const int64_t N = x.size(0), C = x.size(1);
  const T* xp = x.data_ptr<T>();
  const int64_t* tp = t.data_ptr<int64_t>();
  const T* dp = dl.defined() ? dl.data_ptr<T>() : nullptr;
  T* op = out.data_ptr<T>();
  const T g = static_cast<T>(gamma), a = static_cast<T>(alpha);
  at::parallel_for(0, N, row_grain(C), [&](int64_t r0, int64_t r1) {
    if (dp == nullptr) {
      forward_rows(xp, tp, op, r0, r1, C, g, a, mode);
    } else {
      backward_rows(xp, tp, dp, op, r0, r1, C, g, a, mode);
    }
  });
}

// The forward (d_losses == nullptr: the losses) or the backward (the gradients) on the CPU, computed
// in float64 for float64 logits and in float32 otherwise; returned in the dtype of logits.
at::Tensor focal_cpu(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor* d_losses, double gamma,
                     double alpha) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const bool f64 = logits.scalar_type() == at::kDouble;
  const auto ct = f64 ? at::kDouble : at::kFloat;
  const at::Tensor x = logits.to(ct).contiguous();
  const at::Tensor dl = d_losses != nullptr ? d_losses->to(ct).contiguous() : at::Tensor();
  const at::Tensor t = targets.to(at::kLong).contiguous();
  at::Tensor out = at::empty({N, C}, x.options());
  if (N * C == 0) {
    return out.to(logits.scalar_type());
  }
  const int mode = focal::gamma_mode(gamma);
  if (f64) {
    run_rows<double>(forward_rows_f64, backward_rows_f64, x, t, dl, out, gamma, alpha, mode);
    return out;
  }
  run_rows<float>(forward_rows_f32, backward_rows_f32, x, t, dl, out, gamma, alpha, mode);
  return out.to(logits.scalar_type());
}

at::Tensor focal_forward_cpu(const at::Tensor& logits, const at::Tensor& targets, int64_t num_classes, double gamma,
                             double alpha) {
  focal::check_inputs("sigmoid_focal_loss_forward", logits, targets, num_classes, kMaxColumns);
  return focal_cpu(logits, targets, nullptr, gamma, alpha);
}

at::Tensor focal_backward_cpu(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& d_losses,
                              int64_t num_classes, double gamma, double alpha) {
  focal::check_backward_inputs(logits, targets, d_losses, num_classes, kMaxColumns);
  return focal_cpu(logits, targets, &d_losses, gamma, alpha);
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CPU, m) {
  m.impl("sigmoid_focal_loss_forward", focal_forward_cpu);
  m.impl("sigmoid_focal_loss_backward", focal_backward_cpu);
}
