#include "models/cpu/small_rows_gemm.h"

#include <algorithm>

#include "models/cpu/simd.h"

namespace inferd::models::cpu {

KMajorMatrix::KMajorMatrix(const float* b, int64_t ldb, int64_t k, int64_t n, bool transposed)
    : k_(k), n_(n), stride_((n + kAlign - 1) / kAlign * kAlign), data_(k * stride_, 0.0f) {
  for (int64_t i = 0; i < k; ++i) {
    float* dst = data_.data() + i * stride_;
    for (int64_t j = 0; j < n; ++j) dst[j] = transposed ? b[j * ldb + i] : b[i * ldb + j];
  }
}

namespace {

using S = simd::Isa;
constexpr int kL = S::kLanes;
// Rows of A per block, and vectors of columns per block: 6 x 4 vectors (24 sums, 4 weight
// vectors and A's broadcast value) in AVX-512's 32 registers, 6 x 2 (15) in AVX2's 16.
constexpr int kRowBlock = 6;
constexpr int kColumnVectors = S::kRegisters >= 32 ? 4 : 2;
static_assert(KMajorMatrix::kAlign % kL == 0, "rows must hold whole vectors");

// R rows x V vectors of columns starting at column j (the last vector holds `last` columns).
template <int R, int V>
void Block(int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b, int64_t j,
           int last, bool accumulate, float* c, int64_t ldc) {
  S::V acc[R][V];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) acc[r][v] = S::Zero();
  }
  const float* w = b.row(0) + j;
  const int64_t stride = b.stride();
  for (int64_t p = 0; p < k; ++p, w += stride) {
    S::V wv[V];
    for (int v = 0; v < V; ++v) wv[v] = S::Load(w + v * kL);
    for (int r = 0; r < R; ++r) {
      const S::V x = S::Set1(a[r * lda + p]);
      for (int v = 0; v < V; ++v) acc[r][v] = S::Fma(x, wv[v], acc[r][v]);
    }
  }
  const S::V scale = S::Set1(alpha);
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      float* out = c + r * ldc + j + v * kL;
      const int lanes = v == V - 1 ? last : kL;
      S::V y = S::Mul(acc[r][v], scale);
      if (accumulate) y = S::Add(y, S::LoadFirst(out, lanes));
      S::StoreFirst(out, lanes, y);
    }
  }
}

// The last block of a row block's columns: V = vectors, up to kColumnVectors.
template <int R, int V = 1>
void Tail(int vectors, int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b,
          int64_t j, int last, bool accumulate, float* c, int64_t ldc) {
  if constexpr (V < kColumnVectors) {
    if (vectors > V) return Tail<R, V + 1>(vectors, k, alpha, a, lda, b, j, last, accumulate, c, ldc);
  }
  Block<R, V>(k, alpha, a, lda, b, j, last, accumulate, c, ldc);
}

template <int R>
void Rows(int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b, int64_t c0,
          int64_t c1, bool accumulate, float* c, int64_t ldc) {
  int64_t j = c0;
  for (; j + kColumnVectors * kL <= c1; j += kColumnVectors * kL) {
    Block<R, kColumnVectors>(k, alpha, a, lda, b, j, kL, accumulate, c, ldc);
  }
  const int64_t rest = c1 - j;
  if (rest == 0) return;
  const int vectors = static_cast<int>((rest + kL - 1) / kL);
  const int last = static_cast<int>(rest - (vectors - 1) * kL);
  Tail<R>(vectors, k, alpha, a, lda, b, j, last, accumulate, c, ldc);
}

// Rows [0, m) for m < kRowBlock, R counting up to m.
template <int R = 1>
void FewRows(int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b,
             int64_t c0, int64_t c1, bool accumulate, float* c, int64_t ldc) {
  if constexpr (R < kRowBlock) {
    if (m == R) return Rows<R>(k, alpha, a, lda, b, c0, c1, accumulate, c, ldc);
    FewRows<R + 1>(m, k, alpha, a, lda, b, c0, c1, accumulate, c, ldc);
  }
}

}  // namespace

void SmallRowsGemm(int64_t m, int64_t c0, int64_t c1, float alpha, const float* a, int64_t lda,
                   const KMajorMatrix& b, bool accumulate, float* c, int64_t ldc) {
  const int64_t k = b.k();
  c1 = std::min(c1, b.n());
  if (c0 >= c1) return;
  int64_t i = 0;
  for (; i + kRowBlock <= m; i += kRowBlock) {
    Rows<kRowBlock>(k, alpha, a + i * lda, lda, b, c0, c1, accumulate, c + i * ldc, ldc);
  }
  FewRows(m - i, k, alpha, a + i * lda, lda, b, c0, c1, accumulate, c + i * ldc, ldc);
}

}  // namespace inferd::models::cpu
