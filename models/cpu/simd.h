// The vector operations the hand-written CPU kernels are built from (the packed GEMM's
// micro-kernel, direct, depthwise and small-map Winograd convolution, small-batch fully
// connected layers), so that one kernel source serves every instruction set the build may
// target:
//
//   Avx512     16 floats a vector, 32 registers (builds with -mavx512f)
//   Avx2       8 floats a vector, 16 registers (builds with -mavx2 -mfma: Haswell and later,
//              AMD Zen)
//   Emulated   N floats as a GCC vector, for every other build (4 floats, 16 registers), and
//              for testing another target's register blocking on this machine
//              (INFERD_SIMD_EMULATE=8 or 16)
//
// `Isa` is the one this build uses. Kernels size their register tiles from kLanes and
// kRegisters, so an Emulated<16, 32> build runs the AVX-512 blocking (and Emulated<8, 16>
// AVX2's) anywhere, slowly but with the same index arithmetic: tests/models/CMakeLists.txt
// builds the kernel tests that way too.
//
// Masked forms touch only the lanes they name: lanes outside them are neither read nor
// written, so they may lie past the end of a buffer.
#ifndef INFERD_MODELS_CPU_SIMD_H_
#define INFERD_MODELS_CPU_SIMD_H_

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace inferd::models::cpu::simd {

#if defined(__AVX2__)
// dst[j][i] = src[i][j] for an 8x8 block of floats (rows `ss` and `ds` floats apart).
inline void Transpose8x8(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {  // interleave row pairs
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // then pairs of pairs
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {  // then the 128-bit halves of rows 0-3 and 4-7
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}
#endif

#if defined(__AVX512F__)
struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  static constexpr bool kHardware = true;

  static V Zero() { return _mm512_setzero_ps(); }
  static V Set1(float x) { return _mm512_set1_ps(x); }
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V Min(V a, V b) { return _mm512_min_ps(a, b); }
  static V Max(V a, V b) { return _mm512_max_ps(a, b); }
  // Lanes [lo, hi) of p[0, kLanes), zeros elsewhere (0 <= lo <= hi <= kLanes).
  static V LoadRange(const float* p, int lo, int hi) {
    const unsigned mask = ((1u << hi) - 1) & ~((1u << lo) - 1);
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), p);
  }
  // p[0, n) into lanes [0, n), zeros elsewhere (0 <= n <= kLanes).
  static V LoadFirst(const float* p, int n) {
    return n >= kLanes ? Load(p) : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  // Lanes [0, n) of v to p[0, n) (0 <= n <= kLanes).
  static void StoreFirst(float* p, int n, V v) {
    if (n >= kLanes) return Store(p, v);
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
  // Lanes [lo, hi) of v to p[lo, hi).
  static void StoreRange(float* p, int lo, int hi, V v) {
    const unsigned mask = ((1u << hi) - 1) & ~((1u << lo) - 1);
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>(mask), v);
  }
  // dst[j][i] = src[i][j] for a kLanes x kLanes block (rows `ss` and `ds` floats apart).
  static void Transpose(const float* src, int64_t ss, float* dst, int64_t ds) {
    for (int i = 0; i < kLanes; i += 8) {
      for (int j = 0; j < kLanes; j += 8) Transpose8x8(src + i * ss + j, ss, dst + j * ds + i, ds);
    }
  }
  // p[0], p[2], ..., p[2 * kLanes - 2]: every other float of 2 * kLanes.
  static V LoadEven(const float* p) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + kLanes));
  }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;
  static constexpr bool kHardware = true;

  static V Zero() { return _mm256_setzero_ps(); }
  static V Set1(float x) { return _mm256_set1_ps(x); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V Min(V a, V b) { return _mm256_min_ps(a, b); }
  static V Max(V a, V b) { return _mm256_max_ps(a, b); }
  static V LoadRange(const float* p, int lo, int hi) {
    return _mm256_maskload_ps(p, _mm256_andnot_si256(First(lo), First(hi)));
  }
  static V LoadFirst(const float* p, int n) {
    return n >= kLanes ? Load(p) : _mm256_maskload_ps(p, First(n));
  }
  // Full vectors take a plain store: a masked store to memory is slow on AMD's cores.
  static void StoreFirst(float* p, int n, V v) {
    if (n >= kLanes) return Store(p, v);
    _mm256_maskstore_ps(p, First(n), v);
  }
  static void StoreRange(float* p, int lo, int hi, V v) {
    _mm256_maskstore_ps(p, _mm256_andnot_si256(First(lo), First(hi)), v);
  }
  static void Transpose(const float* src, int64_t ss, float* dst, int64_t ds) {
    Transpose8x8(src, ss, dst, ds);
  }
  static V LoadEven(const float* p) {
    // [p0 p2 p8 p10 | p4 p6 p12 p14], then the middle 64-bit pairs swapped.
    const V mixed = _mm256_shuffle_ps(Load(p), Load(p + kLanes), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
  }

 private:
  // A lane mask with lanes [0, n) set: the window of a table of 8 ones and 8 zeros that starts
  // 8 - n ones before its end.
  static __m256i First(int n) {
    alignas(64) static constexpr int32_t kOnesThenZeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                               0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kOnesThenZeros + kLanes - n));
  }
};
#endif

// GCC vectors of 4, 8 and 16 floats (a vector_size that depends on a template parameter is
// not applied inside the template).
template <int N>
struct GccVector;
template <>
struct GccVector<4> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct GccVector<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct GccVector<16> {
  typedef float type __attribute__((vector_size(64)));
};

// N floats as a GCC vector (lowered to whatever registers the build has), with the register
// count a target of that width has.
template <int N, int Registers>
struct Emulated {
  using V = typename GccVector<N>::type;
  static constexpr int kLanes = N;
  static constexpr int kRegisters = Registers;
  static constexpr bool kHardware = false;

  static V Zero() { return V{}; }
  static V Set1(float x) { return V{} + x; }
  static V Load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void Store(float* p, V v) { std::memcpy(p, &v, sizeof(v)); }
  static V Fma(V a, V b, V c) { return a * b + c; }
  static V Add(V a, V b) { return a + b; }
  static V Sub(V a, V b) { return a - b; }
  static V Mul(V a, V b) { return a * b; }
  static V Min(V a, V b) { return a < b ? a : b; }
  static V Max(V a, V b) { return a > b ? a : b; }
  static V LoadRange(const float* p, int lo, int hi) {
    V v{};
    for (int i = lo; i < hi; ++i) v[i] = p[i];
    return v;
  }
  static V LoadFirst(const float* p, int n) { return n >= N ? Load(p) : LoadRange(p, 0, n); }
  static void StoreFirst(float* p, int n, V v) { StoreRange(p, 0, n < N ? n : N, v); }
  static void StoreRange(float* p, int lo, int hi, V v) {
    for (int i = lo; i < hi; ++i) p[i] = v[i];
  }
  static V LoadEven(const float* p) {
    V v;
    for (int i = 0; i < N; ++i) v[i] = p[2 * i];
    return v;
  }
  static void Transpose(const float* src, int64_t ss, float* dst, int64_t ds) {
    for (int i = 0; i < N; ++i) {
      for (int j = 0; j < N; ++j) dst[j * ds + i] = src[i * ss + j];
    }
  }
};

#if defined(INFERD_SIMD_EMULATE)
using Isa = Emulated<INFERD_SIMD_EMULATE, (INFERD_SIMD_EMULATE >= 16 ? 32 : 16)>;
#elif defined(__AVX512F__)
using Isa = Avx512;
#elif defined(__AVX2__) && defined(__FMA__)
using Isa = Avx2;
#else
using Isa = Emulated<4, 16>;  // SSE's width and register count
#endif

// Whether kernels that pay only with vector registers (direct and small-map Winograd
// convolution, depthwise convolution's vector loop) are chosen: with AVX2 or AVX-512, and in
// emulated builds, which exist to test them.
#if defined(INFERD_SIMD_EMULATE)
inline constexpr bool kVectorKernels = true;
#else
inline constexpr bool kVectorKernels = Isa::kHardware;
#endif

}  // namespace inferd::models::cpu::simd

#endif  // INFERD_MODELS_CPU_SIMD_H_
