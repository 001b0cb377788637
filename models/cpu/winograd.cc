#include "models/cpu/winograd.h"

#include <algorithm>
#include <cstring>

#include "models/cpu/simd.h"

namespace inferd::models::cpu {
namespace {

constexpr int kPoints = 16;          // 4x4 transform points
constexpr int64_t kLanes = 16;       // tiles transformed together
constexpr int64_t kMinTiles = 32;    // per image, for Applies()
constexpr int64_t kTaskTiles = 256;  // target GEMM width per task

// 16 floats as one value; GCC lowers the arithmetic to one AVX-512 register (or two AVX2).
typedef float V16 __attribute__((vector_size(64)));

inline V16 Load(const float* p) {
  V16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, V16 v, int64_t lanes) { std::memcpy(p, &v, lanes * sizeof(float)); }

// Writes lanes [0, lanes) of `v` to packed-panel positions idx0 .. idx0 + lanes - 1 of one
// channel row (`base` is that row in panel 0; panels are `stride` floats apart).
inline void StorePanels(float* base, int64_t stride, int64_t idx0, V16 v, int64_t lanes) {
  using S = simd::Isa;
  if constexpr (S::kLanes == kLanes && kGemmNr >= kLanes) {
    // One register; a run of 16 crosses at most one panel boundary.
    const int64_t first = std::min(lanes, kGemmNr - idx0 % kGemmNr);
    S::V x;
    std::memcpy(&x, &v, sizeof(x));
    S::StoreFirst(base + (idx0 / kGemmNr) * stride + idx0 % kGemmNr, static_cast<int>(first), x);
    if (first < lanes) {
      // Lanes [first, lanes) start the next panel's row: stored shifted back by `first`.
      float* p1 = base + (idx0 / kGemmNr + 1) * stride - first;
      S::StoreRange(p1, static_cast<int>(first), static_cast<int>(lanes), x);
    }
    return;
  }
  float out[kLanes];
  Store(out, v, kLanes);
  for (int64_t i = 0; i < lanes;) {
    const int64_t idx = idx0 + i;
    const int64_t run = std::min(lanes - i, kGemmNr - idx % kGemmNr);
    std::memcpy(base + (idx / kGemmNr) * stride + idx % kGemmNr, out + i, run * sizeof(float));
    i += run;
  }
}

// G (4x3) for F(2, 3).
constexpr float kG[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};

}  // namespace

bool WinogradConv::EnoughTiles(int64_t out_h, int64_t out_w) {
  return ((out_h + 1) / 2) * ((out_w + 1) / 2) >= kMinTiles;
}

bool WinogradConv::Applies(const WindowGeometry& g) {
  return g.spatial == 2 && g.kernel[1] == 3 && g.kernel[2] == 3 && g.stride[1] == 1 &&
         g.stride[2] == 1 && g.dilation[1] == 1 && g.dilation[2] == 1 &&
         EnoughTiles(g.out[1], g.out[2]);
}

void WinogradWeightTile(const float* g, float* u) {
  float gg[4][3];
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 3; ++j) {
      gg[i][j] = kG[i][0] * g[j] + kG[i][1] * g[3 + j] + kG[i][2] * g[6 + j];
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      u[i * 4 + j] = gg[i][0] * kG[j][0] + gg[i][1] * kG[j][1] + gg[i][2] * kG[j][2];
    }
  }
}

void WinogradWeightTile6(const float* g, float* u) {
  // G (6x3) for F(4, 3) with interpolation points 0, 1, -1, 2, -2 and infinity.
  static constexpr double kG6[6][3] = {{1.0 / 4, 0, 0},
                                       {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                       {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                       {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                       {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                       {0, 0, 1}};
  double gg[6][3];  // G g, in double: the weights are transformed once
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 3; ++j) {
      gg[i][j] = kG6[i][0] * g[j] + kG6[i][1] * g[3 + j] + kG6[i][2] * g[6 + j];
    }
  }
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) {
      u[i * 6 + j] = static_cast<float>(gg[i][0] * kG6[j][0] + gg[i][1] * kG6[j][1] +
                                        gg[i][2] * kG6[j][2]);
    }
  }
}

WinogradConv::WinogradConv(const Tensor& w) : m_(w.dim(0)), c_(w.dim(1)) {
  // u[point][m][c] = (G g G^T)[point].
  std::vector<float> u(static_cast<size_t>(kPoints) * m_ * c_);
  const float* wd = w.data<float>();
  for (int64_t m = 0; m < m_; ++m) {
    for (int64_t c = 0; c < c_; ++c) {
      float tile[kPoints];
      WinogradWeightTile(wd + (m * c_ + c) * 9, tile);
      for (int p = 0; p < kPoints; ++p) u[(static_cast<size_t>(p) * m_ + m) * c_ + c] = tile[p];
    }
  }
  for (int p = 0; p < kPoints; ++p) u_.emplace_back(u.data() + p * m_ * c_, c_, m_, c_);
}

void WinogradConv::Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g,
                       const GemmEpilogue& ep, Tensor* y) const {
  const int64_t n = x.dim(0), c = c_, m = m_;
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
  const int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2;
  // Tasks: (image, band of tile rows); bands hold about kTaskTiles tiles.
  // With fewer tasks than threads, output channels are split instead (each split repeats the
  // cheap input transform but keeps its GEMMs wide).
  const int64_t band_rows = std::clamp<int64_t>(kTaskTiles / tw, 1, th);
  const int64_t bands = (th + band_rows - 1) / band_rows;
  const int64_t panels = u_[0].panels();
  int64_t splits = 1;
  if (n * bands < pool.num_threads()) {
    splits = std::min<int64_t>(panels, (pool.num_threads() + n * bands - 1) / (n * bands));
  }
  // Row buffers: each input row of a tile band, zero-padded and split into even and odd
  // columns so tile t's four columns are even[t], odd[t], even[t + 1], odd[t + 1].
  const int64_t half = (tw + kLanes) / kLanes * kLanes + 1;
  const float* xd = x.data<float>();
  float* yd = y->data<float>();
  pool.ParallelTasks(n * bands * splits, [&](int64_t task) {
    const int64_t split = task % splits;
    const int64_t img = task / splits / bands, band = task / splits % bands;
    const int64_t tr0 = th * band / bands, tr1 = th * (band + 1) / bands;
    const int64_t tiles = (tr1 - tr0) * tw;
    if (tiles == 0) return;
    const int64_t bsize = PackedBSize(c, tiles);
    float* v = ThreadScratch(0, kPoints * bsize);
    float* rows = ThreadScratch(1, 4 * 2 * half);
    // Input transform, channel by channel, 16 tiles of a tile row at a time.
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* plane = xd + (img * c + ch) * ih * iw;
      for (int64_t tr = tr0; tr < tr1; ++tr) {
        for (int r = 0; r < 4; ++r) {
          float* even = rows + r * 2 * half;
          float* odd = even + half;
          const int64_t src_row = 2 * tr + r - g.pad_begin[1];
          if (src_row < 0 || src_row >= ih) {
            std::memset(even, 0, 2 * half * sizeof(float));
            continue;
          }
          SplitPaddedRow(plane + src_row * iw, iw, g.pad_begin[2], half, even, odd);
        }
        for (int64_t t = 0; t < tw; t += kLanes) {
          const int64_t lanes = std::min(kLanes, tw - t);
          V16 d[4][4];
          for (int r = 0; r < 4; ++r) {
            const float* even = rows + r * 2 * half + t;
            const float* odd = even + half;
            d[r][0] = Load(even);
            d[r][1] = Load(odd);
            d[r][2] = Load(even + 1);
            d[r][3] = Load(odd + 1);
          }
          V16 tile[kPoints];
          WinogradInputTile(d, tile);
          const int64_t tt = (tr - tr0) * tw + t;  // task-local index of the first tile
          for (int p = 0; p < kPoints; ++p) {
            StorePanels(v + p * bsize + ch * kGemmNr, c * kGemmNr, tt, tile[p], lanes);
          }
        }
      }
    }
    // Padding columns of a partial last panel must be zeros.
    if (tiles % kGemmNr != 0) {
      const int64_t last = tiles / kGemmNr, used = tiles % kGemmNr;
      for (int p = 0; p < kPoints; ++p) {
        float* panel = v + p * bsize + last * c * kGemmNr;
        for (int64_t ch = 0; ch < c; ++ch) {
          std::memset(panel + ch * kGemmNr + used, 0, (kGemmNr - used) * sizeof(float));
        }
      }
    }
    // Transform-domain products: prod[point][m][tile].
    const int64_t panel0 = panels * split / splits, panel1 = panels * (split + 1) / splits;
    const int64_t m0 = panel0 * kGemmMr, m1 = std::min(m, panel1 * kGemmMr);
    // kLanes of slack: the output transform loads whole 16-tile groups; lanes past the last
    // tile are computed but never stored.
    float* prod = ThreadScratch(4, kPoints * m * tiles + kLanes);
    for (int p = 0; p < kPoints; ++p) {
      SgemmPacked(u_[p], panel0, panel1, tiles, v + p * bsize, prod + p * m * tiles, tiles);
    }
    // Output transform, 16 tiles at a time, then bias, residual and activation per row.
    float row_out[2][2 * kLanes];
    for (int64_t mo = m0; mo < m1; ++mo) {
      const float bias = ep.bias ? ep.bias[mo] : 0.0f;
      float* plane = yd + (img * m + mo) * oh * ow;
      const float* res = ep.residual ? ep.residual + (img * m + mo) * oh * ow : nullptr;
      for (int64_t tr = tr0; tr < tr1; ++tr) {
        for (int64_t t = 0; t < tw; t += kLanes) {
          const int64_t lanes = std::min(kLanes, tw - t);
          const int64_t tt = (tr - tr0) * tw + t;
          V16 q[16];
          for (int p = 0; p < kPoints; ++p) q[p] = Load(prod + (p * m + mo) * tiles + tt);
          V16 out[2][2];
          WinogradOutputTile(q, out);
          for (int r = 0; r < 2; ++r) {
            const int64_t orow = 2 * tr + r;
            if (orow >= oh) break;
            float e[kLanes], o[kLanes];
            Store(e, out[r][0], kLanes);
            Store(o, out[r][1], kLanes);
            for (int64_t l = 0; l < kLanes; ++l) {
              row_out[r][2 * l] = e[l];
              row_out[r][2 * l + 1] = o[l];
            }
            const int64_t col0 = 2 * t;
            const int64_t count = std::min(2 * lanes, ow - col0);
            float* dst = plane + orow * ow + col0;
            const float* rr = res ? res + orow * ow + col0 : nullptr;
            for (int64_t k = 0; k < count; ++k) {
              float val = row_out[r][k] + bias;
              if (rr) val += rr[k];
              dst[k] = ep.clamp ? std::min(ep.hi, std::max(ep.lo, val)) : val;
            }
          }
        }
      }
    }
  });
}

}  // namespace inferd::models::cpu
