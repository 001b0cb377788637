// Pooling, reductions and softmax on the device (pool.cu, softmax.cu), for float32/float16
// storage, computing in float32. Only enqueue work on `stream`.
#ifndef INFERD_MODELS_CUDA_POOL_H_
#define INFERD_MODELS_CUDA_POOL_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "models/dtype.h"

namespace inferd::models::cuda {

// A pooling window over 1 to 3 spatial dims of x [batch*channels, spatial...].
struct PoolGeometry {
  int dims = 2;
  int64_t in[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad_begin[3] = {0, 0, 0};
  int64_t pad_end[3] = {0, 0, 0};
};

enum class PoolKind { kMax, kAverage };
// `count_include_pad`: averages divide by the whole window (pads included, but not the part
// past the end that ceil_mode adds); else by the window's overlap with the input.
absl::Status LaunchPool(PoolKind kind, DType dtype, const void* x, void* y, int64_t planes,
                        const PoolGeometry& g, bool count_include_pad, cudaStream_t stream);

// y[o, i] = reduce over r of x[o, r, i] (x viewed as [outer, reduce, inner]); mean or max.
absl::Status LaunchReduce(bool mean, DType dtype, const void* x, void* y, int64_t outer,
                          int64_t reduce, int64_t inner, cudaStream_t stream);

// Softmax (or log-softmax) along the middle dim of x viewed as [outer, axis, inner].
absl::Status LaunchSoftmax(bool log, DType dtype, const void* x, void* y, int64_t outer,
                           int64_t axis, int64_t inner, cudaStream_t stream);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_POOL_H_
