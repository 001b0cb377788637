#include "models/cpu/direct_conv.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace inferd::models::cpu {
namespace {

// Output positions per vector, and output channels per block (one register each).
constexpr int64_t kLanes = 16;

// The shifted planes of one image (floats): 64 KiB at most, so that they stay in L2 (for the
// digits model's second layer, 15 KiB in L1) while each block of output channels reads them.
constexpr int64_t kMaxPlanesFloats = 16384;

// Outputs larger than this (positions per channel) are left to Winograd and im2col.
constexpr int64_t kMaxOutputPositions = 1024;

// Weights (floats) packed at load for layers whose output size is known only at run time: the
// packed copy is never larger than 256 KiB.
constexpr int64_t kMaxUnknownWeights = 65536;

// For every input channel c and kernel column b, a plane of `rows` rows of out_w floats:
// plane(c, b)[r][j] = input[c][r - pad_top][j + b * dilation_w - pad_left] (zero outside the
// input). The tap (c, a, b) for output position q = oh * out_w + ow then reads
// plane(c, b)[q + a * dilation_h * out_w]: 16 consecutive outputs are 16 consecutive floats.
struct Planes {
  int64_t rows = 0;    // out_h + (kh - 1) * dilation_h
  int64_t plane = 0;   // rows * out_w
  int64_t floats = 0;  // channels * kw planes, plus what the last vector's spare lanes read
};

Planes MakePlanes(const WindowGeometry& g, int64_t channels) {
  Planes p;
  p.rows = g.out[1] + (g.kernel[1] - 1) * g.dilation[1];
  p.plane = p.rows * g.out[2];
  p.floats = channels * g.kernel[2] * p.plane + kLanes;
  return p;
}

// dst[0, n) = src[j] for j in [lo, hi), 0 elsewhere; src[j] is only read there.
inline void ShiftedRow(float* dst, const float* src, int64_t lo, int64_t hi, int64_t n) {
#if defined(__AVX512F__)
  for (int64_t j = 0; j < n; j += kLanes) {
    const int64_t len = std::min(kLanes, n - j);
    const int64_t a = std::clamp<int64_t>(lo - j, 0, len), b = std::clamp<int64_t>(hi - j, a, len);
    const __mmask16 store = static_cast<__mmask16>((1u << len) - 1);
    const __mmask16 load = static_cast<__mmask16>(((1u << b) - 1) & ~((1u << a) - 1));
    // Masked-off lanes are neither read nor faulted on.
    _mm512_mask_storeu_ps(dst + j, store, _mm512_maskz_loadu_ps(load, src + j));
  }
#else
  for (int64_t j = 0; j < n; ++j) dst[j] = j >= lo && j < hi ? src[j] : 0.0f;
#endif
}

// Rows [r0, r1) of one shifted plane (rows of n floats): row r is ShiftedRow of the source row
// src + (r - r0) * src_stride.
inline void ShiftedRows(float* plane, const float* src, int64_t src_stride, int64_t r0,
                        int64_t r1, int64_t lo, int64_t hi, int64_t n) {
#if defined(__AVX512F__)
  if (n <= kLanes) {  // the same masks for every row: one masked move per row
    const __mmask16 store = static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 load = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
    for (int64_t r = r0; r < r1; ++r, src += src_stride) {
      _mm512_mask_storeu_ps(plane + r * n, store, _mm512_maskz_loadu_ps(load, src));
    }
    return;
  }
#endif
  for (int64_t r = r0; r < r1; ++r, src += src_stride) ShiftedRow(plane + r * n, src, lo, hi, n);
}

bool SmallOutput(int64_t out_h, int64_t out_w) {
  return out_h > 0 && out_w > 0 && out_h * out_w <= kMaxOutputPositions;
}

}  // namespace

bool DirectConv2d::Available() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

bool DirectConv2d::WorthPreparing(const Tensor& w, bool out_known, int64_t out_h, int64_t out_w) {
  if (!Available() || w.rank() != 4 || w.dim(2) * w.dim(3) <= 1) return false;
  return out_known ? SmallOutput(out_h, out_w) : w.num_elements() <= kMaxUnknownWeights;
}

bool DirectConv2d::Applies(const WindowGeometry& g, int64_t channels) const {
  if (!Available() || g.spatial != 2 || channels != c_) return false;
  if (g.kernel[0] != 1 || g.kernel[1] != kh_ || g.kernel[2] != kw_) return false;
  if (g.stride[1] != 1 || g.stride[2] != 1 || !SmallOutput(g.out[1], g.out[2])) return false;
  return MakePlanes(g, channels).floats <= kMaxPlanesFloats;
}

DirectConv2d::DirectConv2d(const Tensor& w)
    : m_(w.dim(0)), c_(w.dim(1)), kh_(w.dim(2)), kw_(w.dim(3)) {
  const int64_t k = c_ * kh_ * kw_;
  const int64_t blocks = (m_ + kLanes - 1) / kLanes;
  packed_.assign(blocks * k * kLanes, 0.0f);
  const float* src = w.data<float>();
  for (int64_t o = 0; o < m_; ++o) {
    float* dst = packed_.data() + (o / kLanes) * k * kLanes + o % kLanes;
    for (int64_t p = 0; p < k; ++p) dst[p * kLanes] = src[o * k + p];
  }
}

void DirectConv2d::Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g,
                       const GemmEpilogue& ep, Tensor* y) const {
  const int64_t n = x.dim(0);
  const Planes pl = MakePlanes(g, c_);
  const int64_t k = c_ * kh_ * kw_;
  const int64_t in_h = g.in[1], in_w = g.in[2], out_w = g.out[2], out_size = g.out_size();
  const int64_t vectors = (out_size + kLanes - 1) / kLanes;
  const int64_t blocks = (m_ + kLanes - 1) / kLanes;
  // Where each weight's tap reads, relative to an output position, in the weights' (c, kh, kw)
  // order.
  absl::InlinedVector<int32_t, 512> taps(k);
  for (int64_t c = 0; c < c_; ++c) {
    for (int64_t a = 0; a < kh_; ++a) {
      for (int64_t b = 0; b < kw_; ++b) {
        taps[(c * kh_ + a) * kw_ + b] =
            static_cast<int32_t>((c * kw_ + b) * pl.plane + a * g.dilation[1] * out_w);
      }
    }
  }

  // One task per image, or per (image, channel block) when there are fewer images than threads.
  const int64_t splits = n >= pool.num_threads() ? 1 : blocks;
  const float* xd = x.data<float>();
  float* yd = y->data<float>();
  pool.ParallelTasks(n * splits, [&](int64_t t) {
    const int64_t img = t / splits;
    const int64_t b0 = splits == 1 ? 0 : t % splits;
    const int64_t b1 = splits == 1 ? blocks : b0 + 1;
    // Slot 1 is im2col's plane: a thread runs one Conv at a time, by one of the two paths.
    float* planes = ThreadScratch(1, pl.floats);
    const float* xi = xd + img * c_ * g.in_size();
    for (int64_t c = 0; c < c_; ++c) {
      for (int64_t b = 0; b < kw_; ++b) {
        float* plane = planes + (c * kw_ + b) * pl.plane;
        const int64_t iw0 = b * g.dilation[2] - g.pad_begin[2];
        // Columns j with 0 <= iw0 + j < in_w.
        const int64_t lo = std::clamp<int64_t>(-iw0, 0, out_w);
        const int64_t hi = std::clamp<int64_t>(in_w - iw0, lo, out_w);
        // Rows r with 0 <= r - pad_top < in_h come from the input; the others are zeros.
        const int64_t r0 = std::min(pl.rows, g.pad_begin[1]);
        const int64_t r1 = std::clamp<int64_t>(in_h + g.pad_begin[1], r0, pl.rows);
        const float* src = xi + (c * in_h + r0 - g.pad_begin[1]) * in_w + iw0;
        std::memset(plane, 0, r0 * out_w * sizeof(float));
        ShiftedRows(plane, src, in_w, r0, r1, lo, hi, out_w);
        std::memset(plane + r1 * out_w, 0, (pl.rows - r1) * out_w * sizeof(float));
      }
    }
    std::memset(planes + pl.floats - kLanes, 0, kLanes * sizeof(float));
    for (int64_t blk = b0; blk < b1; ++blk) {
      const float* wb = packed_.data() + blk * k * kLanes;
      const int64_t rows = std::min(kLanes, m_ - blk * kLanes);
      const int64_t offset = (img * m_ + blk * kLanes) * out_size;
      float* yb = yd + offset;
      const float* rb = ep.residual ? ep.residual + offset : nullptr;
      const float* bb = ep.bias ? ep.bias + blk * kLanes : nullptr;
#if defined(__AVX512F__)
      for (int64_t v = 0; v < vectors; ++v) {
        const int64_t q0 = v * kLanes;
        const float* src = planes + q0;
        __m512 acc[kLanes];
        for (int r = 0; r < kLanes; ++r) acc[r] = _mm512_setzero_ps();
        for (int64_t p = 0; p < k; ++p) {
          const __m512 xv = _mm512_loadu_ps(src + taps[p]);
          const float* wp = wb + p * kLanes;
#pragma GCC unroll 16
          for (int r = 0; r < kLanes; ++r) {
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wp[r]), xv, acc[r]);
          }
        }
        const int64_t len = std::min(kLanes, out_size - q0);
        const __mmask16 mask = static_cast<__mmask16>((1u << len) - 1);
        for (int64_t r = 0; r < rows; ++r) {
          __m512 out = acc[r];
          if (bb != nullptr) out = _mm512_add_ps(out, _mm512_set1_ps(bb[r]));
          if (rb != nullptr) {
            out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mask, rb + r * out_size + q0));
          }
          if (ep.clamp) {
            out = _mm512_min_ps(_mm512_set1_ps(ep.hi), _mm512_max_ps(_mm512_set1_ps(ep.lo), out));
          }
          _mm512_mask_storeu_ps(yb + r * out_size + q0, mask, out);
        }
      }
#else
      // The same computation one output at a time (builds without AVX-512 do not choose this
      // path; it is kept correct for callers that ignore Available()).
      for (int64_t q = 0; q < out_size; ++q) {
        for (int64_t r = 0; r < rows; ++r) {
          float acc = 0;
          for (int64_t p = 0; p < k; ++p) acc += wb[p * kLanes + r] * planes[q + taps[p]];
          if (bb != nullptr) acc += bb[r];
          if (rb != nullptr) acc += rb[r * out_size + q];
          if (ep.clamp) acc = std::min(ep.hi, std::max(ep.lo, acc));
          yb[r * out_size + q] = acc;
        }
      }
#endif
    }
  });
}

}  // namespace inferd::models::cpu
