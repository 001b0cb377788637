#include <cuda_fp16.h>

#include <cfloat>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/device_math.cuh"
#include "models/cuda/pool.h"

namespace inferd::models::cuda {
namespace {

// One block per (outer, inner) row: max, then sum of exp, then the outputs.
template <typename T>
__global__ void SoftmaxKernel(const T* x, T* y, int64_t axis, int64_t inner, bool log) {
  const int64_t row = blockIdx.x;
  const int64_t o = row / inner, e = row % inner;
  const T* xr = x + o * axis * inner + e;
  T* yr = y + o * axis * inner + e;
  __shared__ float partial[kThreads];
  float m = -FLT_MAX;
  for (int64_t k = threadIdx.x; k < axis; k += blockDim.x) m = fmaxf(m, ToFloat(xr[k * inner]));
  partial[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
    __syncthreads();
  }
  m = partial[0];
  __syncthreads();
  float sum = 0.0f;
  for (int64_t k = threadIdx.x; k < axis; k += blockDim.x) sum += __expf(ToFloat(xr[k * inner]) - m);
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  sum = partial[0];
  const float log_sum = logf(sum);
  for (int64_t k = threadIdx.x; k < axis; k += blockDim.x) {
    const float v = ToFloat(xr[k * inner]) - m;
    yr[k * inner] = FromFloat<T>(log ? v - log_sum : __expf(v) / sum);
  }
}

}  // namespace

absl::Status LaunchSoftmax(bool log, DType dtype, const void* x, void* y, int64_t outer,
                           int64_t axis, int64_t inner, cudaStream_t stream) {
  const int64_t rows = outer * inner;
  if (rows == 0 || axis == 0) return absl::OkStatus();
  if (rows > 0x7fffffff) return absl::UnimplementedError("softmax with too many rows");
  const unsigned int blocks = static_cast<unsigned int>(rows);
  return ForFloatType(dtype, "Softmax", [&](auto tag) {
    using T = decltype(tag);
    SoftmaxKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                   axis, inner, log);
  });
}

}  // namespace inferd::models::cuda
