// CUDA, cuBLAS and cuDNN errors as absl::Status: each failed call becomes an INTERNAL error (or
// RESOURCE_EXHAUSTED for out-of-memory) naming the call, the library's message and the place.
#ifndef INFERD_MODELS_CUDA_CUDA_STATUS_H_
#define INFERD_MODELS_CUDA_CUDA_STATUS_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "absl/status/status.h"

namespace inferd::models::cuda {

absl::Status CudaError(cudaError_t e, const char* call, const char* file, int line);
absl::Status CublasError(cublasStatus_t e, const char* call, const char* file, int line);
absl::Status CudnnError(cudnnStatus_t e, const char* call, const char* file, int line);

}  // namespace inferd::models::cuda

#define CUDA_RETURN_IF_ERROR(call)                                                       \
  do {                                                                                   \
    const cudaError_t inferd_cuda_e = (call);                                            \
    if (inferd_cuda_e != cudaSuccess) {                                                  \
      return ::inferd::models::cuda::CudaError(inferd_cuda_e, #call, __FILE__, __LINE__); \
    }                                                                                    \
  } while (0)

#define CUBLAS_RETURN_IF_ERROR(call)                                                         \
  do {                                                                                       \
    const cublasStatus_t inferd_cublas_e = (call);                                           \
    if (inferd_cublas_e != CUBLAS_STATUS_SUCCESS) {                                          \
      return ::inferd::models::cuda::CublasError(inferd_cublas_e, #call, __FILE__, __LINE__); \
    }                                                                                        \
  } while (0)

#define CUDNN_RETURN_IF_ERROR(call)                                                        \
  do {                                                                                     \
    const cudnnStatus_t inferd_cudnn_e = (call);                                           \
    if (inferd_cudnn_e != CUDNN_STATUS_SUCCESS) {                                          \
      return ::inferd::models::cuda::CudnnError(inferd_cudnn_e, #call, __FILE__, __LINE__); \
    }                                                                                      \
  } while (0)

// After a kernel launch: launch-configuration errors show up here, asynchronous faults later.
// cudaGetLastError also clears the thread's error, so an earlier failure (an out-of-memory
// answered as RESOURCE_EXHAUSTED) is not reported again by every later launch.
#define CUDA_RETURN_IF_LAUNCH_FAILED() CUDA_RETURN_IF_ERROR(cudaGetLastError())

#endif  // INFERD_MODELS_CUDA_CUDA_STATUS_H_
