// Winograd convolution for small feature maps (fewer than 32 tiles of 2x2 outputs: the digits
// model's 8x8, up to 11x11) with few channels (C x M up to 4096), where WinogradConv's tiles are
// too few to fill its vectors. Here vector lanes run over channels instead of tiles: each image
// is copied into a zero-bordered channels-last buffer, every input tile is transformed with
// lanes over input channels, the transform-domain products are fully connected layers over
// all tiles of a group of images (SmallRowsGemm: tiles as rows, output channels as columns,
// weights transformed and laid out once at load), and the output transform, again with lanes
// over output channels, writes tiles that are stored into NCHW with bias, residual and
// activation. Tiles are F(4x4, 3x3) (36 multiplies per 16 outputs: a quarter of direct
// convolution's) where that takes fewer multiplies than F(2x2, 3x3) (16 per 4) counting the
// outputs partial tiles waste, as on 8x8 maps. On a core whose FMA throughput bounds the direct
// kernel the time follows the multiplies. Immutable after construction; Run() is thread-safe.
#ifndef INFERD_MODELS_CPU_WINOGRAD_SMALL_H_
#define INFERD_MODELS_CPU_WINOGRAD_SMALL_H_

#include <cstdint>
#include <vector>

#include "models/cpu/sgemm.h"
#include "models/cpu/small_rows_gemm.h"
#include "models/cpu/window.h"
#include "models/tensor.h"
#include "models/thread_pool.h"

namespace inferd::models::cpu {

class SmallWinograd {
 public:
  // Whether weights `w` ([M, C, KH, KW]) are worth preparing for a layer whose output is
  // out_h x out_w (`out_known`; else its size is known only at run time): 3x3 weights, enough
  // input channels for the channel-vector transforms to pay, transformed weights that stay in
  // L2, and vector registers in this build.
  static bool WorthPreparing(const Tensor& w, bool out_known, int64_t out_h, int64_t out_w);
  // True for 3x3, stride-1, undilated 2-D windows over these weights' input channels whose
  // output is too small for WinogradConv.
  bool Applies(const WindowGeometry& g, int64_t channels) const;

  // `w`: [M, C, 3, 3] float32, group 1, for an out_h x out_w output (`out_known`; else both
  // tile sizes are prepared).
  SmallWinograd(const Tensor& w, bool out_known, int64_t out_h, int64_t out_w);

  // Whether an out_h x out_w output takes F(4x4, 3x3) (else F(2x2, 3x3)).
  static bool UsesFourByFour(int64_t out_h, int64_t out_w);

  // y[N, M, OH, OW] = epilogue(conv(x)); `ep.residual`, when set, has y's layout.
  void Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g, const GemmEpilogue& ep,
           Tensor* y) const;

 private:
  int64_t m_ = 0, c_ = 0;
  // Per transform point, G g G^T as a [C, M] operand: F(2x2, 3x3)'s 16, F(4x4, 3x3)'s 36.
  std::vector<KMajorMatrix> u2_, u4_;
};

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_WINOGRAD_SMALL_H_
