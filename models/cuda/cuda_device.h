// A CUDA device and the per-stream resources that runs on it use. One CudaDevice per ordinal per
// process (shared by every model placed on it). Device memory comes from the device's
// stream-ordered pool (cudaMallocAsync), configured to keep freed memory cached instead of
// returning it to the driver, so steady-state runs allocate nothing from the driver.
//
// A Lane is what one concurrent run needs: a non-blocking stream, cuBLAS and cuDNN handles bound
// to it, a workspace for both, and pinned host staging buffers for the host<->device copies. A
// batch thread borrows one lane for a whole run, so runs on different threads overlap (one
// lane's copies with another's kernels). Lanes are not thread-safe; CudaDevice is.
#ifndef INFERD_MODELS_CUDA_CUDA_DEVICE_H_
#define INFERD_MODELS_CUDA_CUDA_DEVICE_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace inferd::models::cuda {

class CudaDevice {
 public:
  // The device `ordinal`, set up on first use. FAILED_PRECONDITION when CUDA has no usable
  // device (no driver, a driver older than the runtime, no GPU, an ordinal past the last).
  static absl::StatusOr<std::shared_ptr<CudaDevice>> Get(int ordinal);
  // Devices CUDA reports, or the reason there are none.
  static absl::StatusOr<int> Count();

  int ordinal() const { return ordinal_; }
  const cudaDeviceProp& props() const { return props_; }
  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
  std::string Describe() const;
  // Makes this device current on the calling thread (CUDA's current device is per thread).
  absl::Status MakeCurrent() const;
  // Bytes free on the device now, after returning what the memory pool keeps cached.
  absl::StatusOr<size_t> FreeMemory() const;

 private:
  CudaDevice(int ordinal, const cudaDeviceProp& props) : ordinal_(ordinal), props_(props) {}
  const int ordinal_;
  const cudaDeviceProp props_;
};

class Lane {
 public:
  static absl::StatusOr<std::unique_ptr<Lane>> Create(std::shared_ptr<const CudaDevice> device,
                                                      size_t workspace_bytes, bool tf32);
  ~Lane();
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  const CudaDevice& device() const { return *device_; }
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  void* workspace() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  // Pinned host memory of at least `bytes` for staging slot `slot`, grown as needed (growing
  // reallocates, so a pointer is valid until the next call for that slot).
  absl::StatusOr<void*> Staging(int slot, size_t bytes);

 private:
  explicit Lane(std::shared_ptr<const CudaDevice> device) : device_(std::move(device)) {}
  std::shared_ptr<const CudaDevice> device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  struct Pinned {
    void* data = nullptr;
    size_t bytes = 0;
  };
  std::vector<Pinned> staging_;
};

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_CUDA_DEVICE_H_
