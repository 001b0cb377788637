#include "models/cpu/winograd_small.h"

#include <algorithm>
#include <cstring>

#include "models/cpu/simd.h"
#include "models/cpu/winograd.h"

namespace inferd::models::cpu {
namespace {

using S = simd::Isa;
constexpr int64_t kLanes = S::kLanes;
constexpr int kPoints = 16;  // 4x4 transform points

// Fewer input channels than a vector's worth leave the transforms' lanes mostly empty (and the
// products too short to pay for them): the direct kernel is as fast there.
constexpr int64_t kMinChannels = 8;
// Transformed weights (16 x C x M floats) are streamed once per 6 tiles: beyond 256 KiB
// (C x M = 4096, 64 channels in and out) they leave L2, and the packed GEMM paths, which read
// the untransformed weights once per block of positions, are faster.
constexpr int64_t kMaxTransformedWeights = 65536;
// Transformed inputs and products (floats) per group of images run together: 256 KiB, within
// L2 next to the weights.
constexpr int64_t kGroupFloats = 65536;

int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Outputs with too few 2x2 tiles for WinogradConv.
bool SmallOutput(int64_t out_h, int64_t out_w) {
  return out_h > 0 && out_w > 0 && !WinogradConv::EnoughTiles(out_h, out_w);
}

}  // namespace

bool SmallWinograd::WorthPreparing(const Tensor& w, bool out_known, int64_t out_h,
                                   int64_t out_w) {
  if (!simd::kVectorKernels || w.rank() != 4 || w.dim(2) != 3 || w.dim(3) != 3 ||
      w.dim(1) < kMinChannels || kPoints * w.dim(0) * w.dim(1) > kMaxTransformedWeights) {
    return false;
  }
  return !out_known || SmallOutput(out_h, out_w);
}

bool SmallWinograd::Applies(const WindowGeometry& g, int64_t channels) const {
  return g.spatial == 2 && channels == c_ && g.kernel[0] == 1 && g.kernel[1] == 3 &&
         g.kernel[2] == 3 && g.stride[1] == 1 && g.stride[2] == 1 && g.dilation[1] == 1 &&
         g.dilation[2] == 1 && SmallOutput(g.out[1], g.out[2]);
}

SmallWinograd::SmallWinograd(const Tensor& w) : m_(w.dim(0)), c_(w.dim(1)) {
  // u[point][c][m] = (G g G^T)[point] for output channel m's kernel over input channel c.
  std::vector<float> u(static_cast<size_t>(kPoints) * c_ * m_);
  const float* wd = w.data<float>();
  for (int64_t m = 0; m < m_; ++m) {
    for (int64_t c = 0; c < c_; ++c) {
      float tile[kPoints];
      WinogradWeightTile(wd + (m * c_ + c) * 9, tile);
      for (int p = 0; p < kPoints; ++p) u[(static_cast<size_t>(p) * c_ + c) * m_ + m] = tile[p];
    }
  }
  u_.reserve(kPoints);
  for (int p = 0; p < kPoints; ++p) {
    u_.emplace_back(u.data() + static_cast<size_t>(p) * c_ * m_, m_, c_, m_, false);
  }
}

void SmallWinograd::Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g,
                        const GemmEpilogue& ep, Tensor* y) const {
  const int64_t n = x.dim(0), c = c_, m = m_;
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
  const int64_t top = g.pad_begin[1], left = g.pad_begin[2];
  const int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2, tiles = th * tw;
  // Channels rounded up to whole vectors; the padding lanes carry zeros (inputs) or are never
  // stored (outputs).
  const int64_t cp = RoundUp(c, kLanes), mp = RoundUp(m, kLanes);
  // The zero-bordered input the tiles read: rows x cols pixels of cp channels.
  const int64_t rows = 2 * th + 2, cols = 2 * tw + 2;
  const int64_t per_image = kPoints * tiles * (cp + mp);
  const int64_t group = std::clamp<int64_t>(kGroupFloats / per_image, 1, n);
  const int64_t groups = (n + group - 1) / group;
  // With fewer groups than threads, output channels are split too (in SmallRowsGemm's column
  // steps); each split transforms the inputs again.
  const int64_t col_steps = (m + KMajorMatrix::kAlign - 1) / KMajorMatrix::kAlign;
  const int64_t threads = pool.num_threads();
  const int64_t splits = groups >= threads ? 1 : std::min(col_steps, (threads + groups - 1) / groups);
  const float* xd = x.data<float>();
  float* yd = y->data<float>();
  pool.ParallelTasks(groups * splits, [&](int64_t task) {
    const int64_t split = task % splits;
    const int64_t i0 = task / splits * group, images = std::min(n, i0 + group) - i0;
    const int64_t m0 = col_steps * split / splits * KMajorMatrix::kAlign;
    const int64_t m1 = std::min(m, col_steps * (split + 1) / splits * KMajorMatrix::kAlign);
    const int64_t rows_all = images * tiles;  // GEMM rows: the group's tiles
    // Scratch slots as the other Conv paths use them (a thread runs one Conv at a time).
    float* v = ThreadScratch(0, kPoints * rows_all * cp);     // [point][tile][cp]
    float* prod = ThreadScratch(4, kPoints * rows_all * mp);  // [point][tile][mp]
    float* padded = ThreadScratch(1, rows * cols * cp);
    float* outputs = ThreadScratch(5, oh * ow * mp);  // [oh][ow][mp], one image

    // Input transform, image by image: the channels-last copy, then each tile with lanes over
    // channels.
    for (int64_t img = 0; img < images; ++img) {
      std::memset(padded, 0, rows * cols * cp * sizeof(float));
      const float* xi = xd + (i0 + img) * c * ih * iw;
      // Input pixels the tiles read: rows [0, in_rows), columns [0, in_cols).
      const int64_t in_rows = std::clamp<int64_t>(rows - top, 0, ih);
      const int64_t in_cols = std::clamp<int64_t>(cols - left, 0, iw);
      for (int64_t r = 0; r < in_rows; ++r) {
        float* dst_row = padded + ((r + top) * cols + left) * cp;
        // Blocks of kLanes channels x kLanes columns, transposed.
        for (int64_t c0 = 0; c0 < c; c0 += kLanes) {
          for (int64_t q0 = 0; q0 < in_cols; q0 += kLanes) {
            const float* src = xi + (c0 * ih + r) * iw + q0;
            float* dst = dst_row + q0 * cp + c0;
            if (c0 + kLanes <= c && q0 + kLanes <= in_cols) {
              S::Transpose(src, ih * iw, dst, cp);
              continue;
            }
            for (int64_t ch = 0; ch < std::min(kLanes, c - c0); ++ch) {
              for (int64_t q = 0; q < std::min(kLanes, in_cols - q0); ++q) {
                dst[q * cp + ch] = src[ch * ih * iw + q];
              }
            }
          }
        }
      }
      for (int64_t t = 0; t < tiles; ++t) {
        const float* base = padded + (2 * (t / tw) * cols + 2 * (t % tw)) * cp;
        float* dst = v + (img * tiles + t) * cp;
        for (int64_t cv = 0; cv < cp; cv += kLanes) {
          S::V d[4][4];
          for (int r = 0; r < 4; ++r) {
            for (int s = 0; s < 4; ++s) d[r][s] = S::Load(base + (r * cols + s) * cp + cv);
          }
          S::V tile[kPoints];
          WinogradInputTile(d, tile);
          for (int p = 0; p < kPoints; ++p) S::Store(dst + p * rows_all * cp + cv, tile[p]);
        }
      }
    }
    // The 16 transform-domain products: [tiles x C] x [C x M] each.
    for (int p = 0; p < kPoints; ++p) {
      SmallRowsGemm(rows_all, m0, m1, 1.0f, v + p * rows_all * cp, cp, u_[p], false,
                    prod + p * rows_all * mp, mp);
    }
    // Output transform with lanes over output channels into a channels-last plane, then blocks
    // of kLanes positions x kLanes channels transposed into NCHW, with the epilogue.
    const int64_t plane_size = oh * ow;
    for (int64_t img = 0; img < images; ++img) {
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t r0 = 2 * (t / tw), q0 = 2 * (t % tw);
        const float* src = prod + (img * tiles + t) * mp;
        for (int64_t mv = m0; mv < m1; mv += kLanes) {
          S::V q[kPoints];
          for (int p = 0; p < kPoints; ++p) q[p] = S::Load(src + p * rows_all * mp + mv);
          S::V out[2][2];
          WinogradOutputTile(q, out);
          for (int a = 0; a < 2 && r0 + a < oh; ++a) {
            for (int b = 0; b < 2 && q0 + b < ow; ++b) {
              S::Store(outputs + ((r0 + a) * ow + q0 + b) * mp + mv, out[a][b]);
            }
          }
        }
      }
      const int64_t offset = (i0 + img) * m * plane_size;
      alignas(64) float block[kLanes * kLanes];
      for (int64_t mb = m0; mb < m1; mb += kLanes) {
        const int64_t channels = std::min(kLanes, m1 - mb);
        for (int64_t p0 = 0; p0 < plane_size; p0 += kLanes) {
          const int64_t len = std::min(kLanes, plane_size - p0);
          const float* src = outputs + p0 * mp + mb;
          if (len == kLanes) {
            S::Transpose(src, mp, block, kLanes);  // padding channels are transposed too
          } else {
            for (int64_t pos = 0; pos < len; ++pos) {
              for (int64_t ch = 0; ch < channels; ++ch) block[ch * kLanes + pos] = src[pos * mp + ch];
            }
          }
          for (int64_t ch = 0; ch < channels; ++ch) {
            const int64_t at = offset + (mb + ch) * plane_size + p0;
            S::V v = S::Load(block + ch * kLanes);
            if (ep.bias != nullptr) v = S::Add(v, S::Set1(ep.bias[mb + ch]));
            if (ep.residual != nullptr) {
              v = S::Add(v, S::LoadFirst(ep.residual + at, static_cast<int>(len)));
            }
            if (ep.clamp) v = S::Min(S::Set1(ep.hi), S::Max(S::Set1(ep.lo), v));
            S::StoreFirst(yd + at, static_cast<int>(len), v);
          }
        }
      }
    }
  });
}

}  // namespace inferd::models::cpu
