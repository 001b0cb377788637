// Packed single-precision GEMM: C[M,N] = A[M,K] * B[K,N] with A packed once (weights, at load)
// and B packed per call. The micro-kernel is an 8x32 AVX-512 register tile where the build
// machine has AVX-512; elsewhere a portable kernel of the same shape. Single-threaded: callers
// split N (or M) across the intra-op pool.
#ifndef INFERD_MODELS_CPU_SGEMM_H_
#define INFERD_MODELS_CPU_SGEMM_H_

#include <cstdint>
#include <vector>

namespace inferd::models::cpu {

inline constexpr int64_t kGemmMr = 8;   // rows of A per packed panel
inline constexpr int64_t kGemmNr = 32;  // columns of B per packed panel

// A (row-major, M x K, row stride lda) packed into ceil(M/8) panels of [K][8], zero-padded.
class PackedA {
 public:
  PackedA() = default;
  PackedA(const float* a, int64_t lda, int64_t m, int64_t k);
  int64_t m() const { return m_; }
  int64_t panels() const { return (m_ + kGemmMr - 1) / kGemmMr; }
  int64_t k() const { return k_; }
  const float* panel(int64_t p) const { return data_.data() + p * k_ * kGemmMr; }

 private:
  int64_t m_ = 0, k_ = 0;
  std::vector<float> data_;
};

// Floats PackB needs for a K x N block.
inline int64_t PackedBSize(int64_t k, int64_t n) {
  return ((n + kGemmNr - 1) / kGemmNr) * k * kGemmNr;
}

// B (row-major, K x N, row stride ldb) into ceil(N/32) panels of [K][32], zero-padded.
// `packed` must be 64-byte aligned and hold PackedBSize(k, n) floats.
void PackB(const float* b, int64_t ldb, int64_t k, int64_t n, float* packed);

// Rows [8 * panel_begin, 8 * panel_end) of C = A * B, overwriting them; `c` points at row 0
// of C (row stride ldc) and `packed_b` comes from PackB(k, n).
void SgemmPacked(const PackedA& a, int64_t panel_begin, int64_t panel_end, int64_t n,
                 const float* packed_b, float* c, int64_t ldc);

// A grow-only, 64-byte aligned scratch buffer owned by the calling thread. `slot` selects one
// of a few independent buffers.
float* ThreadScratch(int slot, int64_t floats);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_SGEMM_H_
