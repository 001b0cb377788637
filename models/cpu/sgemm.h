// Packed single-precision GEMM: C[M,N] = A[M,K] * B[K,N] with A packed once (weights, at load)
// and B packed per call. The micro-kernel keeps a kGemmMr x kGemmNr tile of C in vector
// registers (simd.h: 8 x 32 with AVX-512, 6 x 16 with AVX2). Single-threaded: callers split N
// (or M) across the intra-op pool.
#ifndef INFERD_MODELS_CPU_SGEMM_H_
#define INFERD_MODELS_CPU_SGEMM_H_

#include <cstdint>
#include <vector>

#include "models/cpu/simd.h"

namespace inferd::models::cpu {

// Rows of A per packed panel and columns of B (two vectors) per packed panel: the register tile
// of the micro-kernel, 8 x 32 with AVX-512's 32 registers, 6 x 16 with AVX2's 16.
inline constexpr int64_t kGemmMr = simd::Isa::kRegisters >= 32 ? 8 : 6;
inline constexpr int64_t kGemmNr = 2 * simd::Isa::kLanes;

// A packed A operand in memory owned elsewhere: ceil(m/Mr) panels of [k][Mr] (Mr = kGemmMr).
struct PackedARef {
  const float* data;
  int64_t m, k;
  int64_t panels() const { return (m + kGemmMr - 1) / kGemmMr; }
  const float* panel(int64_t p) const { return data + p * k * kGemmMr; }
};

// A (row-major, M x K, row stride lda) packed into ceil(M/Mr) panels of [K][Mr], zero-padded.
class PackedA {
 public:
  PackedA() = default;
  PackedA(const float* a, int64_t lda, int64_t m, int64_t k);
  int64_t m() const { return m_; }
  int64_t panels() const { return (m_ + kGemmMr - 1) / kGemmMr; }
  int64_t k() const { return k_; }
  const float* panel(int64_t p) const { return data_.data() + p * k_ * kGemmMr; }
  operator PackedARef() const { return {data_.data(), m_, k_}; }  // NOLINT: a view

 private:
  int64_t m_ = 0, k_ = 0;
  std::vector<float> data_;
};

// Floats PackB needs for a K x N block.
inline int64_t PackedBSize(int64_t k, int64_t n) {
  return ((n + kGemmNr - 1) / kGemmNr) * k * kGemmNr;
}

// A row-major K x N matrix (row stride ld) into ceil(N/width) panels of [K][width],
// zero-padded: PackB's layout for width kGemmNr (`packed` PackedBSize floats), and PackedA's
// layout of the transposed matrix for width kGemmMr.
void PackPanels(const float* src, int64_t ld, int64_t k, int64_t n, int64_t width, float* packed);
inline void PackB(const float* b, int64_t ldb, int64_t k, int64_t n, float* packed) {
  PackPanels(b, ldb, k, n, kGemmNr, packed);
}
// Same for B = W^T where W is row-major N x K with row stride ldw.
void PackBTransposed(const float* w, int64_t ldw, int64_t k, int64_t n, float* packed);

// Applied to C as it is stored after the last K block: C = clamp(C + bias[row] + residual).
struct GemmEpilogue {
  const float* bias = nullptr;      // per row of C (indexed from row 0), or null
  const float* residual = nullptr;  // same layout as C (row stride ldc), or null
  bool clamp = false;
  float lo = 0, hi = 0;
};

// Rows [Mr * panel_begin, Mr * panel_end) of C = A * B, overwriting them; `c` points at row 0
// of C (row stride ldc) and `packed_b` comes from PackB(k, n).
void SgemmPacked(PackedARef a, int64_t panel_begin, int64_t panel_end, int64_t n,
                 const float* packed_b, float* c, int64_t ldc,
                 const GemmEpilogue* epilogue = nullptr);

// A grow-only, 64-byte aligned scratch buffer owned by the calling thread. `slot` selects one
// of kScratchSlots independent buffers; each user owns a slot (0 packed B, 1 im2col or direct conv planes,
// 2 depthwise plane, 3 pooling plane, 4-5 transposed conv operands and Winograd products,
// 6-7 pooling row and column passes).
inline constexpr int kScratchSlots = 8;
float* ThreadScratch(int slot, int64_t floats);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_SGEMM_H_
