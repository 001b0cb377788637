// Kernels: one op on one device. A kernel is created once per node at load (attributes parsed
// and constant inputs such as weights pre-processed there), then Compute() runs per request.
// Compute() is const and may run concurrently on different contexts.
#ifndef INFERD_MODELS_KERNEL_H_
#define INFERD_MODELS_KERNEL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "models/graph.h"
#include "models/tensor.h"
#include "models/thread_pool.h"

namespace inferd::models {

// Where kernels get output memory. The executor passes one that recycles intermediate buffers.
class TensorAllocator {
 public:
  virtual ~TensorAllocator() = default;
  virtual absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) = 0;
};

// Inputs, outputs and resources of one kernel invocation. Not thread-safe; owned by the caller.
class KernelContext {
 public:
  KernelContext(absl::Span<const Tensor* const> inputs, std::vector<Tensor>* outputs,
                TensorAllocator* allocator, ThreadPool* pool)
      : inputs_(inputs), outputs_(outputs), allocator_(allocator), pool_(pool) {}

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  // nullptr when input `i` was omitted (optional) or is past the end.
  const Tensor* input(int i) const { return i < num_inputs() ? inputs_[i] : nullptr; }
  int num_outputs() const { return static_cast<int>(outputs_->size()); }
  // Allocates output `i`; the returned pointer stays valid for this invocation.
  absl::StatusOr<Tensor*> Allocate(int i, DType dtype, Shape shape);
  // Sets output `i` to an existing tensor (views: Reshape, Identity, ...).
  void Set(int i, Tensor t) { (*outputs_)[i] = std::move(t); }
  ThreadPool& pool() const { return *pool_; }
  // Floating-point operations this invocation performed (for profiles); 0 if not reported.
  void ReportFlops(double flops) { flops_ = flops; }
  double flops() const { return flops_; }

 private:
  double flops_ = 0;
  absl::Span<const Tensor* const> inputs_;
  std::vector<Tensor>* outputs_;
  TensorAllocator* allocator_;
  ThreadPool* pool_;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual absl::Status Compute(KernelContext& ctx) const = 0;
};

// What a kernel factory sees at load time.
struct KernelInfo {
  const Node& node;
  // The load-time value of each input that is a constant (weights, folded shapes), else nullptr.
  std::vector<const Tensor*> constant_inputs;
  // What load-time shape inference knows of each output (dims -1 where dynamic), else nullptr.
  std::vector<const TensorInfo*> output_infos;

  const Tensor* constant_input(int i) const {
    return i < static_cast<int>(constant_inputs.size()) ? constant_inputs[i] : nullptr;
  }
  const TensorInfo* output_info(int i) const {
    return i < static_cast<int>(output_infos.size()) ? output_infos[i] : nullptr;
  }
  bool has_input(int i) const {
    return i < static_cast<int>(node.inputs.size()) && node.inputs[i] != kNoValue;
  }
  int num_inputs() const { return static_cast<int>(node.inputs.size()); }
  const AttributeMap& attrs() const { return node.attrs; }
  int64_t opset() const { return node.opset; }
};

using KernelFactory = absl::StatusOr<std::unique_ptr<Kernel>> (*)(const KernelInfo& info);

// Maps (op, opset) to kernel factories for one device. Filled once by an explicit
// registration function; read-only (and so thread-safe) afterwards.
class KernelRegistry {
 public:
  // Registers `factory` for `op` in the default ONNX domain, for model opsets
  // [min_opset, max_opset].
  void Register(std::string op, int64_t min_opset, int64_t max_opset, KernelFactory factory);
  // nullptr when nothing is registered for that domain, op and opset.
  KernelFactory Find(std::string_view domain, std::string_view op, int64_t opset) const;
  // Every registered op name, sorted.
  std::vector<std::string> Ops() const;

 private:
  struct Entry {
    std::string op;
    int64_t min_opset;
    int64_t max_opset;
    KernelFactory factory;
  };
  std::vector<Entry> entries_;
};

// The oldest and newest ONNX opsets inferd accepts.
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 17;

}  // namespace inferd::models

#endif  // INFERD_MODELS_KERNEL_H_
