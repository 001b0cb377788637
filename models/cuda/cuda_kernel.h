// CUDA kernels: one op on the GPU. As on the CPU (models/kernel.h), a kernel is created once per
// node at load, with its constant inputs already on the device, and Launch() runs per request:
// it reads its inputs' shapes (known on the host), computes its outputs' shapes, allocates them
// stream-ordered and enqueues work on the context's stream without waiting for it. Launch() never
// synchronises and never allocates outside the stream-ordered pool, so a whole run can be captured
// into a CUDA graph. Launch() is const and may run concurrently on different lanes.
#ifndef INFERD_MODELS_CUDA_CUDA_KERNEL_H_
#define INFERD_MODELS_CUDA_CUDA_KERNEL_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "models/executor.h"
#include "models/graph.h"
#include "models/tensor.h"

namespace inferd::models::cuda {

class Lane;

// A tensor in device memory. Float values are stored in the executor's float type (float32, or
// float16 when the precision is fp16). Small integer tensors computed from shapes (Shape, and
// the Gather/Slice/Concat/Unsqueeze/Cast chains exporters build on it) and small constants also
// carry their values on the host, for kernels that need them there (Reshape's target shape,
// Slice's bounds, Resize's sizes) without a device-to-host copy.
struct DeviceTensor {
  DType dtype = DType::kUndefined;
  Shape shape;
  std::shared_ptr<void> memory;  // the allocation; freed when the last view lets go
  void* data = nullptr;
  std::shared_ptr<const std::vector<int64_t>> host_ints;   // integer values, if known
  std::shared_ptr<const std::vector<double>> host_floats;  // float values, if known

  // Lets go of the memory and values (member by member: assigning a fresh DeviceTensor makes
  // GCC 12 warn about the inline shape storage it moves from).
  void Clear() {
    dtype = DType::kUndefined;
    shape.clear();
    memory.reset();
    data = nullptr;
    host_ints.reset();
    host_floats.reset();
  }
  int64_t num_elements() const { return NumElements(shape); }
  size_t bytes() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Small tensors whose values are kept on the host too.
inline constexpr int64_t kHostMirrorLimit = 64;

// Inputs, outputs and resources of one launch.
class CudaContext {
 public:
  CudaContext(absl::Span<const DeviceTensor* const> inputs, std::vector<DeviceTensor>* outputs,
              Lane* lane, Precision precision)
      : inputs_(inputs), outputs_(outputs), lane_(lane), precision_(precision) {}

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const DeviceTensor* input(int i) const { return i < num_inputs() ? inputs_[i] : nullptr; }
  int num_outputs() const { return static_cast<int>(outputs_->size()); }
  // Allocates output `i` on the lane's stream (freed stream-ordered when released).
  absl::StatusOr<DeviceTensor*> Allocate(int i, DType dtype, Shape shape);
  // Output `i` is an existing tensor (views: Reshape, Flatten, Identity, ...).
  void Set(int i, DeviceTensor t) { (*outputs_)[i] = std::move(t); }

  Lane& lane() const { return *lane_; }
  cudaStream_t stream() const;
  Precision precision() const { return precision_; }
  // The storage type of float values: kFloat16 under fp16, else kFloat32.
  DType float_type() const {
    return precision_ == Precision::kFp16 ? DType::kFloat16 : DType::kFloat32;
  }

 private:
  absl::Span<const DeviceTensor* const> inputs_;
  std::vector<DeviceTensor>* outputs_;
  Lane* lane_;
  Precision precision_;
};

// Allocates a device tensor stream-ordered on `stream`; its memory is freed (stream-ordered, on
// the same stream) when the last DeviceTensor sharing it is destroyed.
absl::StatusOr<DeviceTensor> AllocateDevice(DType dtype, Shape shape, cudaStream_t stream);

// Load-time device memory (weights, per-channel tables): `bytes` copied from host memory with a
// synchronous copy; freed when the last owner lets go.
absl::StatusOr<std::shared_ptr<void>> UploadToDevice(const void* host, size_t bytes);

// A load-time constant on the device, in the executor's storage type (float32 values become
// float16 under fp16), with its values also on the host when it is small. Synchronous.
absl::StatusOr<DeviceTensor> ConstantToDevice(const Tensor& t, Precision precision);

class CudaKernel {
 public:
  virtual ~CudaKernel() = default;
  virtual absl::Status Launch(CudaContext& ctx) const = 0;
};

// What a CUDA kernel factory sees at load time.
struct CudaKernelInfo {
  const Node& node;
  // Per input: the constant's device copy (in the executor's storage types), else nullptr.
  std::vector<const DeviceTensor*> constant_inputs;
  // Per input: the constant as the graph holds it on the host, else nullptr.
  std::vector<const Tensor*> host_constants;
  // What load-time shape inference knows of each output, else nullptr.
  std::vector<const TensorInfo*> output_infos;
  Precision precision = Precision::kFp32;

  const DeviceTensor* constant_input(int i) const {
    return i < static_cast<int>(constant_inputs.size()) ? constant_inputs[i] : nullptr;
  }
  const Tensor* host_constant(int i) const {
    return i < static_cast<int>(host_constants.size()) ? host_constants[i] : nullptr;
  }
  bool has_input(int i) const {
    return i < static_cast<int>(node.inputs.size()) && node.inputs[i] != kNoValue;
  }
  const AttributeMap& attrs() const { return node.attrs; }
  int64_t opset() const { return node.opset; }
  DType float_type() const {
    return precision == Precision::kFp16 ? DType::kFloat16 : DType::kFloat32;
  }
};

using CudaKernelFactory = absl::StatusOr<std::unique_ptr<CudaKernel>> (*)(const CudaKernelInfo&);

// Op name -> factory for the default ONNX domain (each factory reads the node's opset where the
// op's semantics changed). Filled once by RegisterCudaKernels; read-only afterwards.
class CudaKernelRegistry {
 public:
  void Register(std::string op, int64_t min_opset, CudaKernelFactory factory);
  CudaKernelFactory Find(std::string_view domain, std::string_view op, int64_t opset) const;

 private:
  struct Entry {
    std::string op;
    int64_t min_opset;
    CudaKernelFactory factory;
  };
  std::vector<Entry> entries_;
};

const CudaKernelRegistry& CudaKernels();

// Host-side helpers for kernels.
// The values of an integer input known on the host (a constant, or a shape computation);
// FAILED_PRECONDITION naming `what` when they are only on the device.
absl::StatusOr<std::vector<int64_t>> HostInts(const DeviceTensor& t, std::string_view what);
// Same for float values (Resize scales, Clip bounds).
absl::StatusOr<std::vector<double>> HostFloats(const DeviceTensor& t, std::string_view what);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_CUDA_KERNEL_H_
