// Instruction-set selection for the CPU kernels (csrc/cpu/*.cpp), and the compiler macros they share.
//
// A kernel's hot code is written once, as always-inline functions without a target of their own.
// dispatch_isa<candidates...>(f) runs f inside a small trampoline compiled for the first candidate
// the CPU supports (a `target` attribute), or for the baseline ISA; since f and everything it
// inlines is compiled as part of that trampoline, the compiler vectorises it for that instruction
// set. f gets the chosen Isa as a compile-time tag, so it can also pick hand-written intrinsics:
//
//   dispatch_isa<Isa::kAvx2Fma>([&](auto isa) MRB_ALWAYS_INLINE { kernel<decltype(isa)::value>(...); });
//
// f's call operator must be MRB_ALWAYS_INLINE (and what it calls MRB_INLINE): a body that is not
// inlined into the trampoline is compiled for the baseline ISA only.
//
// Why not GCC's target_clones: it cannot give a function the ISA as a compile-time value (ROIPool's
// AVX2 intrinsics need it), and it needs ifunc support (GNU/Linux); this works with GCC and Clang.
//
// Each kernel names its own candidates because the target set fixes its numerics: with "fma" (or
// "avx512f", whose instructions include FMA) the compiler contracts a * b + c into one rounding,
// without it every operation rounds separately. kAvx2 deliberately leaves FMA out.
#pragma once

#include <type_traits>

// MRB_X86: GCC/Clang on x86, where the non-baseline versions exist; elsewhere (or with another
// compiler) dispatch_isa always runs the baseline version.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MRB_X86 1
#define MRB_TARGET_AVX2 __attribute__((target("avx2")))
#define MRB_TARGET_AVX2_FMA __attribute__((target("avx2,fma")))
#define MRB_TARGET_AVX512F __attribute__((target("avx512f")))
#else
#define MRB_X86 0
#endif

#if defined(__GNUC__)
#define MRB_ALWAYS_INLINE __attribute__((always_inline))  // (also valid on a lambda, after its parameters)
#define MRB_INLINE inline MRB_ALWAYS_INLINE
#define MRB_NOINLINE __attribute__((noinline))
#define MRB_RESTRICT __restrict__
#define MRB_PREFETCH(p, rw) __builtin_prefetch((p), (rw))
#elif defined(_MSC_VER)
#define MRB_ALWAYS_INLINE
#define MRB_INLINE __forceinline
#define MRB_NOINLINE __declspec(noinline)
#define MRB_RESTRICT __restrict
#define MRB_PREFETCH(p, rw) ((void)(p))
#else
#define MRB_ALWAYS_INLINE
#define MRB_INLINE inline
#define MRB_NOINLINE
#define MRB_RESTRICT
#define MRB_PREFETCH(p, rw) ((void)(p))
#endif

namespace maskrcnn_benchmark {
// (Unnamed namespace: each kernel file gets its own copy; see roi_cpu_common.h.)
namespace {

enum class Isa {
  kBaseline,  // what the compiler targets by default (x86-64: SSE2)
  kAvx2,      // AVX2 without FMA
  kAvx2Fma,   // AVX2 and FMA
  kAvx512f,   // AVX-512 Foundation (its instructions include FMA)
};

template <Isa I>
using IsaTag = std::integral_constant<Isa, I>;

// Whether this CPU (and OS) can run code compiled for `isa`; detected once.
bool cpu_supports(Isa isa) {
#if MRB_X86
  struct Features {
    bool avx2, fma, avx512f;
  };
  static const Features f = [] {
    __builtin_cpu_init();
    return Features{__builtin_cpu_supports("avx2") != 0, __builtin_cpu_supports("fma") != 0,
                    __builtin_cpu_supports("avx512f") != 0};
  }();
  switch (isa) {
    case Isa::kBaseline:
      return true;
    case Isa::kAvx2:
      return f.avx2;
    case Isa::kAvx2Fma:
      return f.avx2 && f.fma;
    case Isa::kAvx512f:
      return f.avx512f;
  }
  return false;
#else
  return isa == Isa::kBaseline;
#endif
}

// CompiledFor<I>::call(f) runs f(IsaTag<I>{}) from a function compiled for I.
template <Isa I>
struct CompiledFor;

#define MRB_DEFINE_COMPILED_FOR(ISA, TARGET)  \
  template <>                                 \
  struct CompiledFor<ISA> {                   \
    template <typename F>                     \
    TARGET static decltype(auto) call(F& f) { \
      return f(IsaTag<ISA>{});                \
    }                                         \
  };
MRB_DEFINE_COMPILED_FOR(Isa::kBaseline, )
#if MRB_X86
MRB_DEFINE_COMPILED_FOR(Isa::kAvx2, MRB_TARGET_AVX2)
MRB_DEFINE_COMPILED_FOR(Isa::kAvx2Fma, MRB_TARGET_AVX2_FMA)
MRB_DEFINE_COMPILED_FOR(Isa::kAvx512f, MRB_TARGET_AVX512F)
#endif
#undef MRB_DEFINE_COMPILED_FOR

template <typename F>
MRB_INLINE decltype(auto) dispatch_isa_among(F& f) {
  return CompiledFor<Isa::kBaseline>::call(f);
}

template <Isa First, Isa... Rest, typename F>
MRB_INLINE decltype(auto) dispatch_isa_among(F& f) {
  if (cpu_supports(First)) {
    return CompiledFor<First>::call(f);
  }
  return dispatch_isa_among<Rest...>(f);
}

// Runs f(IsaTag<I>{}) compiled for the first of Candidates (best first) that the CPU supports, else
// for the baseline ISA. Only the candidates and the baseline are compiled.
template <Isa... Candidates, typename F>
MRB_INLINE decltype(auto) dispatch_isa(F&& f) {
#if MRB_X86
  return dispatch_isa_among<Candidates...>(f);
#else
  return CompiledFor<Isa::kBaseline>::call(f);
#endif
}

}  // namespace
}  // namespace maskrcnn_benchmark
