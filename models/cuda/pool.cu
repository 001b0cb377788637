#include <cuda_fp16.h>

#include <cfloat>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/device_math.cuh"
#include "models/cuda/pool.h"

namespace inferd::models::cuda {
namespace {

template <typename T>
__global__ void PoolKernel(const T* x, T* y, int64_t total, PoolGeometry g, PoolKind kind,
                           bool count_include_pad) {
  INFERD_GRID_STRIDE(i, total) {
    int64_t o[3] = {0, 0, 0};
    int64_t rest = i;
    for (int d = g.dims - 1; d >= 0; --d) {
      o[d] = rest % g.out[d];
      rest /= g.out[d];
    }
    const int64_t plane = rest;
    int64_t plane_size = 1;
    for (int d = 0; d < g.dims; ++d) plane_size *= g.in[d];
    const T* xp = x + plane * plane_size;
    float acc = kind == PoolKind::kMax ? -FLT_MAX : 0.0f;
    int64_t count = 0, window = 1;
    for (int d = 0; d < g.dims; ++d) {
      // The window as far as the pads reach (not the part ceil_mode adds past them).
      const int64_t start = o[d] * g.stride[d] - g.pad_begin[d];
      const int64_t last = start + (g.kernel[d] - 1) * g.dilation[d];
      const int64_t limit = g.in[d] + g.pad_end[d] - 1;
      const int64_t end = last < limit ? last : limit;
      window *= (end - start) / g.dilation[d] + 1;
    }
    const int64_t k1 = g.dims > 1 ? g.kernel[1] : 1, k2 = g.dims > 2 ? g.kernel[2] : 1;
    for (int64_t a = 0; a < g.kernel[0]; ++a) {
      const int64_t p0 = o[0] * g.stride[0] - g.pad_begin[0] + a * g.dilation[0];
      if (p0 < 0 || p0 >= g.in[0]) continue;
      for (int64_t b = 0; b < k1; ++b) {
        const int64_t p1 = g.dims > 1 ? o[1] * g.stride[1] - g.pad_begin[1] + b * g.dilation[1] : 0;
        if (g.dims > 1 && (p1 < 0 || p1 >= g.in[1])) continue;
        for (int64_t c = 0; c < k2; ++c) {
          const int64_t p2 = g.dims > 2 ? o[2] * g.stride[2] - g.pad_begin[2] + c * g.dilation[2] : 0;
          if (g.dims > 2 && (p2 < 0 || p2 >= g.in[2])) continue;
          int64_t at = p0;
          if (g.dims > 1) at = at * g.in[1] + p1;
          if (g.dims > 2) at = at * g.in[2] + p2;
          const float v = ToFloat(xp[at]);
          acc = kind == PoolKind::kMax ? fmaxf(acc, v) : acc + v;
          ++count;
        }
      }
    }
    if (kind == PoolKind::kAverage) {
      const int64_t divisor = count_include_pad ? window : count;
      acc = divisor > 0 ? acc / static_cast<float>(divisor) : 0.0f;
    }
    y[i] = FromFloat<T>(acc);
  }
}

// One block per output element; threads stride over the reduced dim.
template <typename T>
__global__ void ReduceKernel(const T* x, T* y, int64_t reduce, int64_t inner, bool mean) {
  const int64_t out = blockIdx.x;
  const int64_t o = out / inner, e = out % inner;
  const T* base = x + o * reduce * inner + e;
  float acc = mean ? 0.0f : -FLT_MAX;
  for (int64_t r = threadIdx.x; r < reduce; r += blockDim.x) {
    const float v = ToFloat(base[r * inner]);
    acc = mean ? acc + v : fmaxf(acc, v);
  }
  __shared__ float partial[kThreads];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      partial[threadIdx.x] = mean ? partial[threadIdx.x] + partial[threadIdx.x + s]
                                  : fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    y[out] = FromFloat<T>(mean ? partial[0] / static_cast<float>(reduce) : partial[0]);
  }
}

}  // namespace

absl::Status LaunchPool(PoolKind kind, DType dtype, const void* x, void* y, int64_t planes,
                        const PoolGeometry& g, bool count_include_pad, cudaStream_t stream) {
  int64_t total = planes;
  for (int d = 0; d < g.dims; ++d) total *= g.out[d];
  if (total == 0) return absl::OkStatus();
  return ForFloatType(dtype, "pooling", [&](auto tag) {
    using T = decltype(tag);
    PoolKernel<<<Blocks(total), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                       static_cast<T*>(y), total, g, kind,
                                                       count_include_pad);
  });
}

absl::Status LaunchReduce(bool mean, DType dtype, const void* x, void* y, int64_t outer,
                          int64_t reduce, int64_t inner, cudaStream_t stream) {
  const int64_t total = outer * inner;
  if (total == 0) return absl::OkStatus();
  if (total > 0x7fffffff) return absl::UnimplementedError("reduction output too large");
  const unsigned int blocks = static_cast<unsigned int>(total);
  return ForFloatType(dtype, "a reduction", [&](auto tag) {
    using T = decltype(tag);
    ReduceKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                  reduce, inner, mean);
  });
}

}  // namespace inferd::models::cuda
