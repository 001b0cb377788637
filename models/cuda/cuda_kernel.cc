#include "models/cuda/cuda_kernel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_device.h"
#include "common/status_macros.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/elementwise.h"
#include "models/kernel.h"

namespace inferd::models::cuda {

absl::StatusOr<DeviceTensor> AllocateDevice(DType dtype, Shape shape, cudaStream_t stream) {
  const int64_t n = NumElements(shape);
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("bad shape ", ShapeToString(shape)));
  if (DTypeSize(dtype) == 0) {
    return absl::UnimplementedError(absl::StrCat("no device storage for ", DTypeName(dtype)));
  }
  DeviceTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  // Zero-size tensors still get a (tiny) allocation so that every tensor has an address.
  const size_t bytes = std::max<size_t>(t.bytes(), 16);
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMallocAsync(&p, bytes, stream));
  t.memory = std::shared_ptr<void>(p, [stream](void* q) { cudaFreeAsync(q, stream); });
  t.data = p;
  return t;
}

absl::StatusOr<std::shared_ptr<void>> UploadToDevice(const void* host, size_t bytes) {
  void* p = nullptr;
  CUDA_RETURN_IF_ERROR(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
  std::shared_ptr<void> owned(p, [](void* q) { cudaFree(q); });
  if (bytes > 0) CUDA_RETURN_IF_ERROR(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
  return owned;
}

absl::StatusOr<DeviceTensor> ConstantToDevice(const Tensor& t, Precision precision) {
  DeviceTensor d;
  d.dtype = t.dtype() == DType::kFloat32 && precision == Precision::kFp16 ? DType::kFloat16
                                                                         : t.dtype();
  d.shape = t.shape();
  ASSIGN_OR_RETURN(d.memory, UploadToDevice(t.raw_data(), t.byte_size()));
  d.data = d.memory.get();
  if (d.dtype != t.dtype()) {
    void* p = nullptr;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&p, std::max<size_t>(d.bytes(), 16)));
    std::shared_ptr<void> converted(p, [](void* q) { cudaFree(q); });
    RETURN_IF_ERROR(LaunchCast(t.dtype(), d.dtype, d.data, p, d.num_elements(), nullptr));
    // The source is freed below: the conversion must be done first.
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
    d.memory = std::move(converted);
    d.data = p;
  }
  if (t.num_elements() <= kHostMirrorLimit) {
    if (t.dtype() == DType::kInt64 || t.dtype() == DType::kInt32) {
      auto v = std::make_shared<std::vector<int64_t>>();
      for (int64_t i = 0; i < t.num_elements(); ++i) v->push_back(t.ElementAsInt64(i));
      d.host_ints = std::move(v);
    } else if (t.dtype() == DType::kFloat32 || t.dtype() == DType::kFloat64 ||
               t.dtype() == DType::kFloat16) {
      auto v = std::make_shared<std::vector<double>>();
      for (int64_t i = 0; i < t.num_elements(); ++i) v->push_back(t.ElementAsDouble(i));
      d.host_floats = std::move(v);
    }
  }
  return d;
}

absl::StatusOr<DeviceTensor*> CudaContext::Allocate(int i, DType dtype, Shape shape) {
  if (i < 0 || i >= num_outputs()) return absl::InternalError("output index out of range");
  auto t = AllocateDevice(dtype, std::move(shape), stream());
  if (!t.ok()) return t.status();
  (*outputs_)[i] = std::move(*t);
  return &(*outputs_)[i];
}

cudaStream_t CudaContext::stream() const { return lane_->stream(); }

void CudaKernelRegistry::Register(std::string op, int64_t min_opset, CudaKernelFactory factory) {
  entries_.push_back({std::move(op), min_opset, factory});
}

CudaKernelFactory CudaKernelRegistry::Find(std::string_view domain, std::string_view op,
                                           int64_t opset) const {
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  for (const Entry& e : entries_) {
    if (e.op == op && opset >= e.min_opset && opset <= kMaxOpset) return e.factory;
  }
  return nullptr;
}

absl::StatusOr<std::vector<int64_t>> HostInts(const DeviceTensor& t, std::string_view what) {
  if (t.host_ints) return *t.host_ints;
  if (t.host_floats) {
    std::vector<int64_t> out;
    for (double v : *t.host_floats) out.push_back(static_cast<int64_t>(v));
    return out;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      std::string(what), " must be a constant or computed from shapes on cuda (its values are ",
      "only on the device)"));
}

absl::StatusOr<std::vector<double>> HostFloats(const DeviceTensor& t, std::string_view what) {
  if (t.host_floats) return *t.host_floats;
  if (t.host_ints) return std::vector<double>(t.host_ints->begin(), t.host_ints->end());
  return absl::FailedPreconditionError(absl::StrCat(
      std::string(what), " must be a constant or computed from shapes on cuda (its values are ",
      "only on the device)"));
}

}  // namespace inferd::models::cuda
