// Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated, ungrouped float32 Conv with
// constant weights: 4x4 input tiles are transformed (vectorised across 16 tiles), multiplied
// in the transform domain by 16 packed GEMMs over input channels, and transformed back into
// 2x2 output tiles: 16 multiplies per 4 outputs instead of 36, with small, well-conditioned
// transforms (errors stay at float rounding level). Weights are transformed and packed once,
// at load. Immutable after construction; Run() is thread-safe.
#ifndef INFERD_MODELS_CPU_WINOGRAD_H_
#define INFERD_MODELS_CPU_WINOGRAD_H_

#include <vector>

#include "models/cpu/sgemm.h"
#include "models/cpu/window.h"
#include "models/tensor.h"
#include "models/thread_pool.h"

namespace inferd::models::cpu {

// The F(2x2, 3x3) weight transform: u[4 * i + j] = (G g G^T)[i][j] for one 3x3 kernel g
// (row-major), the 16 transform points' weights.
void WinogradWeightTile(const float* g, float* u);

// The input transform of a 4x4 tile d (d[r][s]: row r, column s): t[4 * i + j] = (B^T d B)[i][j].
// V is float or a vector of floats (GCC vector types, __m256, __m512), transformed lane by lane.
template <typename V>
inline void WinogradInputTile(const V (&d)[4][4], V (&t)[16]) {
  V h[4][4];  // d B
  for (int r = 0; r < 4; ++r) {
    h[r][0] = d[r][0] - d[r][2];
    h[r][1] = d[r][1] + d[r][2];
    h[r][2] = d[r][2] - d[r][1];
    h[r][3] = d[r][1] - d[r][3];
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = h[0][j] - h[2][j];
    t[4 + j] = h[1][j] + h[2][j];
    t[8 + j] = h[2][j] - h[1][j];
    t[12 + j] = h[1][j] - h[3][j];
  }
}

// The output transform of the 16 products q of one tile: out[a][b] = (A^T q A)[a][b], the
// tile's 2x2 outputs.
template <typename V>
inline void WinogradOutputTile(const V (&q)[16], V (&out)[2][2]) {
  V s[4][2];  // q A
  for (int i = 0; i < 4; ++i) {
    s[i][0] = q[i * 4] + q[i * 4 + 1] + q[i * 4 + 2];
    s[i][1] = q[i * 4 + 1] - q[i * 4 + 2] - q[i * 4 + 3];
  }
  for (int b = 0; b < 2; ++b) {
    out[0][b] = s[0][b] + s[1][b] + s[2][b];
    out[1][b] = s[1][b] - s[2][b] - s[3][b];
  }
}

// F(4x4, 3x3), for SmallWinograd: 6x6 input tiles, 36 transform points, 2.25 multiplies per
// output instead of F(2x2, 3x3)'s 4 and direct convolution's 9, with transforms that scale by
// up to 8 (errors about ten times F(2x2, 3x3)'s, still near float rounding for 3x3 kernels).
void WinogradWeightTile6(const float* g, float* u);  // u[6 * i + j] = (G g G^T)[i][j]

// t = B^T d for one row or column of 6 (d's elements need not be contiguous: `step` apart).
template <typename V>
inline void WinogradInput6(const V* d, int step, V (&t)[6]) {
  const V d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step],
          d5 = d[5 * step];
  t[0] = (d4 - d2) + (d0 - d2) * 4.0f;
  t[1] = (d3 + d4) - (d1 + d2) * 4.0f;
  t[2] = (d4 - d3) + (d1 - d2) * 4.0f;
  t[3] = (d4 - d2) - (d1 - d3) * 2.0f;
  t[4] = (d4 - d2) + (d1 - d3) * 2.0f;
  t[5] = (d5 - d3) + (d1 - d3) * 4.0f;
}

// o = A^T q for one row or column of 6 products (`step` apart): 4 outputs.
template <typename V>
inline void WinogradOutput6(const V* q, int step, V (&o)[4]) {
  const V s12 = q[step] + q[2 * step], d12 = q[step] - q[2 * step];
  const V s34 = q[3 * step] + q[4 * step], d34 = q[3 * step] - q[4 * step];
  o[0] = q[0] + s12 + s34;
  o[1] = d12 + d34 * 2.0f;
  o[2] = s12 + s34 * 4.0f;
  o[3] = (d12 + q[5 * step]) + d34 * 8.0f;
}

class WinogradConv {
 public:
  // True for 3x3, stride-1, undilated 2-D windows with enough 2x2 output tiles per image for
  // the transform-domain GEMMs to beat im2col.
  static bool Applies(const WindowGeometry& g);
  // The output-size half of Applies(), for deciding at load whether to prepare the weights.
  static bool EnoughTiles(int64_t out_h, int64_t out_w);

  // `w`: [M, C, 3, 3] float32.
  explicit WinogradConv(const Tensor& w);

  // y[N, M, OH, OW] = epilogue(conv(x)); `ep.residual`, when set, has y's layout.
  void Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g, const GemmEpilogue& ep,
           Tensor* y) const;

 private:
  int64_t m_ = 0, c_ = 0;
  std::vector<PackedA> u_;  // 16 transformed weight matrices [M, C]
};

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_WINOGRAD_H_
