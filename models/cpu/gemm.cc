#include "models/cpu/gemm.h"

#include <Eigen/Core>

namespace inferd::models::cpu {
namespace {

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Stride = Eigen::OuterStride<>;

template <typename T, typename AMap, typename BMap>
void Product(const AMap& a, const BMap& b, T alpha, bool accumulate, T* c, int64_t m, int64_t n,
             int64_t ldc) {
  Eigen::Map<RowMat<T>, 0, Stride> cm(c, m, n, Stride(ldc));
  if (accumulate) {
    cm.noalias() += alpha * (a * b);
  } else if (alpha == T(1)) {
    cm.noalias() = a * b;
  } else {
    cm.noalias() = alpha * (a * b);
  }
}

}  // namespace

template <typename T>
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, bool accumulate, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) {
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = T(0);
      }
    }
    return;
  }
  // A few rows times a transposed B (a fully connected layer on a small batch): dot products of
  // contiguous rows, without the temporaries Eigen's matrix-vector product allocates.
  if (!trans_a && trans_b && m <= 4) {
    using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    for (int64_t i = 0; i < m; ++i) {
      const Eigen::Map<const Vec> ai(a + i * lda, k);
      T* ci = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) {
        const T dot = ai.dot(Eigen::Map<const Vec>(b + j * ldb, k));
        ci[j] = accumulate ? ci[j] + alpha * dot : alpha * dot;
      }
    }
    return;
  }
  // A stored transposed (K x M row-major) is the same memory as M x K column-major.
  if (!trans_a && !trans_b) {
    Eigen::Map<const RowMat<T>, 0, Stride> am(a, m, k, Stride(lda));
    Eigen::Map<const RowMat<T>, 0, Stride> bm(b, k, n, Stride(ldb));
    Product<T>(am, bm, alpha, accumulate, c, m, n, ldc);
  } else if (!trans_a && trans_b) {
    Eigen::Map<const RowMat<T>, 0, Stride> am(a, m, k, Stride(lda));
    Eigen::Map<const ColMat<T>, 0, Stride> bm(b, k, n, Stride(ldb));
    Product<T>(am, bm, alpha, accumulate, c, m, n, ldc);
  } else if (trans_a && !trans_b) {
    Eigen::Map<const ColMat<T>, 0, Stride> am(a, m, k, Stride(lda));
    Eigen::Map<const RowMat<T>, 0, Stride> bm(b, k, n, Stride(ldb));
    Product<T>(am, bm, alpha, accumulate, c, m, n, ldc);
  } else {
    Eigen::Map<const ColMat<T>, 0, Stride> am(a, m, k, Stride(lda));
    Eigen::Map<const ColMat<T>, 0, Stride> bm(b, k, n, Stride(ldb));
    Product<T>(am, bm, alpha, accumulate, c, m, n, ldc);
  }
}

template void Gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, bool, float*, int64_t);
template void Gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, bool, double*, int64_t);

}  // namespace inferd::models::cpu
