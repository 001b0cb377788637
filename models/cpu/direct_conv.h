// Direct convolution for small 2-D, stride-1 float32 feature maps (the digits model's 8x8, a
// CNN's last stages), without im2col. Each input channel is copied into one zero-bordered plane
// per kernel column, shifted by that column and as wide as the output, so that the input a
// kernel tap reads for one vector of consecutive output positions is that many consecutive
// floats: each tap is an unaligned vector load per vector of positions, multiplied into a
// block of output channels at once (weights broadcast from a layout packed at load; register
// tiles of 16 channels x 16 positions with AVX-512, 4 x 24 with AVX2), and the results are
// stored straight into NCHW. The copies (channels x kernel width x rows x output width floats)
// replace the im2col matrix (channels x kernel size x outputs), which on such maps cost about
// as much as the GEMM itself. Needs vector registers to pay; Available() says whether this
// build has them (simd.h). Immutable after construction; Run() is thread-safe.
#ifndef INFERD_MODELS_CPU_DIRECT_CONV_H_
#define INFERD_MODELS_CPU_DIRECT_CONV_H_

#include <cstdint>
#include <vector>

#include "models/cpu/sgemm.h"
#include "models/cpu/window.h"
#include "models/tensor.h"
#include "models/thread_pool.h"

namespace inferd::models::cpu {

class DirectConv2d {
 public:
  static bool Available();
  // Whether to pack weights `w` ([M, C, KH, KW]) at load for a layer whose output is out_h x
  // out_w (`out_known`), or of a size known only at run time (then only small weights are).
  static bool WorthPreparing(const Tensor& w, bool out_known, int64_t out_h, int64_t out_w);
  // True for 2-D, stride-1 windows of these weights' kernel (dilations and pads of any size)
  // over `channels` input channels (the weights'), with a small output whose shifted input
  // planes stay in cache.
  bool Applies(const WindowGeometry& g, int64_t channels) const;

  // `w`: [M, C, KH, KW] float32, group 1.
  explicit DirectConv2d(const Tensor& w);

  // y[N, M, OH, OW] = epilogue(conv(x)); `ep.residual`, when set, has y's layout.
  void Run(ThreadPool& pool, const Tensor& x, const WindowGeometry& g, const GemmEpilogue& ep,
           Tensor* y) const;

 private:
  int64_t m_ = 0, c_ = 0, kh_ = 0, kw_ = 0;
  std::vector<float> packed_;  // ceil(M/B) blocks of [C*KH*KW][B] weights (B channels a
                               // register tile), zero-padded
};

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_DIRECT_CONV_H_
