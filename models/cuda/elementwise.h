// Element-wise device work, launched on a stream (elementwise.cu): activations, broadcasting
// arithmetic, casts, per-channel affine maps (BatchNormalization), the convolution epilogue and
// fills from host values. Float work runs on float32 or float16 storage, computing in float32.
// Each function only enqueues; errors are launch errors.
#ifndef INFERD_MODELS_CUDA_ELEMENTWISE_H_
#define INFERD_MODELS_CUDA_ELEMENTWISE_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "models/dtype.h"

namespace inferd::models::cuda {

enum class UnaryOp { kRelu, kLeakyRelu, kClip, kSigmoid, kTanh, kHardSigmoid, kHardSwish };

// y = op(x) over n elements; alpha/beta: LeakyRelu's alpha, Clip's [alpha, beta],
// HardSigmoid's alpha and beta. `dtype` is float32 or float16.
absl::Status LaunchUnary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, float alpha,
                         float beta, cudaStream_t stream);

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

// y = clip(a op b, lo, hi) with numpy broadcasting: `out` is the output shape, `a_shape` and
// `b_shape` the operands' (right-aligned, rank <= 8). lo = -inf and hi = +inf: no clipping (NaN
// stays NaN). Integer types (int32, int64) clip to the bounds rounded inward; integer division
// truncates and a zero divisor yields 0.
absl::Status LaunchBinary(BinaryOp op, DType dtype, const void* a,
                          absl::Span<const int64_t> a_shape, const void* b,
                          absl::Span<const int64_t> b_shape, void* y, absl::Span<const int64_t> out,
                          float lo, float hi, cudaStream_t stream);

// y = (to)x for n elements, between float32, float16, float64, int8, uint8, int32, int64, bool.
absl::Status LaunchCast(DType from, DType to, const void* x, void* y, int64_t n,
                        cudaStream_t stream);

// In place over y [batch, channels, spatial]: y = clip(y + bias[c] + residual, lo, hi);
// bias and residual may be null.
absl::Status LaunchConvEpilogue(DType dtype, void* y, const void* bias, const void* residual,
                                int64_t batch, int64_t channels, int64_t spatial, float lo,
                                float hi, cudaStream_t stream);

// y[n,c,s] = x[n,c,s] * scale[c] + shift[c]; scale and shift are float32 device arrays.
absl::Status LaunchChannelAffine(DType dtype, const void* x, void* y, const float* scale,
                                 const float* shift, int64_t batch, int64_t channels,
                                 int64_t spatial, cudaStream_t stream);

// Writes `values` (at most 8) into an int64 or int32 device array, without a host copy (the
// values travel as kernel arguments, so this can be captured into a CUDA graph).
absl::Status LaunchFillInts(absl::Span<const int64_t> values, DType dtype, void* y,
                            cudaStream_t stream);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_ELEMENTWISE_H_
