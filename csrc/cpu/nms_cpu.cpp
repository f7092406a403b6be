// CPU kernels of maskrcnn_benchmark::nms and maskrcnn_benchmark::batched_nms.
//
// NMS semantics: docs/CONVENTIONS.md#nms (the schemas live in csrc/vision.cpp).
//
// Algorithm. One stable sort (an LSD radix sort of an order-preserving integer key of the score).
// The boxes are then copied, in that order, into structure-of-arrays buffers with precomputed
// areas. The greedy loop keeps the first live box, then one branch-free, vectorisable pass over
// the live boxes after it marks the ones it suppresses. Marked boxes are squeezed out of the buffers
// ("compaction") once they make up a quarter of what is left, so the work per kept box shrinks as
// boxes die while the hot pass stays a plain contiguous loop. Long passes are split across threads
// (at::parallel_for); batched_nms runs its groups in parallel.
//
// On x86 (GCC or Clang) the hot loop is compiled for AVX-512, AVX2 and baseline x86-64, and
// dispatch_isa (cpu/cpu_isa.h) runs the best one the CPU supports. No multiply-add is contracted,
// so results do not depend on the CPU: the AVX2 version is built without FMA on purpose, and in the
// AVX-512 one (whose instructions include FMA) the loop's only product, inter = w * h, is also the
// numerator of the IoU, which keeps GCC from fusing it into the denominator.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu/cpu_isa.h"
#include "nms_common.h"

namespace {

using maskrcnn_benchmark::dispatch_isa;
using maskrcnn_benchmark::Isa;

// Passes shorter than this run on one thread (a parallel region costs a few microseconds).
constexpr int64_t kParallelMinLen = 24576;
constexpr int64_t kParallelGrain = 12288;

// ---------------------------------------------------------------------------------------------
// Input checks: those of csrc/nms_common.h (shared with the CUDA kernels), then this kernel's limit
// on the number of boxes (box indices are int32).

namespace nms = maskrcnn_benchmark::nms;

void check_boxes_scores(const char* op, const at::Tensor& dets, const at::Tensor& scores) {
  nms::check_boxes_scores(op, dets, scores);
  TORCH_CHECK(dets.size(0) < std::numeric_limits<int32_t>::max(), op, ": at most 2^31 - 2 boxes are supported, got ",
              dets.size(0));
}

// ---------------------------------------------------------------------------------------------
// Sorting: ascending unsigned key <=> score descending, NaN last. Ties keep index order.

MRB_INLINE uint32_t desc_key(float s) {
  if (std::isnan(s)) {
    return 0xFFFFFFFFu;
  }
  s = s + 0.0f;  // -0 -> +0, so that the two zeros tie
  uint32_t u;
  std::memcpy(&u, &s, sizeof(u));
  const uint32_t asc = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~asc;
}

MRB_INLINE uint64_t desc_key(double s) {
  if (std::isnan(s)) {
    return 0xFFFFFFFFFFFFFFFFull;
  }
  s = s + 0.0;
  uint64_t u;
  std::memcpy(&u, &s, sizeof(u));
  const uint64_t asc = (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
  return ~asc;
}

// Stable argsort of keys (ascending); returns the permutation as int32 indices.
template <typename K>
std::vector<int32_t> stable_argsort(std::vector<K> keys) {
  const int64_t n = static_cast<int64_t>(keys.size());
  std::vector<int32_t> idx(n);
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = static_cast<int32_t>(i);
  }
  if (n < 512) {
    std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return keys[a] < keys[b]; });
    return idx;
  }
  // LSD radix sort, 8 bits per pass; passes where every key has the same digit are skipped.
  constexpr int kBytes = sizeof(K);
  std::vector<int64_t> hist(kBytes * 256, 0);
  for (int64_t i = 0; i < n; ++i) {
    K k = keys[i];
    for (int b = 0; b < kBytes; ++b) {
      ++hist[b * 256 + ((k >> (8 * b)) & 0xFF)];
    }
  }
  std::vector<K> keys2(n);
  std::vector<int32_t> idx2(n);
  for (int b = 0; b < kBytes; ++b) {
    int64_t* h = hist.data() + b * 256;
    bool trivial = false;
    for (int d = 0; d < 256; ++d) {
      if (h[d] == n) {
        trivial = true;
      }
    }
    if (trivial) {
      continue;
    }
    int64_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      const int64_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i) {
      const K k = keys[i];
      const int64_t pos = h[(k >> (8 * b)) & 0xFF]++;
      keys2[pos] = k;
      idx2[pos] = idx[i];
    }
    keys.swap(keys2);
    idx.swap(idx2);
  }
  return idx;
}

// Order in which the greedy algorithm visits the boxes (see the top of the file).
std::vector<int32_t> score_order(const at::Tensor& scores) {
  const int64_t n = scores.size(0);
  if (scores.scalar_type() == at::kDouble) {
    const double* s = scores.data_ptr<double>();
    std::vector<uint64_t> keys(n);
    for (int64_t i = 0; i < n; ++i) {
      keys[i] = desc_key(s[i]);
    }
    return stable_argsort(std::move(keys));
  }
  const at::Tensor sf = scores.to(at::kFloat).contiguous();
  const float* s = sf.data_ptr<float>();
  std::vector<uint32_t> keys(n);
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = desc_key(s[i]);
  }
  return stable_argsort(std::move(keys));
}

// Dense group ids: gid[i] in [0, G), ordered like idxs. Returns G.
int64_t dense_groups(const at::Tensor& idxs_in, std::vector<int32_t>& gid) {
  const at::Tensor idxs = idxs_in.to(at::kLong).contiguous();
  const int64_t* v = idxs.data_ptr<int64_t>();
  const int64_t n = idxs.size(0);
  gid.assign(n, 0);
  if (n == 0) {
    return 0;
  }
  int64_t lo = v[0], hi = v[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // no overflow
  if (range < static_cast<uint64_t>(std::max<int64_t>(4 * n, 65536))) {
    std::vector<int32_t> dense(range + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
      dense[static_cast<uint64_t>(v[i]) - static_cast<uint64_t>(lo)] = 1;
    }
    int32_t g = 0;
    for (auto& d : dense) {
      const int32_t present = d;
      d = g;
      g += present;
    }
    for (int64_t i = 0; i < n; ++i) {
      gid[i] = dense[static_cast<uint64_t>(v[i]) - static_cast<uint64_t>(lo)];
    }
    return g;
  }
  std::vector<int64_t> uniq(v, v + n);
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  for (int64_t i = 0; i < n; ++i) {
    gid[i] = static_cast<int32_t>(std::lower_bound(uniq.begin(), uniq.end(), v[i]) - uniq.begin());
  }
  return static_cast<int64_t>(uniq.size());
}

// ---------------------------------------------------------------------------------------------
// The hot pass: mark every live box of [0, n) whose IoU with box b is > thr; return how many were
// newly marked. Branch-free so that it vectorises.

template <typename T>
MRB_INLINE T vmax(T a, T b) {
  return a > b ? a : b;
}
template <typename T>
MRB_INLINE T vmin(T a, T b) {
  return a < b ? a : b;
}

// Flag type as wide as T, which keeps the vectorised loop free of width conversions.
template <typename T>
using FlagT = typename std::conditional<sizeof(T) == 8, int64_t, int32_t>::type;

template <typename T>
MRB_INLINE int64_t suppress_pass_impl(const T* MRB_RESTRICT x1, const T* MRB_RESTRICT y1, const T* MRB_RESTRICT x2,
                                      const T* MRB_RESTRICT y2, const T* MRB_RESTRICT area, FlagT<T>* MRB_RESTRICT dead,
                                      int64_t n, T bx1, T by1, T bx2, T by2, T barea, T thr) {
  using F = FlagT<T>;
  F newly = 0;
  for (int64_t j = 0; j < n; ++j) {
    const T w = vmax(T(0), vmin(bx2, x2[j]) - vmax(bx1, x1[j]) + T(1));
    const T h = vmax(T(0), vmin(by2, y2[j]) - vmax(by1, y1[j]) + T(1));
    const T inter = w * h;
    const T iou = inter / (barea + area[j] - inter);
    const F s = iou > thr ? F(1) : F(0);
    const F d = dead[j];
    newly += s & (d ^ F(1));
    dead[j] = d | s;
  }
  return static_cast<int64_t>(newly);
}

// suppress_pass_impl compiled for AVX-512, AVX2 (without FMA) and the baseline; runs the best one.
template <typename T>
int64_t suppress_pass(const T* x1, const T* y1, const T* x2, const T* y2, const T* area, FlagT<T>* dead, int64_t n,
                      T bx1, T by1, T bx2, T by2, T barea, T thr) {
  return dispatch_isa<Isa::kAvx512f, Isa::kAvx2>([&](auto) MRB_ALWAYS_INLINE {
    return suppress_pass_impl<T>(x1, y1, x2, y2, area, dead, n, bx1, by1, bx2, by2, barea, thr);
  });
}

// Boxes of one group in visiting order, as structure of arrays.
template <typename T>
struct BoxBuffers {
  std::vector<T> x1, y1, x2, y2, area;
  std::vector<int32_t> id;  // original index
  std::vector<FlagT<T>> dead;

  // Fills from boxes (contiguous [N, 4] of T) at the original indices order[0 .. n).
  void fill(const T* boxes, const int32_t* order, int64_t n) {
    x1.resize(n);
    y1.resize(n);
    x2.resize(n);
    y2.resize(n);
    area.resize(n);
    id.resize(n);
    dead.assign(n, 0);
    for (int64_t k = 0; k < n; ++k) {
      const int32_t i = order[k];
      const T* b = boxes + 4 * static_cast<int64_t>(i);
      x1[k] = b[0];
      y1[k] = b[1];
      x2[k] = b[2];
      y2[k] = b[3];
      area[k] = (b[2] - b[0] + T(1)) * (b[3] - b[1] + T(1));
      id[k] = i;
    }
  }
};

// Greedy NMS over the boxes of `buf` (already in visiting order). Appends the original indices of
// the kept boxes to `kept` (in visiting order).
template <typename T>
void greedy_nms(BoxBuffers<T>& buf, T thr, bool allow_parallel, std::vector<int32_t>& kept) {
  using F = FlagT<T>;
  int64_t n = static_cast<int64_t>(buf.id.size());
  T* x1 = buf.x1.data();
  T* y1 = buf.y1.data();
  T* x2 = buf.x2.data();
  T* y2 = buf.y2.data();
  T* area = buf.area.data();
  int32_t* id = buf.id.data();
  F* dead = buf.dead.data();
  const bool parallel = allow_parallel && at::get_num_threads() > 1 && !at::in_parallel_region();

  int64_t head = 0;
  int64_t dead_after_head = 0;  // marked boxes in (head, n)
  while (head < n) {
    // `head` is live and has the best score of all live boxes: keep it.
    kept.push_back(id[head]);
    const T bx1 = x1[head], by1 = y1[head], bx2 = x2[head], by2 = y2[head], barea = area[head];
    const int64_t begin = head + 1;
    const int64_t len = n - begin;
    if (len <= 0) {
      break;
    }
    int64_t newly = 0;
    if (parallel && len >= kParallelMinLen) {
      std::atomic<int64_t> total{0};
      at::parallel_for(begin, n, kParallelGrain, [&](int64_t s, int64_t e) {
        total +=
            suppress_pass(x1 + s, y1 + s, x2 + s, y2 + s, area + s, dead + s, e - s, bx1, by1, bx2, by2, barea, thr);
      });
      newly = total.load();
    } else {
      newly = suppress_pass(x1 + begin, y1 + begin, x2 + begin, y2 + begin, area + begin, dead + begin, len, bx1, by1,
                            bx2, by2, barea, thr);
    }
    dead_after_head += newly;
    head = begin;
    while (head < n && dead[head]) {
      ++head;
      --dead_after_head;
    }
    // Squeeze the marked boxes out once they are a quarter of what is left.
    const int64_t left = n - head;
    if (dead_after_head > 64 && 4 * dead_after_head > left) {
      int64_t w = 0;
      for (int64_t r = head; r < n; ++r) {
        x1[w] = x1[r];
        y1[w] = y1[r];
        x2[w] = x2[r];
        y2[w] = y2[r];
        area[w] = area[r];
        id[w] = id[r];
        w += static_cast<int64_t>(dead[r] == 0);
      }
      std::fill(dead, dead + w, F(0));
      n = w;
      head = 0;
      dead_after_head = 0;
    }
  }
}

// Runs greedy NMS on each segment [offsets[g], offsets[g + 1]) of `order` and returns, per segment,
// the kept original indices sorted ascending.
template <typename T>
std::vector<std::vector<int32_t>> nms_segments(const T* boxes, const std::vector<int32_t>& order,
                                               const std::vector<int64_t>& offsets, T thr) {
  const int64_t num_groups = static_cast<int64_t>(offsets.size()) - 1;
  std::vector<std::vector<int32_t>> kept(num_groups);

  auto run_group = [&](int64_t g, bool allow_parallel) {
    const int64_t begin = offsets[g];
    const int64_t n = offsets[g + 1] - begin;
    std::vector<int32_t>& out = kept[g];
    if (n == 1) {
      out.push_back(order[begin]);
      return;
    }
    BoxBuffers<T> buf;
    buf.fill(boxes, order.data() + begin, n);
    greedy_nms(buf, thr, allow_parallel, out);
    std::sort(out.begin(), out.end());
  };

  // Large groups one after the other, each with parallel passes; the others spread over threads,
  // largest first, taken from a shared counter.
  std::vector<int64_t> small;
  for (int64_t g = 0; g < num_groups; ++g) {
    if (offsets[g + 1] - offsets[g] >= kParallelMinLen) {
      run_group(g, /*allow_parallel=*/true);
    } else if (offsets[g + 1] > offsets[g]) {
      small.push_back(g);
    }
  }
  if (small.empty()) {
    return kept;
  }
  int64_t small_boxes = 0;
  for (int64_t g : small) {
    small_boxes += offsets[g + 1] - offsets[g];
  }
  const int64_t threads = at::get_num_threads();
  if (small.size() == 1 || threads == 1 || small_boxes < 2048) {
    for (int64_t g : small) {
      run_group(g, /*allow_parallel=*/false);
    }
    return kept;
  }
  std::stable_sort(small.begin(), small.end(),
                   [&](int64_t a, int64_t b) { return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b]; });
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(threads, static_cast<int64_t>(small.size()));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (;;) {
      const int64_t k = next.fetch_add(1);
      if (k >= static_cast<int64_t>(small.size())) {
        break;
      }
      run_group(small[k], /*allow_parallel=*/false);
    }
  });
  return kept;
}

at::Tensor concat_kept(const std::vector<std::vector<int32_t>>& kept) {
  int64_t total = 0;
  for (const auto& k : kept) {
    total += static_cast<int64_t>(k.size());
  }
  at::Tensor out = at::empty({total}, at::TensorOptions().dtype(at::kLong));
  int64_t* o = out.data_ptr<int64_t>();
  for (const auto& k : kept) {
    for (int32_t i : k) {
      *o++ = i;
    }
  }
  return out;
}

// Shared driver: group ids (nullptr = one group) -> kept indices.
at::Tensor nms_driver(const at::Tensor& dets_in, const at::Tensor& scores_in, const std::vector<int32_t>* gid,
                      int64_t num_groups, double iou_threshold) {
  const int64_t n = dets_in.size(0);
  if (n == 0) {
    return at::empty({0}, dets_in.options().dtype(at::kLong));
  }
  const at::Tensor scores = scores_in.contiguous();
  std::vector<int32_t> order = score_order(scores);
  std::vector<int64_t> offsets;
  if (gid == nullptr) {
    offsets = {0, n};
  } else {
    // Stable counting sort of the score order by group: group ascending, then score order.
    offsets.assign(num_groups + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
      ++offsets[(*gid)[i] + 1];
    }
    for (int64_t g = 0; g < num_groups; ++g) {
      offsets[g + 1] += offsets[g];
    }
    std::vector<int64_t> pos(offsets.begin(), offsets.end() - 1);
    std::vector<int32_t> grouped(n);
    for (int64_t k = 0; k < n; ++k) {
      const int32_t i = order[k];
      grouped[pos[(*gid)[i]]++] = i;
    }
    order.swap(grouped);
  }
  if (dets_in.scalar_type() == at::kDouble) {
    const at::Tensor dets = dets_in.contiguous();
    return concat_kept(
        nms_segments<double>(dets.data_ptr<double>(), order, offsets, nms::exact_threshold<double>(iou_threshold)));
  }
  const at::Tensor dets = dets_in.to(at::kFloat).contiguous();
  return concat_kept(
      nms_segments<float>(dets.data_ptr<float>(), order, offsets, nms::exact_threshold<float>(iou_threshold)));
}

at::Tensor nms_cpu(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  check_boxes_scores("nms", dets, scores);
  return nms_driver(dets, scores, nullptr, 1, iou_threshold);
}

at::Tensor batched_nms_cpu(const at::Tensor& dets, const at::Tensor& scores, const at::Tensor& idxs,
                           double iou_threshold) {
  check_boxes_scores("batched_nms", dets, scores);
  nms::check_idxs(dets, idxs);
  if (dets.size(0) == 0) {
    return at::empty({0}, dets.options().dtype(at::kLong));
  }
  std::vector<int32_t> gid;
  const int64_t num_groups = dense_groups(idxs, gid);
  return nms_driver(dets, scores, &gid, num_groups, iou_threshold);
}

}  // namespace

TORCH_LIBRARY_IMPL(maskrcnn_benchmark, CPU, m) {
  m.impl("nms", nms_cpu);
  m.impl("batched_nms", batched_nms_cpu);
}
