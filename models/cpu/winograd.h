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
