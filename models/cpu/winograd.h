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
