#include "models/cuda/cuda_status.h"

#include "absl/strings/str_cat.h"

namespace inferd::models::cuda {
namespace {

const char* Basename(const char* file) {
  const char* slash = file;
  for (const char* p = file; *p; ++p) {
    if (*p == '/') slash = p + 1;
  }
  return slash;
}

}  // namespace

absl::Status CudaError(cudaError_t e, const char* call, const char* file, int line) {
  const std::string message = absl::StrCat(call, ": ", cudaGetErrorName(e), " (",
                                           cudaGetErrorString(e), ") at ", Basename(file), ":",
                                           line);
  return e == cudaErrorMemoryAllocation ? absl::ResourceExhaustedError(message)
                                        : absl::InternalError(message);
}

absl::Status CublasError(cublasStatus_t e, const char* call, const char* file, int line) {
  const std::string message = absl::StrCat(call, ": ", cublasGetStatusName(e), " (",
                                           cublasGetStatusString(e), ") at ", Basename(file),
                                           ":", line);
  return e == CUBLAS_STATUS_ALLOC_FAILED ? absl::ResourceExhaustedError(message)
                                         : absl::InternalError(message);
}

absl::Status CudnnError(cudnnStatus_t e, const char* call, const char* file, int line) {
  const std::string message =
      absl::StrCat(call, ": ", cudnnGetErrorString(e), " at ", Basename(file), ":", line);
  return e == CUDNN_STATUS_ALLOC_FAILED ? absl::ResourceExhaustedError(message)
                                        : absl::InternalError(message);
}

}  // namespace inferd::models::cuda
