// Data movement on the device (layout.cu): transposes, padding, strided slices, gathers and
// resizing, for any element size / the float storage types. Only enqueue work on `stream`.
#ifndef INFERD_MODELS_CUDA_LAYOUT_H_
#define INFERD_MODELS_CUDA_LAYOUT_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "models/dtype.h"

namespace inferd::models::cuda {

// y = transpose(x, perm); `in` is x's shape (rank <= 8), elements of `elem_size` bytes.
absl::Status LaunchTranspose(const void* x, void* y, absl::Span<const int64_t> in,
                             absl::Span<const int64_t> perm, size_t elem_size,
                             cudaStream_t stream);

enum class PadMode { kConstant, kReflect, kEdge };
// y = pad(x): `begin` pads before each dim (may be negative: a crop), `out` is y's shape.
// `value` (constant mode) is given as float and converted to `dtype`.
absl::Status LaunchPad(DType dtype, const void* x, absl::Span<const int64_t> in, void* y,
                       absl::Span<const int64_t> out, absl::Span<const int64_t> begin,
                       PadMode mode, double value, cudaStream_t stream);

// y[i...] = x[start + i * step ...] per dim; `out` is y's shape.
absl::Status LaunchSlice(const void* x, absl::Span<const int64_t> in, void* y,
                         absl::Span<const int64_t> out, absl::Span<const int64_t> start,
                         absl::Span<const int64_t> step, size_t elem_size, cudaStream_t stream);

// Gather along `axis`: x viewed as [outer, axis_dim, inner], indices (int64 or int32, negative
// counted from the end) of count n; y is [outer, n, inner]. Out-of-range indices yield zeros
// (they are checked on the host whenever their values are known there).
absl::Status LaunchGather(const void* x, int64_t outer, int64_t axis_dim, int64_t inner,
                          const void* indices, bool indices_int64, int64_t n, void* y,
                          size_t elem_size, cudaStream_t stream);

enum class ResizeMode { kNearest, kLinear };
enum class CoordinateMode {
  kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
// Resizes the last two dims of an [outer, H, W] tensor to [outer, OH, OW] (2-D resize of NCHW).
// `scale_h/w` are the output/input scale factors used by the coordinate transform.
absl::Status LaunchResize2D(DType dtype, const void* x, int64_t outer, int64_t h, int64_t w,
                            void* y, int64_t oh, int64_t ow, float scale_h, float scale_w,
                            ResizeMode mode, CoordinateMode coord, NearestMode nearest,
                            cudaStream_t stream);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_LAYOUT_H_
