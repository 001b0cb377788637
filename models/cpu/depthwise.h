// Depthwise 2-D convolution (one filter per channel) for float32 NCHW, any kernel size,
// stride, dilation and padding. Thread-safe; parallel over (image, channel) planes.
#ifndef INFERD_MODELS_CPU_DEPTHWISE_H_
#define INFERD_MODELS_CPU_DEPTHWISE_H_

#include "models/cpu/window.h"
#include "models/thread_pool.h"

namespace inferd::models::cpu {

// y[n, c] = x[n, c] (*) w[c] + bias[c], clamped to [lo, hi] when `clamp`. `g` must have at
// most two spatial dims. w: [C, 1, KH, KW].
void DepthwiseConv2d(ThreadPool& pool, const float* x, const float* w, const float* bias,
                     const WindowGeometry& g, int64_t n, int64_t c, bool clamp, float lo, float hi,
                     float* y);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_DEPTHWISE_H_
