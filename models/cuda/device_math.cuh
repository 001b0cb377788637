// Device-side helpers shared by the .cu files: float <-> storage type conversions and a
// grid-stride launch shape. Included by .cu files only.
#ifndef INFERD_MODELS_CUDA_DEVICE_MATH_CUH_
#define INFERD_MODELS_CUDA_DEVICE_MATH_CUH_

#include <cuda_fp16.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_status.h"
#include "models/dtype.h"

namespace inferd::models::cuda {

template <typename T>
__device__ __forceinline__ float ToFloat(T v) {
  return static_cast<float>(v);
}
template <>
__device__ __forceinline__ float ToFloat<__half>(__half v) {
  return __half2float(v);
}
template <typename T>
__device__ __forceinline__ T FromFloat(float v) {
  return static_cast<T>(v);
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half(v);
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned int Blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

#define INFERD_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Up to 8 dimensions, passed to kernels by value.
struct Dims8 {
  int rank = 0;
  int64_t d[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

// Calls fn(T{}) with T = float or __half for a float32 / float16 storage type, then checks the
// launch; any other dtype is UNIMPLEMENTED naming `what`.
template <typename Fn>
absl::Status ForFloatType(DType dtype, const char* what, Fn fn) {
  if (dtype == DType::kFloat32) {
    fn(float{});
  } else if (dtype == DType::kFloat16) {
    fn(__half{});
  } else {
    return absl::UnimplementedError(
        absl::StrCat(what, " on cuda does not support ", DTypeName(dtype)));
  }
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_DEVICE_MATH_CUH_
