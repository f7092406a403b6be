// ROIPool (forward and backward) on the CPU.
//
// Semantics (= the original's Caffe-style CUDA kernel = torchvision.ops.roi_pool):
//   rois[k] = (batch_index, x1, y1, x2, y2) in input-image pixels. start = round(x1 * scale),
//   end = round(x2 * scale), roi size = max(end - start + 1, 1), bin = size / pooled (float);
//   bin ph covers rows [floor(ph * bin_h), ceil((ph + 1) * bin_h)) + start, clipped to [0, H).
//   Output = max over the bin (strict '>' from -FLT_MAX, so the first maximum in row-major order
//   wins); argmax = flat index h * W + w in the input plane. An empty bin gives 0 and argmax -1.
//   Backward adds each output gradient to its argmax position.
//
// Implementation: like ROIAlign, the forward transposes one (image, channel block) at a time into a
// small channels-last buffer, so the max runs as branch-free vector selects over channels; its task
// functions are compiled for AVX2 with FMA (float: hand-written AVX2 bin max) and for the baseline
// ISA, and dispatch_isa (cpu/cpu_isa.h) runs the best one the CPU supports. The backward is a
// scatter by argmax; one task owns one (image, channel) plane, so there are no races.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/roi_cpu_common.h"
#include "roi_common.h"

#if MRB_X86
#include <immintrin.h>
#endif

namespace maskrcnn_benchmark {
namespace {

// The version compiled besides the baseline one (cpu/cpu_isa.h): AVX2 with FMA, as for ROIAlign; for
// float it uses the hand-written AVX2 bin max below.
constexpr Isa kIsa = Isa::kAvx2Fma;

template <typename T>
struct PoolBins {
  std::vector<int64_t> hs, he, ws, we;  // [PH] / [PW] clipped bin bounds

  // Baseline ISA (no FMA contraction), like torchvision's kernel: see roi_align_cpu.cpp.
  MRB_NOINLINE void build(const T* roi, T scale, int64_t PH, int64_t PW, int64_t H, int64_t W) {
    const int64_t start_w = roi_pool_coord(std::round(roi[1] * scale));
    const int64_t start_h = roi_pool_coord(std::round(roi[2] * scale));
    const int64_t end_w = roi_pool_coord(std::round(roi[3] * scale));
    const int64_t end_h = roi_pool_coord(std::round(roi[4] * scale));
    const int64_t roi_w = std::max<int64_t>(end_w - start_w + 1, 1);
    const int64_t roi_h = std::max<int64_t>(end_h - start_h + 1, 1);
    axis(hs, he, start_h, roi_h, PH, H);
    axis(ws, we, start_w, roi_w, PW, W);
  }

  static void axis(std::vector<int64_t>& b, std::vector<int64_t>& e, int64_t start, int64_t size, int64_t pooled,
                   int64_t limit) {
    b.resize(pooled);
    e.resize(pooled);
    const T bin = static_cast<T>(size) / static_cast<T>(pooled);
    for (int64_t p = 0; p < pooled; ++p) {
      const int64_t lo = roi_pool_coord(std::floor(static_cast<T>(p) * bin));
      const int64_t hi = roi_pool_coord(std::ceil(static_cast<T>(p + 1) * bin));
      b[p] = std::min(std::max<int64_t>(lo + start, 0), limit);
      e[p] = std::min(std::max<int64_t>(hi + start, 0), limit);
    }
  }
};

// Max (and first argmax) over the pixels [hs, he) x [ws, we) of a channels-last image, for cb channels.
template <typename T>
MRB_INLINE void max_bin_scalar(const T* image, int64_t pstride, int64_t W, int64_t hs, int64_t he, int64_t wst,
                               int64_t we, int64_t cb, T init, T* MRB_RESTRICT maxv, int32_t* MRB_RESTRICT arg) {
  for (int64_t c = 0; c < cb; ++c) {
    maxv[c] = init;
    arg[c] = -1;
  }
  for (int64_t h = hs; h < he; ++h) {
    for (int64_t w = wst; w < we; ++w) {
      const T* MRB_RESTRICT p = image + (h * W + w) * pstride;
      const int32_t idx = static_cast<int32_t>(h * W + w);
      for (int64_t c = 0; c < cb; ++c) {
        const T v = p[c];
        const bool gt = v > maxv[c];
        maxv[c] = gt ? v : maxv[c];
        arg[c] = gt ? idx : arg[c];
      }
    }
  }
}

#if MRB_X86
// The same with AVX2: 8 * V channels stay in registers while the bin is scanned, as two independent
// streams (even and odd columns) so that the compare/blend dependency chains overlap; the streams
// are merged at the end. The scan visits flat indices in increasing order, so "first maximum" is
// "largest value, then smallest index". _CMP_GT_OQ is false for NaN, exactly like the scalar '>'.
template <int V>
MRB_TARGET_AVX2_FMA MRB_INLINE void max_bin_avx2_chunk(const float* image, int64_t pstride, int64_t W, int64_t hs,
                                                       int64_t he, int64_t wst, int64_t we, float init, float* maxv,
                                                       int32_t* arg) {
  __m256 m0[V], m1[V];
  __m256i a0[V], a1[V];
  for (int i = 0; i < V; ++i) {
    m0[i] = m1[i] = _mm256_set1_ps(init);
    a0[i] = a1[i] = _mm256_set1_epi32(-1);
  }
  for (int64_t h = hs; h < he; ++h) {
    const float* row = image + h * W * pstride;
    int64_t w = wst;
    for (; w + 2 <= we; w += 2) {
      const float* p = row + w * pstride;
      const int32_t flat = static_cast<int32_t>(h * W + w);
      const __m256i idx0 = _mm256_set1_epi32(flat);
      const __m256i idx1 = _mm256_set1_epi32(flat + 1);
      for (int i = 0; i < V; ++i) {
        const __m256 v0 = _mm256_loadu_ps(p + 8 * i);
        const __m256 v1 = _mm256_loadu_ps(p + pstride + 8 * i);
        const __m256 gt0 = _mm256_cmp_ps(v0, m0[i], _CMP_GT_OQ);
        const __m256 gt1 = _mm256_cmp_ps(v1, m1[i], _CMP_GT_OQ);
        m0[i] = _mm256_blendv_ps(m0[i], v0, gt0);
        m1[i] = _mm256_blendv_ps(m1[i], v1, gt1);
        a0[i] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a0[i]), _mm256_castsi256_ps(idx0), gt0));
        a1[i] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a1[i]), _mm256_castsi256_ps(idx1), gt1));
      }
    }
    if (w < we) {
      const float* p = row + w * pstride;
      const __m256i idx0 = _mm256_set1_epi32(static_cast<int32_t>(h * W + w));
      for (int i = 0; i < V; ++i) {
        const __m256 v0 = _mm256_loadu_ps(p + 8 * i);
        const __m256 gt0 = _mm256_cmp_ps(v0, m0[i], _CMP_GT_OQ);
        m0[i] = _mm256_blendv_ps(m0[i], v0, gt0);
        a0[i] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a0[i]), _mm256_castsi256_ps(idx0), gt0));
      }
    }
  }
  for (int i = 0; i < V; ++i) {
    // Take stream 1 where it is larger, or equal with a smaller index (equal values are either
    // both found or both the untouched initial value with index -1).
    const __m256 gt = _mm256_cmp_ps(m1[i], m0[i], _CMP_GT_OQ);
    const __m256 eq = _mm256_cmp_ps(m1[i], m0[i], _CMP_EQ_OQ);
    const __m256 earlier = _mm256_castsi256_ps(_mm256_cmpgt_epi32(a0[i], a1[i]));
    const __m256 take = _mm256_or_ps(gt, _mm256_and_ps(eq, earlier));
    _mm256_storeu_ps(maxv + 8 * i, _mm256_blendv_ps(m0[i], m1[i], take));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(arg + 8 * i),
        _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a0[i]), _mm256_castsi256_ps(a1[i]), take)));
  }
}

MRB_TARGET_AVX2_FMA void max_bin_avx2(const float* image, int64_t pstride, int64_t W, int64_t hs, int64_t he,
                                      int64_t wst, int64_t we, int64_t cb, float init, float* maxv, int32_t* arg) {
  int64_t c = 0;
  for (; c + 32 <= cb; c += 32) {
    max_bin_avx2_chunk<4>(image + c, pstride, W, hs, he, wst, we, init, maxv + c, arg + c);
  }
  if (c + 16 <= cb) {
    max_bin_avx2_chunk<2>(image + c, pstride, W, hs, he, wst, we, init, maxv + c, arg + c);
    c += 16;
  }
  if (c + 8 <= cb) {
    max_bin_avx2_chunk<1>(image + c, pstride, W, hs, he, wst, we, init, maxv + c, arg + c);
    c += 8;
  }
  if (c < cb) {
    max_bin_scalar<float>(image + c, pstride, W, hs, he, wst, we, cb - c, init, maxv + c, arg + c);
  }
}
#endif

// The bin max for code compiled for instruction set I: the AVX2 version for float in the AVX2 one.
template <Isa I, typename T>
MRB_INLINE void max_bin(const T* image, int64_t pstride, int64_t W, int64_t hs, int64_t he, int64_t wst, int64_t we,
                        int64_t cb, T init, T* maxv, int32_t* arg) {
#if MRB_X86
  if constexpr (I == Isa::kAvx2Fma && std::is_same_v<T, float>) {
    max_bin_avx2(image, pstride, W, hs, he, wst, we, cb, init, maxv, arg);
    return;
  }
#endif
  max_bin_scalar<T>(image, pstride, W, hs, he, wst, we, cb, init, maxv, arg);
}

template <typename scalar_t, typename T>
struct ForwardArgs {
  const T* rois;
  scalar_t* output;  // [K, C, PH, PW]
  int32_t* argmax;   // [K, C, PH, PW]
  T spatial_scale;
  int64_t channels, height, width, pooled_height, pooled_width;
};

template <typename T>
struct Workspace {
  PoolBins<T> bins;
  std::vector<T> buf;        // [H * W, cb] channels-last block
  std::vector<T> maxv;       // [cb]
  std::vector<int32_t> arg;  // [cb]
};

// Pools RoI k over channels [c0, c0 + cb) of a channels-last image (pixels `pstride` apart).
template <Isa I, typename scalar_t, typename T>
MRB_INLINE void pool_roi(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, int64_t k, const T* image,
                         int64_t pstride, int64_t c0, int64_t cb) {
  const int64_t W = a.width, PH = a.pooled_height, PW = a.pooled_width, stride = PH * PW;
  ws.bins.build(a.rois + k * 5, a.spatial_scale, PH, PW, a.height, W);
  T* MRB_RESTRICT maxv = ws.maxv.data();
  int32_t* MRB_RESTRICT arg = ws.arg.data();
  const int64_t base = (k * a.channels + c0) * stride;
  for (int64_t ph = 0; ph < PH; ++ph) {
    const int64_t hs = ws.bins.hs[ph], he = ws.bins.he[ph];
    for (int64_t pw = 0; pw < PW; ++pw) {
      const int64_t wst = ws.bins.ws[pw], we = ws.bins.we[pw];
      const bool empty = he <= hs || we <= wst;
      const T init = empty ? T(0) : static_cast<T>(-FLT_MAX);
      max_bin<I, T>(image, pstride, W, hs, he, wst, we, cb, init, maxv, arg);
      scalar_t* o = a.output + base + ph * PW + pw;
      int32_t* am = a.argmax + base + ph * PW + pw;
      for (int64_t c = 0; c < cb; ++c) {
        o[c * stride] = static_cast<scalar_t>(maxv[c]);
        am[c * stride] = arg[c];
      }
    }
  }
}

template <Isa I, typename scalar_t, typename T>
MRB_INLINE void pool_rois_nhwc(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, const T* input, int64_t k0,
                               int64_t k1) {
  const int64_t C = a.channels, HW = a.height * a.width;
  ws.maxv.resize(C);
  ws.arg.resize(C);
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t b = static_cast<int64_t>(a.rois[k * 5]);
    pool_roi<I>(a, ws, k, input + b * HW * C, C, 0, C);
  }
}

template <Isa I, typename scalar_t, typename T>
MRB_INLINE void pool_block(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, const scalar_t* input,
                           const int64_t* order, const int64_t* img_begin, int64_t n, int64_t c0, int64_t cb) {
  const int64_t C = a.channels, HW = a.height * a.width;
  ws.buf.resize(HW * cb);
  ws.maxv.resize(cb);
  ws.arg.resize(cb);
  T* MRB_RESTRICT buf = ws.buf.data();
  const scalar_t* src = input + (n * C + c0) * HW;
  // (The same transposition as in roi_align_cpu.cpp, deliberately written out in both hot paths:
  // moved into a shared helper, it was compiled differently.)
  constexpr int64_t kTile = 64;
  for (int64_t p0 = 0; p0 < HW; p0 += kTile) {
    const int64_t p1 = std::min(HW, p0 + kTile);
    for (int64_t c = 0; c < cb; ++c) {
      const scalar_t* MRB_RESTRICT s = src + c * HW;
      T* MRB_RESTRICT d = buf + c;
      for (int64_t p = p0; p < p1; ++p) {
        d[p * cb] = static_cast<T>(s[p]);
      }
    }
  }
  for (int64_t r = img_begin[n]; r < img_begin[n + 1]; ++r) {
    pool_roi<I>(a, ws, order[r], buf, cb, c0, cb);
  }
}

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                                                        double spatial_scale, int64_t pooled_height,
                                                        int64_t pooled_width) {
  constexpr const char* fn = "roi_pool_forward";
  check_roi_forward_args(input, rois, pooled_height, pooled_width, fn);
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_pool_forward_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const T* rois_p = rois_t.data_ptr<T>();
    const ForwardArgs<scalar_t, T> args{rois_p,
                                        output.data_ptr<scalar_t>(),
                                        argmax.data_ptr<int32_t>(),
                                        static_cast<T>(spatial_scale),
                                        C,
                                        H,
                                        W,
                                        pooled_height,
                                        pooled_width};
    forward_tasks<Workspace<T>, scalar_t>(
        input, rois_p, K, /*whole_map=*/H * W == 0,
        [&](Workspace<T>& ws, const T* feat, int64_t k0, int64_t k1) {
          dispatch_isa<kIsa>([&](auto isa)
                                 MRB_ALWAYS_INLINE { pool_rois_nhwc<decltype(isa)::value>(args, ws, feat, k0, k1); });
        },
        [&](Workspace<T>& ws, const scalar_t* src, const int64_t* order, const int64_t* img_begin, int64_t n,
            int64_t c0, int64_t cb) {
          dispatch_isa<kIsa>([&](auto isa) MRB_ALWAYS_INLINE {
            pool_block<decltype(isa)::value>(args, ws, src, order, img_begin, n, c0, cb);
          });
        });
  });
  return {output, argmax};
}

at::Tensor roi_pool_backward_cpu(const at::Tensor& grad, const at::Tensor& rois, const at::Tensor& argmax,
                                 double spatial_scale, int64_t pooled_height, int64_t pooled_width, int64_t batch_size,
                                 int64_t channels, int64_t height, int64_t width) {
  constexpr const char* fn = "roi_pool_backward";
  (void)spatial_scale;  // the positions come from argmax
  check_roi_backward_args(grad, rois, &argmax, pooled_height, pooled_width, batch_size, channels, height, width, fn);
  const int64_t K = rois.size(0);

  const int64_t N = batch_size, C = channels, H = height, W = width, HW = H * W;
  at::Tensor grad_input = at::empty({N, C, H, W}, grad.options().memory_format(at::MemoryFormat::Contiguous));
  if (grad_input.numel() == 0) {
    return grad_input;
  }
  const at::Tensor am = argmax.to(at::kInt).contiguous();
  const int32_t* am_p = am.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_pool_backward_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const T* rois_p = rois_t.data_ptr<T>();
    std::vector<int64_t> order, img_begin;
    group_by_image(rois_p, K, N, order, img_begin);
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const int64_t gs0 = grad.stride(0), gs1 = grad.stride(1), gs2 = grad.stride(2), gs3 = grad.stride(3);
    const int64_t PH = pooled_height, PW = pooled_width, PHW = PH * PW;
    scalar_t* gi = grad_input.data_ptr<scalar_t>();
    // One task = one (channel, image) plane; channel-major so concurrent tasks differ in channel.
    parallel_dynamic<std::vector<T>>(C * N, 1, [&](std::vector<T>& plane_buf, int64_t t0, int64_t t1) {
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t n = task % N, c = task / N;
        scalar_t* out = gi + (n * C + c) * HW;
        T* plane;
        if constexpr (std::is_same_v<T, scalar_t>) {
          plane = reinterpret_cast<T*>(out);  // same type
          std::fill(plane, plane + HW, T(0));
        } else {
          plane_buf.assign(HW, T(0));
          plane = plane_buf.data();
        }
        for (int64_t r = img_begin[n]; r < img_begin[n + 1]; ++r) {
          const int64_t k = order[r];
          const int32_t* a = am_p + (k * C + c) * PHW;
          const scalar_t* gk = g + k * gs0 + c * gs1;
          for (int64_t ph = 0; ph < PH; ++ph) {
            for (int64_t pw = 0; pw < PW; ++pw) {
              const int32_t idx = a[ph * PW + pw];
              if (idx < 0) {
                continue;  // empty bin
              }
              TORCH_CHECK(idx < HW, fn, ": argmax value ", idx, " is out of range for a ", H, "x", W, " input plane");
              plane[idx] += static_cast<T>(gk[ph * gs2 + pw * gs3]);
            }
          }
        }
        if constexpr (!std::is_same_v<T, scalar_t>) {
          for (int64_t p = 0; p < HW; ++p) {
            out[p] = static_cast<scalar_t>(plane[p]);
          }
        }
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CPU, m) {
  m.impl("roi_pool_forward", &roi_pool_forward_cpu);
  m.impl("roi_pool_backward", &roi_pool_backward_cpu);
}

}  // namespace maskrcnn_benchmark
