// Pieces shared by the ROIAlign and ROIPool CPU kernels (csrc/cpu/roi_align_cpu.cpp and
// roi_pool_cpu.cpp): the batch-index check, RoI grouping by image, the dynamic work distribution and
// the forward's work split (channel blocking, channels-last map). The compiler macros and the
// instruction-set dispatch come from cpu_isa.h.
//
// Everything is in an unnamed namespace, so each kernel file gets its own internal copy, exactly as
// when these were written out in both files: with external (inline) linkage GCC made different
// inlining decisions in the kernels around them.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "cpu/cpu_isa.h"

namespace maskrcnn_benchmark {
namespace {

// Batch indices are truncated towards zero (as in the original); each must lie in [0, batch_size).
template <typename T>
void check_batch_indices(const T* rois, int64_t num_rois, int64_t batch_size, const char* fn) {
  for (int64_t k = 0; k < num_rois; ++k) {
    const T b = rois[k * 5];
    TORCH_CHECK(b > T(-1) && b < static_cast<T>(batch_size), fn, ": rois[", k,
                ", 0] (batch index) = ", static_cast<double>(b), " is out of range for input with batch size ",
                batch_size);
  }
}

// rois as a contiguous tensor of the accumulation type T, its batch indices checked against batch_size.
template <typename T>
at::Tensor checked_rois(const at::Tensor& rois, int64_t batch_size, const char* fn) {
  at::Tensor rois_t = rois.to(c10::CppTypeToScalarType<T>::value).contiguous();
  check_batch_indices(rois_t.data_ptr<T>(), rois_t.size(0), batch_size, fn);
  return rois_t;
}

// RoI indices grouped by image (a stable counting sort): order[img_begin[n] : img_begin[n + 1]].
template <typename T>
void group_by_image(const T* rois, int64_t num_rois, int64_t batch_size, std::vector<int64_t>& order,
                    std::vector<int64_t>& img_begin) {
  img_begin.assign(batch_size + 1, 0);
  order.resize(num_rois);
  for (int64_t k = 0; k < num_rois; ++k) {
    ++img_begin[static_cast<int64_t>(rois[k * 5]) + 1];
  }
  for (int64_t n = 0; n < batch_size; ++n) {
    img_begin[n + 1] += img_begin[n];
  }
  std::vector<int64_t> fill(img_begin.begin(), img_begin.end() - 1);
  for (int64_t k = 0; k < num_rois; ++k) {
    order[fill[static_cast<int64_t>(rois[k * 5])]++] = k;
  }
}

// Runs task(workspace, begin, end) for chunks of [0, n) handed out dynamically to the intra-op
// threads; each thread has its own default-constructed WS workspace.
template <typename WS, typename Task>
void parallel_dynamic(int64_t n, int64_t chunk, const Task& task) {
  if (n <= 0) {
    return;
  }
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), (n + chunk - 1) / chunk));
  std::atomic<int64_t> next{0};
  at::parallel_for(0, workers, 1, [&](int64_t b, int64_t e) {
    WS ws;
    for (int64_t t = b; t < e; ++t) {
      while (true) {
        const int64_t i0 = next.fetch_add(chunk);
        if (i0 >= n) {
          break;
        }
        task(ws, i0, std::min(n, i0 + chunk));
      }
    }
  });
}

// Chunk of RoIs handed out at once when all RoIs are pooled from one channels-last map.
int64_t roi_chunk(int64_t num_rois) {
  return std::max<int64_t>(1, std::min<int64_t>(16, num_rois / (8 * at::get_num_threads())));
}

// Channel block of the per-task channels-last buffers: a multiple of 16 channels (whole vectors)
// keeping the buffer around 2 MiB, reduced further if there would be too few tasks for the threads.
int64_t channel_block(int64_t batch_size, int64_t channels, int64_t plane, size_t elem_size) {
  const int64_t nthreads = at::get_num_threads();
  int64_t cb = std::max<int64_t>(
      16, ((int64_t(2) << 20) / static_cast<int64_t>(elem_size) / std::max<int64_t>(plane, 1)) / 16 * 16);
  while (cb > 16 && batch_size * ((channels + cb - 1) / cb) < 2 * nthreads) {
    cb -= 16;
  }
  return std::max<int64_t>(1, std::min(cb, channels));
}

// The whole feature map as a channels-last tensor of acc_type (no copy when it already is one).
at::Tensor channels_last_map(const at::Tensor& input, at::ScalarType acc_type) {
  at::Tensor feat = (input.scalar_type() == acc_type && input.is_contiguous(at::MemoryFormat::ChannelsLast))
                        ? input
                        : input.to(acc_type, /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::ChannelsLast);
  TORCH_INTERNAL_ASSERT(feat.is_contiguous(at::MemoryFormat::ChannelsLast));
  return feat;
}

// The forward's two ways of splitting the work.
//  * Whole map (`whole_map`, channels-last input, or too few (channel block, image) tasks to feed
//    the threads): the map is used as one channels-last tensor of T and the RoIs are handed out
//    dynamically: rois_task(ws, map, k0, k1) pools RoIs [k0, k1) over all channels.
//  * Otherwise one task = one (channel block, image) pair, in block-major order so that concurrent
//    tasks work on different images or blocks; images without RoIs are skipped:
//    block_task(ws, input, order, img_begin, n, c0, cb) pools channels [c0, c0 + cb) of image n
//    (input: the NCHW map; order / img_begin: the RoIs grouped by image, see group_by_image).
template <typename WS, typename scalar_t, typename T, typename RoisTask, typename BlockTask>
void forward_tasks(const at::Tensor& input, const T* rois, int64_t num_rois, bool whole_map, const RoisTask& rois_task,
                   const BlockTask& block_task) {
  const int64_t N = input.size(0), C = input.size(1), HW = input.size(2) * input.size(3), K = num_rois;
  const int64_t cb = channel_block(N, C, HW, sizeof(T));
  const int64_t nblocks = (C + cb - 1) / cb;
  const bool channels_last = input.is_contiguous(at::MemoryFormat::ChannelsLast) && !input.is_contiguous();
  if (whole_map || channels_last || nblocks * N < 2 * at::get_num_threads()) {
    const at::Tensor feat = channels_last_map(input, c10::CppTypeToScalarType<T>::value);
    const T* feat_p = feat.data_ptr<T>();
    parallel_dynamic<WS>(K, roi_chunk(K), [&](WS& ws, int64_t k0, int64_t k1) { rois_task(ws, feat_p, k0, k1); });
    return;
  }
  const at::Tensor src = input.contiguous();
  const scalar_t* src_p = src.data_ptr<scalar_t>();
  std::vector<int64_t> order, img_begin;
  group_by_image(rois, K, N, order, img_begin);
  parallel_dynamic<WS>(nblocks * N, 1, [&](WS& ws, int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t n = task % N, c0 = (task / N) * cb, this_cb = std::min(cb, C - c0);
      if (img_begin[n] == img_begin[n + 1]) {
        continue;
      }
      block_task(ws, src_p, order.data(), img_begin.data(), n, c0, this_cb);
    }
  });
}

}  // namespace
}  // namespace maskrcnn_benchmark
