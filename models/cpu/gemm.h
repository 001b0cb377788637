// Single-threaded dense matrix products on row-major data (Eigen's blocked GEBP kernels,
// vectorised for the build machine's AVX2/AVX-512). Callers parallelise over blocks.
#ifndef INFERD_MODELS_CPU_GEMM_H_
#define INFERD_MODELS_CPU_GEMM_H_

#include <cstdint>

namespace inferd::models::cpu {

// C[M,N] (=|+=) alpha * op(A) * op(B), where op(A) is M x K and op(B) is K x N. Leading
// dimensions are row strides of the stored (untransposed) matrices.
template <typename T>
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, bool accumulate, T* c, int64_t ldc);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_GEMM_H_
