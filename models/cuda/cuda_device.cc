#include "models/cuda/cuda_device.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "models/cuda/cuda_status.h"

namespace inferd::models::cuda {

absl::StatusOr<int> CudaDevice::Count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error for later calls
    return absl::FailedPreconditionError(absl::StrCat(
        "no usable CUDA device: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
  }
  if (n == 0) return absl::FailedPreconditionError("no usable CUDA device: CUDA reports 0 devices");
  return n;
}

absl::StatusOr<std::shared_ptr<CudaDevice>> CudaDevice::Get(int ordinal) {
  static std::mutex mu;
  static auto* devices = new std::map<int, std::shared_ptr<CudaDevice>>;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = devices->find(ordinal); it != devices->end()) return it->second;
  ASSIGN_OR_RETURN(int count, Count());
  if (ordinal < 0 || ordinal >= count) {
    return absl::FailedPreconditionError(absl::StrCat("no CUDA device ", ordinal, ": there are ",
                                                      count, " (cuda:0 to cuda:", count - 1, ")"));
  }
  cudaDeviceProp props;
  CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&props, ordinal));
  if (props.major < 8) {
    return absl::FailedPreconditionError(absl::StrCat(
        "CUDA device ", ordinal, " (", props.name, ") is sm_", props.major, props.minor,
        "; inferd is built for sm_80 and newer"));
  }
  CUDA_RETURN_IF_ERROR(cudaSetDevice(ordinal));
  // The stream-ordered pool is the arena: memory freed by one run is kept for the next.
  cudaMemPool_t pool;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetDefaultMemPool(&pool, ordinal));
  uint64_t keep_all = UINT64_MAX;
  CUDA_RETURN_IF_ERROR(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  auto device = std::shared_ptr<CudaDevice>(new CudaDevice(ordinal, props));
  (*devices)[ordinal] = device;
  return device;
}

std::string CudaDevice::Describe() const {
  return absl::StrFormat("%s (sm_%d%d, %.1f GiB)", props_.name, props_.major, props_.minor,
                         props_.totalGlobalMem / double(1 << 30));
}

absl::Status CudaDevice::MakeCurrent() const {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(ordinal_));
  return absl::OkStatus();
}

absl::StatusOr<size_t> CudaDevice::FreeMemory() const {
  RETURN_IF_ERROR(MakeCurrent());
  // Memory the stream-ordered pool keeps cached for reuse counts as used by cudaMemGetInfo:
  // hand it back first (a load-time cost only; runs refill the cache).
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  cudaMemPool_t pool;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetDefaultMemPool(&pool, ordinal_));
  CUDA_RETURN_IF_ERROR(cudaMemPoolTrimTo(pool, 0));
  size_t free = 0, total = 0;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
  return free;
}

absl::StatusOr<std::unique_ptr<Lane>> Lane::Create(std::shared_ptr<const CudaDevice> device,
                                                   size_t workspace_bytes, bool tf32) {
  RETURN_IF_ERROR(device->MakeCurrent());
  std::unique_ptr<Lane> lane(new Lane(std::move(device)));
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&lane->stream_, cudaStreamNonBlocking));
  CUBLAS_RETURN_IF_ERROR(cublasCreate(&lane->cublas_));
  CUBLAS_RETURN_IF_ERROR(cublasSetStream(lane->cublas_, lane->stream_));
  // Strict FP32 unless TF32 was asked for; FP16 GEMMs use tensor cores either way.
  CUBLAS_RETURN_IF_ERROR(
      cublasSetMathMode(lane->cublas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  CUDNN_RETURN_IF_ERROR(cudnnCreate(&lane->cudnn_));
  CUDNN_RETURN_IF_ERROR(cudnnSetStream(lane->cudnn_, lane->stream_));
  lane->workspace_bytes_ = workspace_bytes;
  if (workspace_bytes > 0) {
    CUDA_RETURN_IF_ERROR(cudaMalloc(&lane->workspace_, workspace_bytes));
    // cuBLAS then never allocates on its own, which CUDA graph capture requires.
    CUBLAS_RETURN_IF_ERROR(
        cublasSetWorkspace(lane->cublas_, lane->workspace_, lane->workspace_bytes_));
  }
  return lane;
}

Lane::~Lane() {
  if (device_->MakeCurrent().ok()) {
    if (stream_) cudaStreamSynchronize(stream_);
    for (Pinned& p : staging_) cudaFreeHost(p.data);
    if (workspace_) cudaFree(workspace_);
    if (cudnn_) cudnnDestroy(cudnn_);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }
}

absl::StatusOr<void*> Lane::Staging(int slot, size_t bytes) {
  if (static_cast<size_t>(slot) >= staging_.size()) staging_.resize(slot + 1);
  Pinned& p = staging_[slot];
  if (p.bytes < bytes) {
    const size_t grown = std::max(bytes, p.bytes * 2);
    if (p.data) CUDA_RETURN_IF_ERROR(cudaFreeHost(p.data));
    p.data = nullptr;
    p.bytes = 0;
    CUDA_RETURN_IF_ERROR(cudaHostAlloc(&p.data, grown, cudaHostAllocDefault));
    p.bytes = grown;
  }
  return p.data;
}

}  // namespace inferd::models::cuda
