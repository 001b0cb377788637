// Fully connected layers on small batches: C = alpha * A * B (+ C) for A with few rows and a
// constant B packed once at load. Eigen's general product packs B on every call, which for a
// 512 x 64 weight matrix and a batch of 5 rows costs several times the arithmetic; here B's
// rows stream past once per block of up to 6 rows of A, each block's products held in
// registers (up to 6 rows x 64 columns on AVX-512, 6 x 16 on AVX2). Single-threaded: callers split the
// columns (or rows) across the intra-op pool.
#ifndef INFERD_MODELS_CPU_SMALL_ROWS_GEMM_H_
#define INFERD_MODELS_CPU_SMALL_ROWS_GEMM_H_

#include <cstdint>
#include <vector>

namespace inferd::models::cpu {

// B (K x N; stored as N x K when `transposed`, as a fully connected layer's weights are) as K
// rows of N floats, the row stride rounded up to 16 and zero-padded: SmallRowsGemm's operand.
class KMajorMatrix {
 public:
  static constexpr int64_t kAlign = 16;
  KMajorMatrix(const float* b, int64_t ldb, int64_t k, int64_t n, bool transposed);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int64_t stride() const { return stride_; }
  const float* row(int64_t i) const { return data_.data() + i * stride_; }

 private:
  int64_t k_ = 0, n_ = 0, stride_ = 0;
  std::vector<float> data_;
};

// Columns [c0, c1) of C[M x N] (=|+=) alpha * A[M x K] * B, with A row-major (row stride lda)
// and C row-major (row stride ldc). c0 must be a multiple of KMajorMatrix::kAlign.
void SmallRowsGemm(int64_t m, int64_t c0, int64_t c1, float alpha, const float* a, int64_t lda,
                   const KMajorMatrix& b, bool accumulate, float* c, int64_t ldc);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_SMALL_ROWS_GEMM_H_
