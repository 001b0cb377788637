#include "models/cpu/direct_conv.h"

#include <algorithm>
#include <cstring>

#include "absl/container/inlined_vector.h"
#include "models/cpu/simd.h"

namespace inferd::models::cpu {
namespace {

using S = simd::Isa;
// Output positions per vector.
constexpr int64_t kLanes = S::kLanes;
// A register tile is kBlock output channels x up to kVectors vectors of output positions: with
// AVX-512's 32 registers 16 x 1 (each tap: one input vector, 16 broadcast weights, 16 FMAs);
// with AVX2's 16, 4 x 3 (3 input vectors, 4 weights, 12 FMAs).
constexpr int kBlock = S::kRegisters >= 32 ? 16 : 4;
constexpr int kVectors = S::kRegisters >= 32 ? 1 : 3;

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
  for (int64_t j = 0; j < n; j += kLanes) {
    const int64_t len = std::min(kLanes, n - j);
    const int64_t a = std::clamp<int64_t>(lo - j, 0, len), b = std::clamp<int64_t>(hi - j, a, len);
    S::StoreFirst(dst + j, static_cast<int>(len),
                  S::LoadRange(src + j, static_cast<int>(a), static_cast<int>(b)));
  }
}

// Rows [r0, r1) of one shifted plane (rows of n floats): row r is ShiftedRow of the source row
// src + (r - r0) * src_stride.
inline void ShiftedRows(float* plane, const float* src, int64_t src_stride, int64_t r0,
                        int64_t r1, int64_t lo, int64_t hi, int64_t n) {
  for (int64_t r = r0; r < r1; ++r, src += src_stride) ShiftedRow(plane + r * n, src, lo, hi, n);
}

// The epilogue's view of one block of output channels.
struct BlockOut {
  float* y;              // the block's first channel, at position 0
  const float* residual;  // the same in ep.residual, or null
  const float* bias;     // the block's first bias, or null
  int rows;              // channels in the block (up to kBlock)
};

// Output positions [q0, q0 + V * kLanes) (clipped to out_size) of one block of channels:
// `planes` are the image's shifted planes, `wb` the block's packed weights.
template <int V>
void Tile(const float* planes, const int32_t* taps, int64_t k, const float* wb, int64_t q0,
          int64_t out_size, const GemmEpilogue& ep, const BlockOut& out) {
  S::V acc[V][kBlock];
  for (int u = 0; u < V; ++u) {
    for (int r = 0; r < kBlock; ++r) acc[u][r] = S::Zero();
  }
  const float* src = planes + q0;
  for (int64_t p = 0; p < k; ++p) {
    S::V xv[V];
    for (int u = 0; u < V; ++u) xv[u] = S::Load(src + taps[p] + u * kLanes);
    const float* wp = wb + p * kBlock;
#pragma GCC unroll 16
    for (int r = 0; r < kBlock; ++r) {
      const S::V w = S::Set1(wp[r]);
      for (int u = 0; u < V; ++u) acc[u][r] = S::Fma(w, xv[u], acc[u][r]);
    }
  }
  for (int u = 0; u < V; ++u) {
    const int64_t q = q0 + u * kLanes;
    const int len = static_cast<int>(std::min(kLanes, out_size - q));
    for (int r = 0; r < out.rows; ++r) {
      S::V v = acc[u][r];
      if (out.bias != nullptr) v = S::Add(v, S::Set1(out.bias[r]));
      if (out.residual != nullptr) {
        v = S::Add(v, S::LoadFirst(out.residual + r * out_size + q, len));
      }
      if (ep.clamp) v = S::Min(S::Set1(ep.hi), S::Max(S::Set1(ep.lo), v));
      S::StoreFirst(out.y + r * out_size + q, len, v);
    }
  }
}

// Tile<V> for the V = `vectors` (1 to kVectors) left at the end of a block's positions.
template <int V = 1>
void LastTile(int vectors, const float* planes, const int32_t* taps, int64_t k, const float* wb,
              int64_t q0, int64_t out_size, const GemmEpilogue& ep, const BlockOut& out) {
  if constexpr (V < kVectors) {
    if (vectors > V) {
      return LastTile<V + 1>(vectors, planes, taps, k, wb, q0, out_size, ep, out);
    }
  }
  Tile<V>(planes, taps, k, wb, q0, out_size, ep, out);
}

bool SmallOutput(int64_t out_h, int64_t out_w) {
  return out_h > 0 && out_w > 0 && out_h * out_w <= kMaxOutputPositions;
}

}  // namespace

bool DirectConv2d::Available() { return simd::kVectorKernels; }

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
  const int64_t blocks = (m_ + kBlock - 1) / kBlock;
  packed_.assign(blocks * k * kBlock, 0.0f);
  const float* src = w.data<float>();
  for (int64_t o = 0; o < m_; ++o) {
    float* dst = packed_.data() + (o / kBlock) * k * kBlock + o % kBlock;
    for (int64_t p = 0; p < k; ++p) dst[p * kBlock] = src[o * k + p];
  }
}

void DirectConv2d::Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g,
                       const GemmEpilogue& ep, Tensor* y) const {
  const int64_t n = x.dim(0);
  const Planes pl = MakePlanes(g, c_);
  const int64_t k = c_ * kh_ * kw_;
  const int64_t in_h = g.in[1], in_w = g.in[2], out_w = g.out[2], out_size = g.out_size();
  const int64_t vectors = (out_size + kLanes - 1) / kLanes;
  const int64_t blocks = (m_ + kBlock - 1) / kBlock;
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

  // One task per image, or, when there are fewer images than threads, per (image, group of
  // channel blocks), with enough groups for every thread (each builds the image's planes).
  const int64_t threads = pool.num_threads();
  const int64_t splits = n >= threads ? 1 : std::min(blocks, (threads + n - 1) / n);
  const float* xd = x.data<float>();
  float* yd = y->data<float>();
  pool.ParallelTasks(n * splits, [&](int64_t t) {
    const int64_t img = t / splits;
    const int64_t b0 = blocks * (t % splits) / splits, b1 = blocks * (t % splits + 1) / splits;
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
      const float* wb = packed_.data() + blk * k * kBlock;
      const int64_t offset = (img * m_ + blk * kBlock) * out_size;
      const BlockOut out{yd + offset, ep.residual ? ep.residual + offset : nullptr,
                         ep.bias ? ep.bias + blk * kBlock : nullptr,
                         static_cast<int>(std::min<int64_t>(kBlock, m_ - blk * kBlock))};
      int64_t v = 0;
      for (; v + kVectors <= vectors; v += kVectors) {
        Tile<kVectors>(planes, taps.data(), k, wb, v * kLanes, out_size, ep, out);
      }
      if (v < vectors) {
        LastTile(static_cast<int>(vectors - v), planes, taps.data(), k, wb, v * kLanes, out_size,
                 ep, out);
      }
    }
  });
}

}  // namespace inferd::models::cpu
