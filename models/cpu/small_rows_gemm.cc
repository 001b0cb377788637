#include "models/cpu/small_rows_gemm.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace inferd::models::cpu {

KMajorMatrix::KMajorMatrix(const float* b, int64_t ldb, int64_t k, int64_t n, bool transposed)
    : k_(k), n_(n), stride_((n + kAlign - 1) / kAlign * kAlign), data_(k * stride_, 0.0f) {
  for (int64_t i = 0; i < k; ++i) {
    float* dst = data_.data() + i * stride_;
    for (int64_t j = 0; j < n; ++j) dst[j] = transposed ? b[j * ldb + i] : b[i * ldb + j];
  }
}

namespace {

#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;

// R rows x V vectors of columns starting at column j (the last vector holds `last` columns).
template <int R, int V>
void Block(int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b, int64_t j,
           int last, bool accumulate, float* c, int64_t ldc) {
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  const float* w = b.row(0) + j;
  const int64_t stride = b.stride();
  for (int64_t p = 0; p < k; ++p, w += stride) {
    __m512 wv[V];
    for (int v = 0; v < V; ++v) wv[v] = _mm512_loadu_ps(w + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + p]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
    }
  }
  const __m512 scale = _mm512_set1_ps(alpha);
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      float* out = c + r * ldc + j + v * kLanes;
      const __mmask16 mask =
          v == V - 1 ? static_cast<__mmask16>((1u << last) - 1) : static_cast<__mmask16>(0xFFFF);
      __m512 y = _mm512_mul_ps(acc[r][v], scale);
      if (accumulate) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, out));
      _mm512_mask_storeu_ps(out, mask, y);
    }
  }
}

template <int R>
void Rows(int64_t k, float alpha, const float* a, int64_t lda, const KMajorMatrix& b, int64_t c0,
          int64_t c1, bool accumulate, float* c, int64_t ldc) {
  // Columns 64 at a time (4 vectors), then what is left.
  int64_t j = c0;
  for (; j + 4 * kLanes <= c1; j += 4 * kLanes) {
    Block<R, 4>(k, alpha, a, lda, b, j, kLanes, accumulate, c, ldc);
  }
  const int64_t rest = c1 - j;
  if (rest == 0) return;
  const int vectors = static_cast<int>((rest + kLanes - 1) / kLanes);
  const int last = static_cast<int>(rest - (vectors - 1) * kLanes);
  switch (vectors) {
    case 1:
      return Block<R, 1>(k, alpha, a, lda, b, j, last, accumulate, c, ldc);
    case 2:
      return Block<R, 2>(k, alpha, a, lda, b, j, last, accumulate, c, ldc);
    default:
      return Block<R, 3>(k, alpha, a, lda, b, j, last, accumulate, c, ldc);
  }
}
#endif

}  // namespace

void SmallRowsGemm(int64_t m, int64_t c0, int64_t c1, float alpha, const float* a, int64_t lda,
                   const KMajorMatrix& b, bool accumulate, float* c, int64_t ldc) {
  const int64_t k = b.k();
  c1 = std::min(c1, b.n());
  if (c0 >= c1) return;
#if defined(__AVX512F__)
  // Blocks of 6 rows (24 accumulators for 64 columns, 4 for the weights, 1 for A).
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) {
    Rows<6>(k, alpha, a + i * lda, lda, b, c0, c1, accumulate, c + i * ldc, ldc);
  }
  const float* ai = a + i * lda;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 1:
      return Rows<1>(k, alpha, ai, lda, b, c0, c1, accumulate, ci, ldc);
    case 2:
      return Rows<2>(k, alpha, ai, lda, b, c0, c1, accumulate, ci, ldc);
    case 3:
      return Rows<3>(k, alpha, ai, lda, b, c0, c1, accumulate, ci, ldc);
    case 4:
      return Rows<4>(k, alpha, ai, lda, b, c0, c1, accumulate, ci, ldc);
    case 5:
      return Rows<5>(k, alpha, ai, lda, b, c0, c1, accumulate, ci, ldc);
    default:
      return;
  }
#else
  // Row by row, the columns innermost (which compilers vectorise).
  std::vector<float> acc(static_cast<size_t>(c1 - c0));
  for (int64_t i = 0; i < m; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float x = a[i * lda + p];
      const float* w = b.row(p) + c0;
      for (int64_t j = 0; j < c1 - c0; ++j) acc[j] += x * w[j];
    }
    float* out = c + i * ldc + c0;
    for (int64_t j = 0; j < c1 - c0; ++j) out[j] = alpha * acc[j] + (accumulate ? out[j] : 0.0f);
  }
#endif
}

}  // namespace inferd::models::cpu
