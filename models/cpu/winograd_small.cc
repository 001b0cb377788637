#include "models/cpu/winograd_small.h"

#include <algorithm>
#include <cstring>

#include "models/cpu/simd.h"
#include "models/cpu/winograd.h"

namespace inferd::models::cpu {
namespace {

using S = simd::Isa;
constexpr int64_t kLanes = S::kLanes;

// Fewer input channels than a vector's worth leave the transforms' lanes mostly empty (and the
// products too short to pay for them): the direct kernel is as fast there.
constexpr int64_t kMinChannels = 8;
// Transformed weights (36 x C x M floats for F(4x4, 3x3)) are streamed once per 6 tiles: beyond
// 512 KiB (C x M = 4096, 64 channels in and out) they leave L2, and the packed GEMM paths,
// which read the untransformed weights once per block of positions, are faster.
constexpr int64_t kMaxWeightProduct = 4096;
// Transformed inputs and products (floats) per group of images run together: 256 KiB, within
// L2 next to the weights.
constexpr int64_t kGroupFloats = 65536;

int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Outputs with too few 2x2 tiles for WinogradConv.
bool SmallOutput(int64_t out_h, int64_t out_w) {
  return out_h > 0 && out_w > 0 && !WinogradConv::EnoughTiles(out_h, out_w);
}

// Transform-domain multiplies for an out_h x out_w output with M-output tiles (M = 2 or 4):
// tiles times points.
int64_t Multiplies(int m, int64_t out_h, int64_t out_w) {
  return ((out_h + m - 1) / m) * ((out_w + m - 1) / m) * (m + 2) * (m + 2);
}

// The transforms of F(MxM, 3x3) for M = 2 and 4 on vectors of channels.
template <int M>
struct Tile;

template <>
struct Tile<2> {
  static constexpr int kAlpha = 4;  // input tile side
  // d: the input tile (row r, column s at d[(r * row + s * col)]); t: kAlpha^2 points.
  static void Input(const float* d, int64_t row, int64_t col, S::V* t) {
    S::V in[4][4];
    for (int r = 0; r < 4; ++r) {
      for (int s = 0; s < 4; ++s) in[r][s] = S::Load(d + r * row + s * col);
    }
    S::V out[16];
    WinogradInputTile(in, out);
    for (int p = 0; p < 16; ++p) t[p] = out[p];
  }
  // q: the kAlpha^2 products; o[a][b]: the tile's outputs.
  static void Output(const S::V* q, S::V (&o)[2][2]) {
    S::V in[16];
    for (int p = 0; p < 16; ++p) in[p] = q[p];
    WinogradOutputTile(in, o);
  }
};

template <>
struct Tile<4> {
  static constexpr int kAlpha = 6;
  static void Input(const float* d, int64_t row, int64_t col, S::V* t) {
    S::V h[6][6];  // d B, row by row
    for (int r = 0; r < 6; ++r) {
      S::V in[6];
      for (int s = 0; s < 6; ++s) in[s] = S::Load(d + r * row + s * col);
      WinogradInput6(in, 1, h[r]);
    }
    for (int j = 0; j < 6; ++j) {  // B^T (d B), column by column
      S::V out[6];
      WinogradInput6(&h[0][j], 6, out);
      for (int i = 0; i < 6; ++i) t[i * 6 + j] = out[i];
    }
  }
  static void Output(const S::V* q, S::V (&o)[4][4]) {
    S::V h[6][4];  // q A, row by row
    for (int i = 0; i < 6; ++i) WinogradOutput6(q + i * 6, 1, h[i]);
    for (int b = 0; b < 4; ++b) {  // A^T (q A), column by column
      S::V out[4];
      WinogradOutput6(&h[0][b], 4, out);
      for (int a = 0; a < 4; ++a) o[a][b] = out[a];
    }
  }
};

// Everything Run needs besides the weights: the geometry, the tensors, the epilogue.
struct Job {
  int64_t n, c, m, ih, iw, oh, ow, top, left;
  const float* x;
  float* y;
  const GemmEpilogue* ep;
};

// The convolution of images [i0, i0 + images), output channels [m0, m1), with F(MxM, 3x3):
// channels-last copy, input transform, products, output transform, NCHW store.
template <int M>
void RunGroup(const Job& job, const std::vector<KMajorMatrix>& u, int64_t i0, int64_t images,
              int64_t m0, int64_t m1) {
  using T = Tile<M>;
  constexpr int kAlpha = T::kAlpha, kPoints = kAlpha * kAlpha;
  const int64_t c = job.c, m = job.m, ih = job.ih, iw = job.iw, oh = job.oh, ow = job.ow;
  const int64_t th = (oh + M - 1) / M, tw = (ow + M - 1) / M, tiles = th * tw;
  // Channels rounded up to whole vectors; the padding lanes carry zeros (inputs) or are never
  // stored (outputs).
  const int64_t cp = RoundUp(c, kLanes), mp = RoundUp(m, kLanes);
  // The zero-bordered input the tiles read: rows x cols pixels of cp channels.
  const int64_t rows = M * th + 2, cols = M * tw + 2;
  const int64_t rows_all = images * tiles;  // GEMM rows: the group's tiles
  const int64_t v_point = rows_all * cp, prod_point = rows_all * mp;  // floats per point
  // Scratch slots as the other Conv paths use them (a thread runs one Conv at a time).
  float* v = ThreadScratch(0, kPoints * v_point);         // [point][tile][cp]
  float* prod = ThreadScratch(4, kPoints * prod_point);   // [point][tile][mp]
  float* padded = ThreadScratch(1, rows * cols * cp);
  float* outputs = ThreadScratch(5, oh * ow * mp);  // [oh][ow][mp], one image

  // Input transform, image by image: the channels-last copy, then each tile with lanes over
  // channels.
  const int64_t in_rows = std::clamp<int64_t>(rows - job.top, 0, ih);
  const int64_t in_cols = std::clamp<int64_t>(cols - job.left, 0, iw);
  // Every image overwrites the same pixels and channels: the borders and padding channels
  // stay zero from here.
  std::memset(padded, 0, rows * cols * cp * sizeof(float));
  for (int64_t img = 0; img < images; ++img) {
    const float* xi = job.x + (i0 + img) * c * ih * iw;
    for (int64_t r = 0; r < in_rows; ++r) {
      float* dst_row = padded + ((r + job.top) * cols + job.left) * cp;
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
      const float* base = padded + (M * (t / tw) * cols + M * (t % tw)) * cp;
      float* dst = v + (img * tiles + t) * cp;
      for (int64_t cv = 0; cv < cp; cv += kLanes) {
        S::V point[kPoints];
        T::Input(base + cv, cols * cp, cp, point);
        for (int p = 0; p < kPoints; ++p) S::Store(dst + p * v_point + cv, point[p]);
      }
    }
  }
  // The transform-domain products: [tiles x C] x [C x M] per point.
  for (int p = 0; p < kPoints; ++p) {
    SmallRowsGemm(rows_all, m0, m1, 1.0f, v + p * v_point, cp, u[p], false, prod + p * prod_point,
                  mp);
  }
  // Output transform with lanes over output channels into a channels-last plane, then blocks
  // of kLanes positions x kLanes channels transposed into NCHW, with the epilogue.
  const GemmEpilogue& ep = *job.ep;
  const int64_t plane_size = oh * ow;
  for (int64_t img = 0; img < images; ++img) {
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = M * (t / tw), q0 = M * (t % tw);
      const float* src = prod + (img * tiles + t) * mp;
      for (int64_t mv = m0; mv < m1; mv += kLanes) {
        S::V q[kPoints];
        for (int p = 0; p < kPoints; ++p) q[p] = S::Load(src + p * prod_point + mv);
        S::V out[M][M];
        T::Output(q, out);
        for (int a = 0; a < M && r0 + a < oh; ++a) {
          for (int b = 0; b < M && q0 + b < ow; ++b) {
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
          S::V val = S::Load(block + ch * kLanes);
          if (ep.bias != nullptr) val = S::Add(val, S::Set1(ep.bias[mb + ch]));
          if (ep.residual != nullptr) {
            val = S::Add(val, S::LoadFirst(ep.residual + at, static_cast<int>(len)));
          }
          if (ep.clamp) val = S::Min(S::Set1(ep.hi), S::Max(S::Set1(ep.lo), val));
          S::StoreFirst(job.y + at, static_cast<int>(len), val);
        }
      }
    }
  }
}

// Per-point [C, M] operands of the transformed weights `w` ([M, C, 3, 3]): `transform` maps one
// 3x3 kernel to `points` values.
std::vector<KMajorMatrix> TransformWeights(const Tensor& w, int points,
                                           void (*transform)(const float*, float*)) {
  const int64_t m = w.dim(0), c = w.dim(1);
  std::vector<float> u(static_cast<size_t>(points) * c * m);  // [point][c][m]
  const float* wd = w.data<float>();
  std::vector<float> tile(points);
  for (int64_t o = 0; o < m; ++o) {
    for (int64_t ch = 0; ch < c; ++ch) {
      transform(wd + (o * c + ch) * 9, tile.data());
      for (int p = 0; p < points; ++p) u[(static_cast<size_t>(p) * c + ch) * m + o] = tile[p];
    }
  }
  std::vector<KMajorMatrix> out;
  out.reserve(points);
  for (int p = 0; p < points; ++p) {
    out.emplace_back(u.data() + static_cast<size_t>(p) * c * m, m, c, m, false);
  }
  return out;
}

}  // namespace

bool SmallWinograd::WorthPreparing(const Tensor& w, bool out_known, int64_t out_h,
                                   int64_t out_w) {
  if (!simd::kVectorKernels || w.rank() != 4 || w.dim(2) != 3 || w.dim(3) != 3 ||
      w.dim(1) < kMinChannels || w.dim(0) * w.dim(1) > kMaxWeightProduct) {
    return false;
  }
  return !out_known || SmallOutput(out_h, out_w);
}

bool SmallWinograd::Applies(const WindowGeometry& g, int64_t channels) const {
  return g.spatial == 2 && channels == c_ && g.kernel[0] == 1 && g.kernel[1] == 3 &&
         g.kernel[2] == 3 && g.stride[1] == 1 && g.stride[2] == 1 && g.dilation[1] == 1 &&
         g.dilation[2] == 1 && SmallOutput(g.out[1], g.out[2]);
}

SmallWinograd::SmallWinograd(const Tensor& w, bool out_known, int64_t out_h, int64_t out_w)
    : m_(w.dim(0)), c_(w.dim(1)) {
  // Both tile sizes when the output size is known only at run time.
  const bool four = !out_known || UsesFourByFour(out_h, out_w);
  const bool two = !out_known || !four;
  if (two) u2_ = TransformWeights(w, 16, WinogradWeightTile);
  if (four) u4_ = TransformWeights(w, 36, WinogradWeightTile6);
}

bool SmallWinograd::UsesFourByFour(int64_t out_h, int64_t out_w) {
  // Fewer multiplies, counting the partial tiles' wasted outputs (a tie, as at 6x6, goes to
  // F(2x2, 3x3), whose transforms are cheaper and exact in more of their steps).
  return Multiplies(4, out_h, out_w) < Multiplies(2, out_h, out_w);
}

void SmallWinograd::Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g,
                        const GemmEpilogue& ep, Tensor* y) const {
  const Job job{x.dim(0), c_,       m_,      g.in[1], g.in[2], g.out[1], g.out[2], g.pad_begin[1],
                g.pad_begin[2], x.data<float>(), y->data<float>(), &ep};
  const bool four = u2_.empty() || (!u4_.empty() && UsesFourByFour(job.oh, job.ow));
  const int tile = four ? 4 : 2, points = (tile + 2) * (tile + 2);
  const int64_t tiles = ((job.oh + tile - 1) / tile) * ((job.ow + tile - 1) / tile);
  const int64_t per_image = points * tiles * (RoundUp(c_, kLanes) + RoundUp(m_, kLanes));
  const int64_t group = std::clamp<int64_t>(kGroupFloats / per_image, 1, job.n);
  const int64_t groups = (job.n + group - 1) / group;
  // With fewer groups than threads, output channels are split too (in SmallRowsGemm's column
  // steps); each split transforms the inputs again.
  const int64_t col_steps = (m_ + KMajorMatrix::kAlign - 1) / KMajorMatrix::kAlign;
  const int64_t threads = pool.num_threads();
  const int64_t splits =
      groups >= threads ? 1 : std::min(col_steps, (threads + groups - 1) / groups);
  pool.ParallelTasks(groups * splits, [&](int64_t task) {
    const int64_t split = task % splits;
    const int64_t i0 = task / splits * group, images = std::min(job.n, i0 + group) - i0;
    const int64_t m0 = col_steps * split / splits * KMajorMatrix::kAlign;
    const int64_t m1 = std::min(m_, col_steps * (split + 1) / splits * KMajorMatrix::kAlign);
    if (four) {
      RunGroup<4>(job, u4_, i0, images, m0, m1);
    } else {
      RunGroup<2>(job, u2_, i0, images, m0, m1);
    }
  });
}

}  // namespace inferd::models::cpu
