// CUDA kernels of maskrcnn_benchmark::nms and maskrcnn_benchmark::batched_nms.
//
// NMS semantics: docs/CONVENTIONS.md#nms, the same as the CPU kernels'.
//
// 1. Visiting order: a stable sort of an integer key of the score (the CPU kernel's key), so ties
//    and NaNs order exactly as on the CPU. batched_nms then stable-sorts by group id, which makes
//    each group a contiguous run.
// 2. Mask kernel: 64 x 64 tiles of (row box i, column box j > i); bit j of word mask[i][j / 64] says
//    "i suppresses j". Boxes of different groups never suppress each other: batched_nms compares
//    the group ids of the pair instead of offsetting coordinates, so IoUs stay exact.
//    Multiplications use __fmul_rn / __dmul_rn so that nvcc cannot contract them into FMAs: the
//    IoU is then rounded exactly like the CPU kernel's.
//    A row stores only the column blocks its group can reach (a band of `width` words), so many
//    small groups (the box head: 80 classes x 1,000 boxes) need a small mask.
// 3. Scan kernel (one block per group, groups in parallel): walks the group's boxes in order,
//    keeping a box unless a kept box removed it, and ORs the kept box's mask row into the group's
//    "removed" bitset (in shared memory when it fits). Threads only synchronise after a kept box.
// Memory: the mask takes N * width * 8 bytes (plain NMS: width = ceil(N / 64), 50 MB for 20,000
// boxes).
#include <ATen/ATen.h>
#include <ATen/ceil_div.h>
#include <c10/cuda/CUDAStream.h>  // (not ATen/cuda/CUDAContext.h: that one needs the cuSPARSE/cuBLAS headers)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "nms_common.h"

namespace {

constexpr int kBlockBoxes = 64;  // bits per mask word
constexpr int kScanThreads = 256;

// ---------------------------------------------------------------------------------------------
// Input checks: those of csrc/nms_common.h (shared with the CPU kernels), then this kernel's limit
// on the number of boxes (the mask kernel grid).

namespace nms = maskrcnn_benchmark::nms;

void check_boxes_scores(const char* op, const at::Tensor& dets, const at::Tensor& scores) {
  nms::check_boxes_scores(op, dets, scores);
  TORCH_CHECK(at::ceil_div<int64_t>(dets.size(0), kBlockBoxes) <= 65535, op, ": at most ", 65535 * kBlockBoxes,
              " boxes are supported on CUDA, got ", dets.size(0));
}

// ---------------------------------------------------------------------------------------------
// Sort keys: ascending key <=> score descending, NaN last, -0 == +0 (as on the CPU). Stored as
// int64 with the top bit flipped so that signed order equals the unsigned order of the key.

__device__ __forceinline__ int64_t desc_key_dev(float s) {
  if (isnan(s)) {
    return static_cast<int64_t>(0xFFFFFFFFull);
  }
  s = s + 0.0f;
  const uint32_t u = __float_as_uint(s);
  const uint32_t asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return static_cast<int64_t>(static_cast<uint64_t>(~asc));  // in [0, 2^32): already ordered
}

__device__ __forceinline__ int64_t desc_key_dev(double s) {
  uint64_t key;
  if (isnan(s)) {
    key = 0xFFFFFFFFFFFFFFFFull;
  } else {
    s = s + 0.0;
    const uint64_t u = static_cast<uint64_t>(__double_as_longlong(s));
    const uint64_t asc = (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
    key = ~asc;
  }
  return static_cast<int64_t>(key ^ 0x8000000000000000ull);
}

template <typename S>
__global__ void score_key_kernel(int64_t n, const S* __restrict__ scores, int64_t* __restrict__ keys) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    keys[i] = desc_key_dev(scores[i]);
  }
}

// Stable visiting order of the scores (int64 indices).
at::Tensor score_order(const at::Tensor& scores_in) {
  const int64_t n = scores_in.size(0);
  const bool f64 = scores_in.scalar_type() == at::kDouble;
  const at::Tensor scores = scores_in.to(f64 ? at::kDouble : at::kFloat).contiguous();
  at::Tensor keys = at::empty({n}, scores.options().dtype(at::kLong));
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>(at::ceil_div<int64_t>(n, threads), 4096));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  if (f64) {
    score_key_kernel<double><<<blocks, threads, 0, stream>>>(n, scores.data_ptr<double>(), keys.data_ptr<int64_t>());
  } else {
    score_key_kernel<float><<<blocks, threads, 0, stream>>>(n, scores.data_ptr<float>(), keys.data_ptr<int64_t>());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return std::get<1>(keys.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false));
}

// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// boxes: [n, 4] in visiting order; groups: [n] group ids in visiting order, or nullptr.
// Grid (width, row_blocks): tile (row_block, row_block + blockIdx.x). Word w of mask row i holds
// the bits of column block (i / 64 + w); `width` covers every block a row's group reaches.
template <typename T>
__global__ void nms_mask_kernel(int64_t n, const T* __restrict__ boxes, const int64_t* __restrict__ groups, T thr,
                                int64_t col_blocks, int64_t width, unsigned long long* __restrict__ mask) {
  const int64_t row_block = blockIdx.y;
  const int64_t col_block = row_block + blockIdx.x;
  if (col_block >= col_blocks) {
    return;
  }
  const int64_t row_left = n - row_block * kBlockBoxes;
  const int64_t col_left = n - col_block * kBlockBoxes;
  const int row_size = static_cast<int>(row_left < kBlockBoxes ? row_left : kBlockBoxes);
  const int col_size = static_cast<int>(col_left < kBlockBoxes ? col_left : kBlockBoxes);

  __shared__ T sbox[kBlockBoxes][5];
  __shared__ int64_t sgroup[kBlockBoxes];
  if (threadIdx.x < col_size) {
    const int64_t j = col_block * kBlockBoxes + threadIdx.x;
    const T x1 = boxes[4 * j + 0], y1 = boxes[4 * j + 1], x2 = boxes[4 * j + 2], y2 = boxes[4 * j + 3];
    sbox[threadIdx.x][0] = x1;
    sbox[threadIdx.x][1] = y1;
    sbox[threadIdx.x][2] = x2;
    sbox[threadIdx.x][3] = y2;
    sbox[threadIdx.x][4] = mul_rn(x2 - x1 + T(1), y2 - y1 + T(1));
    sgroup[threadIdx.x] = groups != nullptr ? groups[j] : 0;
  }
  __syncthreads();
  if (threadIdx.x >= row_size) {
    return;
  }
  const int64_t i = row_block * kBlockBoxes + threadIdx.x;
  const T ix1 = boxes[4 * i + 0], iy1 = boxes[4 * i + 1], ix2 = boxes[4 * i + 2], iy2 = boxes[4 * i + 3];
  const T iarea = mul_rn(ix2 - ix1 + T(1), iy2 - iy1 + T(1));
  const int64_t igroup = groups != nullptr ? groups[i] : 0;
  unsigned long long bits = 0;
  const int start = (row_block == col_block) ? threadIdx.x + 1 : 0;
  for (int k = start; k < col_size; ++k) {
    if (sgroup[k] != igroup) {
      continue;
    }
    // max/min written out so that NaN handling matches the CPU kernel's comparisons.
    const T xx1 = ix1 > sbox[k][0] ? ix1 : sbox[k][0];
    const T yy1 = iy1 > sbox[k][1] ? iy1 : sbox[k][1];
    const T xx2 = ix2 < sbox[k][2] ? ix2 : sbox[k][2];
    const T yy2 = iy2 < sbox[k][3] ? iy2 : sbox[k][3];
    const T wraw = xx2 - xx1 + T(1);
    const T hraw = yy2 - yy1 + T(1);
    const T w = T(0) > wraw ? T(0) : wraw;
    const T h = T(0) > hraw ? T(0) : hraw;
    const T inter = mul_rn(w, h);
    const T iou = inter / (iarea + sbox[k][4] - inter);
    if (iou > thr) {
      bits |= 1ULL << k;
    }
  }
  mask[i * width + blockIdx.x] = bits;
}

// Grid (row_blocks). Groups are independent, so each is scanned by its own block: block b takes
// the groups that start in boxes [64 b, 64 b + 64) (group_end == nullptr: one group, all n boxes,
// block 0). A group [s, e) walks its boxes in order, keeping a box unless a kept box removed it, and
// ORs the kept box's mask row into its "removed" bitset: global words s / 64 .. (e - 1) / 64, kept in
// shared memory when they fit, else in scratch[s ...] (a group of L boxes spans at most L words, so
// the scratch regions of different groups never overlap). keep must be zero-initialised.
constexpr int64_t kScanSharedWords = 6144;  // 48 KB: groups of up to 393,216 boxes scan in shared memory

__global__ void nms_scan_kernel(int64_t n, const int64_t* __restrict__ groups, const int64_t* __restrict__ group_end,
                                int64_t width, const unsigned long long* __restrict__ mask,
                                unsigned long long* __restrict__ scratch, bool* __restrict__ keep) {
  __shared__ unsigned long long removed_shared[kScanSharedWords];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlockBoxes;
  const int64_t last = first + kBlockBoxes < n ? first + kBlockBoxes : n;
  for (int64_t s = first; s < last; ++s) {
    // Uniform across the block: every thread reads the same values.
    if (s > 0 && (groups == nullptr || groups[s] == groups[s - 1])) {
      continue;  // not the start of a group
    }
    const int64_t e = group_end != nullptr ? group_end[s] : n;
    const int64_t base_word = s / kBlockBoxes;
    const int64_t last_word = (e - 1) / kBlockBoxes;
    const int64_t words = last_word - base_word + 1;
    unsigned long long* removed = words <= kScanSharedWords ? removed_shared : scratch + s;
    for (int64_t w = threadIdx.x; w < words; w += blockDim.x) {
      removed[w] = 0;
    }
    __syncthreads();
    for (int64_t i = s; i < e; ++i) {
      const int64_t word = i / kBlockBoxes;
      // The updates below never touch bit i, so the decision is the same for all threads (uniform
      // branch, __syncthreads inside is legal).
      if (!(removed[word - base_word] & (1ULL << (i % kBlockBoxes)))) {
        if (threadIdx.x == 0) {
          keep[i] = true;
        }
        const unsigned long long* row = mask + i * width;
        const int64_t row_words = last_word - word + 1 < width ? last_word - word + 1 : width;
        for (int64_t w = threadIdx.x; w < row_words; w += blockDim.x) {
          removed[word - base_word + w] |= row[w];
        }
        __syncthreads();
      }
    }
    __syncthreads();  // before the next group of this block reuses the bitset
  }
}

// Kept flags in visiting order for boxes sorted into visiting order. With groups, the boxes are
// sorted group-major and `group_end[i]` is one past the last box of i's group.
at::Tensor nms_keep_sorted(const at::Tensor& boxes_sorted, const at::Tensor* groups_sorted, const at::Tensor* group_end,
                           double iou_threshold) {
  const int64_t n = boxes_sorted.size(0);
  const int64_t col_blocks = at::ceil_div<int64_t>(n, kBlockBoxes);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  // Band width of the mask: a row only needs the column blocks up to the end of its group. Reading
  // it back costs one synchronisation, and saves the n^2 mask of many small groups (80 classes of
  // 1,000 boxes: 17 words per row instead of 1,250).
  int64_t width = col_blocks;
  if (group_end != nullptr) {
    const at::Tensor row_blocks = at::arange(col_blocks, group_end->options());
    const at::Tensor row_last = (row_blocks * kBlockBoxes + (kBlockBoxes - 1)).clamp_max(n - 1);
    const at::Tensor last_word = (group_end->index_select(0, row_last) - 1).div(kBlockBoxes, "floor");
    width = (last_word - row_blocks).max().item<int64_t>() + 1;
  }
  at::Tensor mask = at::empty({n * width}, boxes_sorted.options().dtype(at::kLong));
  const int64_t* groups = groups_sorted != nullptr ? groups_sorted->data_ptr<int64_t>() : nullptr;
  const dim3 grid(static_cast<unsigned>(width), static_cast<unsigned>(col_blocks));
  const dim3 block(kBlockBoxes);
  auto* mask_ptr = reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>());
  if (boxes_sorted.scalar_type() == at::kDouble) {
    nms_mask_kernel<double><<<grid, block, 0, stream>>>(n, boxes_sorted.data_ptr<double>(), groups,
                                                        nms::exact_threshold<double>(iou_threshold), col_blocks, width,
                                                        mask_ptr);
  } else {
    nms_mask_kernel<float><<<grid, block, 0, stream>>>(n, boxes_sorted.data_ptr<float>(), groups,
                                                       nms::exact_threshold<float>(iou_threshold), col_blocks, width,
                                                       mask_ptr);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  at::Tensor keep = at::zeros({n}, boxes_sorted.options().dtype(at::kBool));
  at::Tensor scratch;
  unsigned long long* scratch_ptr = nullptr;
  if (col_blocks > kScanSharedWords) {  // some group may not fit in shared memory
    scratch = at::empty({n}, boxes_sorted.options().dtype(at::kLong));
    scratch_ptr = reinterpret_cast<unsigned long long*>(scratch.data_ptr<int64_t>());
  }
  const int64_t* ends = group_end != nullptr ? group_end->data_ptr<int64_t>() : nullptr;
  nms_scan_kernel<<<static_cast<unsigned>(col_blocks), kScanThreads, 0, stream>>>(n, groups, ends, width, mask_ptr,
                                                                                  scratch_ptr, keep.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return keep;
}

at::Tensor sorted_boxes(const at::Tensor& dets, const at::Tensor& order) {
  const auto ct = dets.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return dets.index_select(0, order).to(ct).contiguous();
}

at::Tensor nms_cuda(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  check_boxes_scores("nms", dets, scores);
  if (dets.size(0) == 0) {
    return at::empty({0}, dets.options().dtype(at::kLong));
  }
  c10::cuda::CUDAGuard device_guard(dets.device());
  const at::Tensor order = score_order(scores);
  const at::Tensor keep_sorted = nms_keep_sorted(sorted_boxes(dets, order), nullptr, nullptr, iou_threshold);
  // Back to original indices: nonzero of a flag per original index is ascending.
  at::Tensor keep = at::zeros({dets.size(0)}, keep_sorted.options());
  keep.index_copy_(0, order, keep_sorted);
  return at::nonzero(keep).view(-1);
}

at::Tensor batched_nms_cuda(const at::Tensor& dets, const at::Tensor& scores, const at::Tensor& idxs,
                            double iou_threshold) {
  check_boxes_scores("batched_nms", dets, scores);
  nms::check_idxs(dets, idxs);
  if (dets.size(0) == 0) {
    return at::empty({0}, dets.options().dtype(at::kLong));
  }
  c10::cuda::CUDAGuard device_guard(dets.device());
  const at::Tensor by_score = score_order(scores);
  const auto by_group = idxs.to(at::kLong).index_select(0, by_score).sort(/*stable=*/true, 0, false);
  const at::Tensor groups_sorted = std::get<0>(by_group).contiguous();
  const at::Tensor order = by_score.index_select(0, std::get<1>(by_group));
  const at::Tensor group_end = at::searchsorted(groups_sorted, groups_sorted, /*out_int32=*/false, /*right=*/true);
  const at::Tensor keep_sorted = nms_keep_sorted(sorted_boxes(dets, order), &groups_sorted, &group_end, iou_threshold);
  // Kept boxes, group-major; reorder to (group ascending, index ascending).
  const at::Tensor pos = at::nonzero(keep_sorted).view(-1);
  const at::Tensor kept = order.index_select(0, pos);
  const at::Tensor kept_groups = groups_sorted.index_select(0, pos);
  const auto by_index = kept.sort(/*stable=*/true, 0, false);
  const auto regroup = kept_groups.index_select(0, std::get<1>(by_index)).sort(/*stable=*/true, 0, false);
  return std::get<0>(by_index).index_select(0, std::get<1>(regroup));
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CUDA, m) {
  m.impl("nms", nms_cuda);
  m.impl("batched_nms", batched_nms_cuda);
}
