// ROIAlign (forward and backward) on the CPU.
//
// Semantics (= the original maskrcnn-benchmark / Detectron ROIAlign = torchvision.ops.roi_align):
//   rois[k] = (batch_index, x1, y1, x2, y2) in input-image pixels; spatial_scale maps them onto the
//   feature map. aligned=False: roi_start = x1 * scale, roi_size = max(x2 * scale - x1 * scale, 1).
//   aligned=True: 0.5 is subtracted from the scaled coordinates and the size is not forced >= 1.
//   Each of the pooled_height x pooled_width bins averages grid_h x grid_w bilinear samples taken at
//   start + (i + 0.5) * bin / grid (grid = sampling_ratio, or ceil(roi_size / pooled) when <= 0).
//   A sample with y < -1 or y > H (same for x) contributes 0; coordinates <= 0 are clamped to 0.
//
// Implementation. The bilinear weights of a sample are a product wy * wx, and the samples of a bin
// form a full grid, so a bin's weights are the outer product of a per-row list and a per-column
// list. Both lists are built once per RoI and axis (duplicate rows/columns merged, zero weights
// dropped), which makes the cost of huge boxes and of adaptive sampling grids one-dimensional.
// The feature map is read in a channels-last float layout, so the innermost loops are contiguous
// FMAs over channels that the compiler vectorises: the task functions are compiled for AVX2 with FMA
// and for the baseline ISA, and dispatch_isa (cpu/cpu_isa.h) runs the best one the CPU supports.
//   forward:  NCHW input: one task = one (channel block, image) pair; the block (a few MiB) is
//             transposed into a reused channels-last buffer, then all RoIs of the image are pooled
//             from it. Channels-last input (or too few blocks to feed the threads): the whole map is
//             used (converted) as one channels-last float tensor and RoIs are handed out dynamically.
//   backward: one task = one (channel block, image) pair, accumulated into a private channels-last
//             buffer (no races, no atomics) and then transposed into its part of the NCHW result.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/roi_cpu_common.h"
#include "roi_common.h"

namespace maskrcnn_benchmark {
namespace {

// The version compiled besides the baseline one (cpu/cpu_isa.h): AVX2 with FMA, for its fused
// multiply-adds in the accumulation loops.
constexpr Isa kIsa = Isa::kAvx2Fma;

// Upper bound on the adaptive sampling grid per bin and axis (only absurd boxes reach it: more than
// 65536 * pooled / spatial_scale input pixels); keeps the loops and the sample count bounded.
constexpr int64_t kMaxGrid = 65536;

// Per-axis sample list of one RoI: for each pooled cell p, the entries [begin[p], begin[p+1]) give the
// pixel rows (or columns) touched by the cell's samples and their summed bilinear weights.
template <typename T>
struct AxisSamples {
  std::vector<int64_t> begin;
  std::vector<int64_t> index;
  std::vector<T> weight;

  // Not inlined into the AVX2/FMA version: compiled for the baseline ISA, the coordinate arithmetic
  // is not contracted into FMAs, so boundary decisions match torchvision's kernel bit for bit.
  MRB_NOINLINE void build(T start, T bin, int64_t pooled, int64_t grid, int64_t size, T scale) {
    begin.resize(pooled + 1);
    index.clear();
    weight.clear();
    const T fsize = static_cast<T>(size);
    const T fgrid = static_cast<T>(grid);
    for (int64_t p = 0; p < pooled; ++p) {
      const size_t first = index.size();
      begin[p] = static_cast<int64_t>(first);
      auto push = [&](int64_t idx, T w) {
        if (w == T(0)) {
          return;
        }
        // Samples advance monotonically, so a repeated pixel is always one of the last two entries.
        const size_t n = index.size();
        if (n > first && index[n - 1] == idx) {
          weight[n - 1] += w;
        } else if (n > first + 1 && index[n - 2] == idx) {
          weight[n - 2] += w;
        } else {
          index.push_back(idx);
          weight.push_back(w);
        }
      };
      for (int64_t i = 0; i < grid; ++i) {
        T y = start + static_cast<T>(p) * bin + static_cast<T>(static_cast<float>(i) + .5f) * bin / fgrid;
        if (y < T(-1) || y > fsize) {
          continue;  // this sample contributes zero to the whole row (or column) of samples
        }
        if (y <= T(0)) {
          y = T(0);
        }
        int64_t lo = static_cast<int64_t>(y);
        int64_t hi;
        if (lo >= size - 1) {
          lo = hi = size - 1;
          y = static_cast<T>(lo);
        } else {
          hi = lo + 1;
        }
        const T l = y - static_cast<T>(lo);
        const T h = T(1) - l;
        push(lo, h * scale);
        push(hi, l * scale);
      }
    }
    begin[pooled] = static_cast<int64_t>(index.size());
  }
};

template <typename T>
struct RoiGeometry {
  int64_t batch = 0;
  AxisSamples<T> ys;  // rows; weights carry the 1 / count normalisation
  AxisSamples<T> xs;  // columns

  MRB_NOINLINE void build(const T* roi, T spatial_scale, int64_t pooled_height, int64_t pooled_width,
                          int64_t sampling_ratio, bool aligned, int64_t height, int64_t width) {
    batch = static_cast<int64_t>(roi[0]);
    const T offset = aligned ? T(0.5) : T(0);
    const T start_w = roi[1] * spatial_scale - offset;
    const T start_h = roi[2] * spatial_scale - offset;
    const T end_w = roi[3] * spatial_scale - offset;
    const T end_h = roi[4] * spatial_scale - offset;
    T roi_w = end_w - start_w;
    T roi_h = end_h - start_h;
    if (!aligned) {
      roi_w = std::max(roi_w, T(1));
      roi_h = std::max(roi_h, T(1));
    }
    const T bin_h = roi_h / static_cast<T>(pooled_height);
    const T bin_w = roi_w / static_cast<T>(pooled_width);
    auto grid_of = [&](T roi_size, int64_t pooled) -> int64_t {
      if (sampling_ratio > 0) {
        return sampling_ratio;
      }
      const T g = std::ceil(roi_size / static_cast<T>(pooled));
      if (!(g > T(0))) {
        return 0;  // empty (aligned=True with x2 <= x1) or NaN box: no samples
      }
      return g >= static_cast<T>(kMaxGrid) ? kMaxGrid : static_cast<int64_t>(g);
    };
    const int64_t grid_h = grid_of(roi_h, pooled_height);
    const int64_t grid_w = grid_of(roi_w, pooled_width);
    const int64_t count = std::max<int64_t>(grid_h * grid_w, 1);
    const T inv_count = T(1) / static_cast<T>(count);
    ys.build(start_h, bin_h, pooled_height, grid_h, height, inv_count);
    xs.build(start_w, bin_w, pooled_width, grid_w, width, T(1));
  }
};

// acc[c] += sum_i w_i * p_i[c]   (contiguous, branch-free: vectorised by the compiler)
template <typename T>
MRB_INLINE void axpy1(T* MRB_RESTRICT acc, const T* MRB_RESTRICT p0, T w0, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    acc[c] += w0 * p0[c];
  }
}
template <typename T>
MRB_INLINE void axpy2(T* MRB_RESTRICT acc, const T* MRB_RESTRICT p0, const T* MRB_RESTRICT p1, T w0, T w1, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    acc[c] += w0 * p0[c] + w1 * p1[c];
  }
}
template <typename T>
MRB_INLINE void axpy4(T* MRB_RESTRICT acc, const T* MRB_RESTRICT p0, const T* MRB_RESTRICT p1, const T* MRB_RESTRICT p2,
                      const T* MRB_RESTRICT p3, T w0, T w1, T w2, T w3, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    acc[c] += (w0 * p0[c] + w1 * p1[c]) + (w2 * p2[c] + w3 * p3[c]);
  }
}

template <typename scalar_t, typename T>
struct ForwardArgs {
  const T* rois;     // [K, 5]
  scalar_t* output;  // [K, C, PH, PW] contiguous
  T spatial_scale;
  int64_t channels, height, width, pooled_height, pooled_width, sampling_ratio;
  bool aligned;
};

template <typename T>
struct Workspace {
  RoiGeometry<T> geo;
  std::vector<T> buf;  // forward: [H * W, cb] block of the feature map; backward: its gradient
  std::vector<T> vec;  // [cb]: forward accumulator, backward gradient of one bin
};

// Pools RoI k over channels [c0, c0 + cb). `image` points at channel c0 of pixel (0, 0) of the RoI's
// image in a channels-last layout whose pixels are `pstride` elements apart.
template <typename scalar_t, typename T>
MRB_INLINE void forward_roi(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, int64_t k, const T* image,
                            int64_t pstride, int64_t c0, int64_t cb) {
  const int64_t W = a.width, PH = a.pooled_height, PW = a.pooled_width;
  T* MRB_RESTRICT acc = ws.vec.data();
  const RoiGeometry<T>& g = ws.geo;
  scalar_t* out = a.output + (k * a.channels + c0) * PH * PW;
  for (int64_t ph = 0; ph < PH; ++ph) {
    const int64_t yb = g.ys.begin[ph], ye = g.ys.begin[ph + 1];
    for (int64_t pw = 0; pw < PW; ++pw) {
      const int64_t xb = g.xs.begin[pw], xe = g.xs.begin[pw + 1];
      std::fill(acc, acc + cb, T(0));
      for (int64_t yi = yb; yi < ye; ++yi) {
        const T wy = g.ys.weight[yi];
        const T* row = image + g.ys.index[yi] * W * pstride;
        const int64_t* xs = g.xs.index.data();
        const T* wx = g.xs.weight.data();
        int64_t xi = xb;
        for (; xi + 4 <= xe; xi += 4) {
          axpy4(acc, row + xs[xi] * pstride, row + xs[xi + 1] * pstride, row + xs[xi + 2] * pstride,
                row + xs[xi + 3] * pstride, wy * wx[xi], wy * wx[xi + 1], wy * wx[xi + 2], wy * wx[xi + 3], cb);
        }
        if (xi + 2 <= xe) {
          axpy2(acc, row + xs[xi] * pstride, row + xs[xi + 1] * pstride, wy * wx[xi], wy * wx[xi + 1], cb);
          xi += 2;
        }
        if (xi < xe) {
          axpy1(acc, row + xs[xi] * pstride, wy * wx[xi], cb);
        }
      }
      scalar_t* o = out + ph * PW + pw;
      const int64_t stride = PH * PW;
      for (int64_t c = 0; c < cb; ++c) {
        o[c * stride] = static_cast<scalar_t>(acc[c]);
      }
    }
  }
}

// Channels-last feature map of the right dtype: every RoI pools all channels straight from it.
template <typename scalar_t, typename T>
MRB_INLINE void forward_rois_nhwc(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, const T* input, int64_t k0,
                                  int64_t k1) {
  const int64_t C = a.channels, H = a.height, W = a.width;
  ws.vec.resize(C);
  for (int64_t k = k0; k < k1; ++k) {
    ws.geo.build(a.rois + k * 5, a.spatial_scale, a.pooled_height, a.pooled_width, a.sampling_ratio, a.aligned, H, W);
    forward_roi(a, ws, k, input + ws.geo.batch * H * W * C, C, 0, C);
  }
}

// NCHW feature map: one task = one image and one block of cb channels. The block is first
// transposed into a small channels-last buffer (cache-resident, reused between tasks), then every
// RoI of the image pools those channels from it.
template <typename scalar_t, typename T>
MRB_INLINE void forward_block(const ForwardArgs<scalar_t, T>& a, Workspace<T>& ws, const scalar_t* input,
                              const int64_t* order, const int64_t* img_begin, int64_t n, int64_t c0, int64_t cb) {
  const int64_t C = a.channels, H = a.height, W = a.width, HW = H * W;
  ws.buf.resize(HW * cb);
  ws.vec.resize(cb);
  T* MRB_RESTRICT buf = ws.buf.data();
  const scalar_t* src = input + (n * C + c0) * HW;
  // (The same transposition as in roi_pool_cpu.cpp, deliberately written out in both hot paths:
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
    const int64_t k = order[r];
    ws.geo.build(a.rois + k * 5, a.spatial_scale, a.pooled_height, a.pooled_width, a.sampling_ratio, a.aligned, H, W);
    forward_roi(a, ws, k, buf, cb, c0, cb);
  }
}

at::Tensor roi_align_forward_cpu(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                 int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  constexpr const char* fn = "roi_align_forward";
  check_roi_forward_args(input, rois, pooled_height, pooled_width, fn);

  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3), K = rois.size(0);
  at::Tensor output =
      at::empty({K, C, pooled_height, pooled_width}, input.options().memory_format(at::MemoryFormat::Contiguous));
  if (output.numel() == 0) {
    return output;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align_forward_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const T* rois_p = rois_t.data_ptr<T>();
    if (H == 0 || W == 0) {
      output.zero_();
      return;
    }
    const ForwardArgs<scalar_t, T> args{rois_p,
                                        output.data_ptr<scalar_t>(),
                                        static_cast<T>(spatial_scale),
                                        C,
                                        H,
                                        W,
                                        pooled_height,
                                        pooled_width,
                                        sampling_ratio,
                                        aligned};
    forward_tasks<Workspace<T>, scalar_t>(
        input, rois_p, K, /*whole_map=*/false,
        [&](Workspace<T>& ws, const T* feat, int64_t k0, int64_t k1) {
          dispatch_isa<kIsa>([&](auto) MRB_ALWAYS_INLINE { forward_rois_nhwc(args, ws, feat, k0, k1); });
        },
        [&](Workspace<T>& ws, const scalar_t* src, const int64_t* order, const int64_t* img_begin, int64_t n,
            int64_t c0, int64_t cb) {
          dispatch_isa<kIsa>([&](auto)
                                 MRB_ALWAYS_INLINE { forward_block(args, ws, src, order, img_begin, n, c0, cb); });
        });
  });
  return output;
}

// ------------------------------------------------------------------------------------------------
// backward

template <typename scalar_t, typename T>
struct BackwardArgs {
  const scalar_t* grad;  // [K, C, PH, PW] with strides gs*
  int64_t gs0, gs1, gs2, gs3;
  const T* rois;
  const int64_t* order;      // RoI indices grouped by image
  const int64_t* img_begin;  // [N + 1] offsets into order
  scalar_t* grad_input;      // [N, C, H, W] contiguous
  T spatial_scale;
  int64_t channels, height, width, pooled_height, pooled_width, sampling_ratio;
  bool aligned;
};

template <typename scalar_t, typename T>
MRB_INLINE void backward_task(const BackwardArgs<scalar_t, T>& a, Workspace<T>& ws, int64_t n, int64_t c0, int64_t cb) {
  const int64_t C = a.channels, H = a.height, W = a.width, PH = a.pooled_height, PW = a.pooled_width;
  const int64_t HW = H * W;
  ws.buf.assign(HW * cb, T(0));
  ws.vec.resize(cb);
  T* MRB_RESTRICT buf = ws.buf.data();
  T* MRB_RESTRICT gvec = ws.vec.data();
  RoiGeometry<T>& g = ws.geo;
  // The gradient of one RoI and channel block is a small span (cb * PH * PW values when the grad is
  // contiguous) that the hardware prefetcher does not anticipate: fetch the next RoI's span early.
  const bool dense_grad = a.gs3 == 1 && a.gs2 == PW && a.gs1 == PH * PW;
  const int64_t span_bytes = cb * PH * PW * static_cast<int64_t>(sizeof(scalar_t));
  for (int64_t r = a.img_begin[n]; r < a.img_begin[n + 1]; ++r) {
    const int64_t k = a.order[r];
    if (dense_grad && r + 1 < a.img_begin[n + 1]) {
      const char* next = reinterpret_cast<const char*>(a.grad + a.order[r + 1] * a.gs0 + c0 * a.gs1);
      for (int64_t off = 0; off < span_bytes; off += 64) {
        MRB_PREFETCH(next + off, 0);
      }
    }
    g.build(a.rois + k * 5, a.spatial_scale, PH, PW, a.sampling_ratio, a.aligned, H, W);
    const scalar_t* gk = a.grad + k * a.gs0 + c0 * a.gs1;
    for (int64_t ph = 0; ph < PH; ++ph) {
      const int64_t yb = g.ys.begin[ph], ye = g.ys.begin[ph + 1];
      for (int64_t pw = 0; pw < PW; ++pw) {
        const int64_t xb = g.xs.begin[pw], xe = g.xs.begin[pw + 1];
        if (yb == ye || xb == xe) {
          continue;
        }
        const scalar_t* gb = gk + ph * a.gs2 + pw * a.gs3;
        for (int64_t c = 0; c < cb; ++c) {
          gvec[c] = static_cast<T>(gb[c * a.gs1]);
        }
        for (int64_t yi = yb; yi < ye; ++yi) {
          const T wy = g.ys.weight[yi];
          T* row = buf + g.ys.index[yi] * W * cb;
          for (int64_t xi = xb; xi < xe; ++xi) {
            axpy1(row + g.xs.index[xi] * cb, gvec, wy * g.xs.weight[xi], cb);
          }
        }
      }
    }
  }
  // Transpose the [HW, cb] block into grad_input[n, c0:c0+cb] (NCHW), tile by tile.
  scalar_t* out = a.grad_input + (n * C + c0) * HW;
  constexpr int64_t kTile = 64;
  for (int64_t p0 = 0; p0 < HW; p0 += kTile) {
    const int64_t p1 = std::min(HW, p0 + kTile);
    for (int64_t c = 0; c < cb; ++c) {
      scalar_t* MRB_RESTRICT o = out + c * HW;
      const T* MRB_RESTRICT src = buf + c;
      for (int64_t p = p0; p < p1; ++p) {
        o[p] = static_cast<scalar_t>(src[p * cb]);
      }
    }
  }
}

at::Tensor roi_align_backward_cpu(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                  int64_t pooled_height, int64_t pooled_width, int64_t batch_size, int64_t channels,
                                  int64_t height, int64_t width, int64_t sampling_ratio, bool aligned) {
  constexpr const char* fn = "roi_align_backward";
  check_roi_backward_args(grad, rois, /*argmax=*/nullptr, pooled_height, pooled_width, batch_size, channels, height,
                          width, fn);

  const int64_t K = rois.size(0);
  const int64_t N = batch_size, C = channels, H = height, W = width;
  at::Tensor grad_input = at::empty({N, C, H, W}, grad.options().memory_format(at::MemoryFormat::Contiguous));
  if (grad_input.numel() == 0) {
    return grad_input;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_align_backward_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const at::Tensor rois_t = checked_rois<T>(rois, N, fn);
    const T* rois_p = rois_t.data_ptr<T>();
    if (K == 0) {
      grad_input.zero_();
      return;
    }
    std::vector<int64_t> order, img_begin;
    group_by_image(rois_p, K, N, order, img_begin);
    const int64_t cb = channel_block(N, C, H * W, sizeof(T));
    const int64_t nblocks = (C + cb - 1) / cb;
    const BackwardArgs<scalar_t, T> args{grad.data_ptr<scalar_t>(),
                                         grad.stride(0),
                                         grad.stride(1),
                                         grad.stride(2),
                                         grad.stride(3),
                                         rois_p,
                                         order.data(),
                                         img_begin.data(),
                                         grad_input.data_ptr<scalar_t>(),
                                         static_cast<T>(spatial_scale),
                                         C,
                                         H,
                                         W,
                                         pooled_height,
                                         pooled_width,
                                         sampling_ratio,
                                         aligned};
    // One task = one (channel block, image) pair; block-major order so concurrent tasks differ.
    parallel_dynamic<Workspace<T>>(nblocks * N, 1, [&](Workspace<T>& ws, int64_t t0, int64_t t1) {
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t n = task % N, c0 = (task / N) * cb, this_cb = std::min(cb, C - c0);
        dispatch_isa<kIsa>([&](auto) MRB_ALWAYS_INLINE { backward_task(args, ws, n, c0, this_cb); });
      }
    });
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CPU, m) {
  m.impl("roi_align_forward", &roi_align_forward_cpu);
  m.impl("roi_align_backward", &roi_align_backward_cpu);
}

}  // namespace maskrcnn_benchmark
