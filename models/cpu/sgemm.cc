#include "models/cpu/sgemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace inferd::models::cpu {
namespace {

// K is processed in blocks so an A micro-panel (8 x kKc) stays in L1 while the B block
// (kKc x N) stays in L2.
constexpr int64_t kKc = 256;

#if defined(__AVX512F__)

// c[rows x cols] (=|+=) a[k][8] * b[k][32].
// `ep` (applied when not null) sees this tile as rows row0.. and columns col0.. of C.
inline void MicroKernel(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                        bool accumulate, int64_t rows, int64_t cols, const GemmEpilogue* ep,
                        int64_t row0, int64_t col0) {
  __m512 c0[kGemmMr], c1[kGemmMr];
  for (int r = 0; r < kGemmMr; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < kGemmMr; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
    a += kGemmMr;
    b += kGemmNr;
  }
  const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 =
      cols >= 32 ? 0xffff : (cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1));
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
      c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    if (ep != nullptr) {
      if (ep->bias != nullptr) {
        const __m512 b = _mm512_set1_ps(ep->bias[row0 + r]);
        c0[r] = _mm512_add_ps(c0[r], b);
        c1[r] = _mm512_add_ps(c1[r], b);
      }
      if (ep->residual != nullptr) {
        const float* rr = ep->residual + (row0 + r) * ldc + col0;
        c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, rr));
        c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, rr + 16));
      }
      if (ep->clamp) {
        const __m512 lo = _mm512_set1_ps(ep->lo), hi = _mm512_set1_ps(ep->hi);
        c0[r] = _mm512_min_ps(hi, _mm512_max_ps(lo, c0[r]));
        c1[r] = _mm512_min_ps(hi, _mm512_max_ps(lo, c1[r]));
      }
    }
    _mm512_mask_storeu_ps(cr, m0, c0[r]);
    _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
  }
}

#else

// `ep` (applied when not null) sees this tile as rows row0.. and columns col0.. of C.
inline void MicroKernel(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                        bool accumulate, int64_t rows, int64_t cols, const GemmEpilogue* ep,
                        int64_t row0, int64_t col0) {
  float acc[kGemmMr][kGemmNr] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int r = 0; r < kGemmMr; ++r) {
      const float av = a[r];
      for (int j = 0; j < kGemmNr; ++j) acc[r][j] += av * b[j];
    }
    a += kGemmMr;
    b += kGemmNr;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      float v = accumulate ? cr[j] + acc[r][j] : acc[r][j];
      if (ep != nullptr) {
        if (ep->bias != nullptr) v += ep->bias[row0 + r];
        if (ep->residual != nullptr) v += ep->residual[(row0 + r) * ldc + col0 + j];
        if (ep->clamp) v = std::min(ep->hi, std::max(ep->lo, v));
      }
      cr[j] = v;
    }
  }
}

#endif

}  // namespace

PackedA::PackedA(const float* a, int64_t lda, int64_t m, int64_t k)
    : m_(m), k_(k), data_(((m + kGemmMr - 1) / kGemmMr) * k * kGemmMr, 0.0f) {
  if (k == 0) return;  // nothing to pack (and data_ has no memory to point into)
  for (int64_t i = 0; i < m; ++i) {
    float* panel = data_.data() + (i / kGemmMr) * k * kGemmMr + (i % kGemmMr);
    const float* row = a + i * lda;
    for (int64_t p = 0; p < k; ++p) panel[p * kGemmMr] = row[p];
  }
}

void PackPanels(const float* src, int64_t ld, int64_t k, int64_t n, int64_t width, float* packed) {
  for (int64_t j0 = 0; j0 < n; j0 += width) {
    const int64_t w = std::min(width, n - j0);
    float* panel = packed + (j0 / width) * k * width;
    for (int64_t p = 0; p < k; ++p) {
      float* dst = panel + p * width;
      std::memcpy(dst, src + p * ld + j0, w * sizeof(float));
      if (w < width) std::memset(dst + w, 0, (width - w) * sizeof(float));
    }
  }
}

void PackBTransposed(const float* w, int64_t ldw, int64_t k, int64_t n, float* packed) {
  std::memset(packed, 0, PackedBSize(k, n) * sizeof(float));
  for (int64_t j = 0; j < n; ++j) {
    float* panel = packed + (j / kGemmNr) * k * kGemmNr + (j % kGemmNr);
    for (int64_t p = 0; p < k; ++p) panel[p * kGemmNr] = w[j * ldw + p];
  }
}

void SgemmPacked(PackedARef a, int64_t panel_begin, int64_t panel_end, int64_t n,
                 const float* packed_b, float* c, int64_t ldc, const GemmEpilogue* epilogue) {
  const int64_t m = a.m, k = a.k;
  if (m == 0 || n == 0 || panel_begin >= panel_end) return;
  if (k == 0) {  // an empty product: C is just the epilogue applied to zeros
    const GemmEpilogue none;
    const GemmEpilogue& ep = epilogue ? *epilogue : none;
    for (int64_t i = panel_begin * kGemmMr; i < std::min(m, panel_end * kGemmMr); ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float v = (ep.bias ? ep.bias[i] : 0.0f) + (ep.residual ? ep.residual[i * ldc + j] : 0.0f);
        c[i * ldc + j] = ep.clamp ? std::min(ep.hi, std::max(ep.lo, v)) : v;
      }
    }
    return;
  }
  const int64_t n_panels = (n + kGemmNr - 1) / kGemmNr;
  for (int64_t p0 = 0; p0 < k; p0 += kKc) {
    const int64_t kc = std::min(kKc, k - p0);
    const bool accumulate = p0 > 0;
    const GemmEpilogue* ep = p0 + kc == k ? epilogue : nullptr;
    auto tile = [&](int64_t ip, int64_t jp) {
      const float* ap = a.panel(ip) + p0 * kGemmMr;
      const float* bp = packed_b + jp * k * kGemmNr + p0 * kGemmNr;
      const int64_t rows = std::min(kGemmMr, m - ip * kGemmMr);
      const int64_t cols = std::min(kGemmNr, n - jp * kGemmNr);
      MicroKernel(kc, ap, bp, c + ip * kGemmMr * ldc + jp * kGemmNr, ldc, accumulate, rows, cols,
                  ep, ip * kGemmMr, jp * kGemmNr);
    };
    // Keep the smaller operand's block cached and stream the other: with few row panels the
    // A block stays in L2 while each B panel is read once.
    if (panel_end - panel_begin < n_panels) {
      for (int64_t jp = 0; jp < n_panels; ++jp) {
        for (int64_t ip = panel_begin; ip < panel_end; ++ip) tile(ip, jp);
      }
    } else {
      for (int64_t ip = panel_begin; ip < panel_end; ++ip) {
        for (int64_t jp = 0; jp < n_panels; ++jp) tile(ip, jp);
      }
    }
  }
}

float* ThreadScratch(int slot, int64_t floats) {
  struct Buffer {
    float* data = nullptr;
    int64_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[kScratchSlots];
  Buffer& b = buffers[slot];
  if (b.size < floats) {
    std::free(b.data);
    const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
    b.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    b.size = b.data ? floats : 0;
  }
  return b.data;
}

}  // namespace inferd::models::cpu
