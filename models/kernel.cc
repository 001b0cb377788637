#include "models/kernel.h"

#include <algorithm>

namespace inferd::models {

absl::StatusOr<Tensor*> KernelContext::Allocate(int i, DType dtype, Shape shape) {
  auto t = allocator_->Allocate(dtype, std::move(shape));
  if (!t.ok()) return t.status();
  (*outputs_)[i] = *std::move(t);
  return &(*outputs_)[i];
}

void KernelRegistry::Register(std::string op, int64_t min_opset, int64_t max_opset,
                              KernelFactory factory) {
  entries_.push_back(Entry{std::move(op), min_opset, max_opset, factory});
}

KernelFactory KernelRegistry::Find(std::string_view domain, std::string_view op,
                                   int64_t opset) const {
  if (!domain.empty() && domain != "ai.onnx") return nullptr;
  for (const Entry& e : entries_) {
    if (e.op == op && opset >= e.min_opset && opset <= e.max_opset) return e.factory;
  }
  return nullptr;
}

std::vector<std::string> KernelRegistry::Ops() const {
  std::vector<std::string> ops;
  for (const Entry& e : entries_) ops.push_back(e.op);
  std::sort(ops.begin(), ops.end());
  ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
  return ops;
}

}  // namespace inferd::models
