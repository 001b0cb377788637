#include "models/cpu/sgemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "models/cpu/simd.h"

namespace inferd::models::cpu {
namespace {

// K is processed in blocks so an A micro-panel (8 x kKc) stays in L1 while the B block
// (kKc x N) stays in L2.
constexpr int64_t kKc = 256;

using S = simd::Isa;
constexpr int kL = S::kLanes;  // kGemmNr is two vectors

// c[rows x cols] (=|+=) a[k][kGemmMr] * b[k][kGemmNr], the kGemmMr x kGemmNr tile in registers.
// `ep` (applied when not null) sees this tile as rows row0.. and columns col0.. of C.
inline void MicroKernel(int64_t k, const float* a, const float* b, float* c, int64_t ldc,
                        bool accumulate, int64_t rows, int64_t cols, const GemmEpilogue* ep,
                        int64_t row0, int64_t col0) {
  S::V c0[kGemmMr], c1[kGemmMr];
  for (int r = 0; r < kGemmMr; ++r) c0[r] = c1[r] = S::Zero();
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const S::V b0 = S::Load(b);
    const S::V b1 = S::Load(b + kL);
#pragma GCC unroll 8
    for (int r = 0; r < kGemmMr; ++r) {
      const S::V av = S::Set1(a[r]);
      c0[r] = S::Fma(av, b0, c0[r]);
      c1[r] = S::Fma(av, b1, c1[r]);
    }
    a += kGemmMr;
    b += kGemmNr;
  }
  const int n0 = static_cast<int>(std::min<int64_t>(cols, kL));
  const int n1 = static_cast<int>(std::clamp<int64_t>(cols - kL, 0, kL));
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    if (accumulate) {
      c0[r] = S::Add(c0[r], S::LoadFirst(cr, n0));
      c1[r] = S::Add(c1[r], S::LoadFirst(cr + kL, n1));
    }
    if (ep != nullptr) {
      if (ep->bias != nullptr) {
        const S::V b = S::Set1(ep->bias[row0 + r]);
        c0[r] = S::Add(c0[r], b);
        c1[r] = S::Add(c1[r], b);
      }
      if (ep->residual != nullptr) {
        const float* rr = ep->residual + (row0 + r) * ldc + col0;
        c0[r] = S::Add(c0[r], S::LoadFirst(rr, n0));
        c1[r] = S::Add(c1[r], S::LoadFirst(rr + kL, n1));
      }
      if (ep->clamp) {
        const S::V lo = S::Set1(ep->lo), hi = S::Set1(ep->hi);
        c0[r] = S::Min(hi, S::Max(lo, c0[r]));
        c1[r] = S::Min(hi, S::Max(lo, c1[r]));
      }
    }
    S::StoreFirst(cr, n0, c0[r]);
    S::StoreFirst(cr + kL, n1, c1[r]);
  }
}

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
