// Helpers shared by the CPU kernels: axis and broadcast arithmetic, reading small int tensors,
// and the factory template every op file uses.
#ifndef INFERD_MODELS_CPU_KERNEL_UTIL_H_
#define INFERD_MODELS_CPU_KERNEL_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "models/kernel.h"

namespace inferd::models::cpu {

// Maps axis in [-rank, rank) to [0, rank).
absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank);

// numpy-style broadcast of two shapes.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);

// Strides of `shape` (row-major) aligned right against `out_rank` dims, 0 where broadcast.
std::vector<int64_t> BroadcastStrides(const Shape& shape, const Shape& out_shape);

// Values of a 0-D or 1-D int32/int64 tensor.
absl::StatusOr<std::vector<int64_t>> ReadInt64s(const Tensor& t, const char* what);

// The value of a Constant node from whichever attribute it has (value, value_float, value_int,
// value_floats, value_ints). Shared with the CUDA Constant.
absl::StatusOr<Tensor> ConstantValue(const AttributeMap& attrs);

// ONNX Slice's bounds for an input of shape `in`: per dim the first index, the step and the
// output size, with out-of-range bounds clamped as ONNX specifies. `axes` empty: 0, 1, ...;
// `steps` empty: all 1. Shared with the CUDA Slice.
absl::Status SliceBounds(const Shape& in, const std::vector<int64_t>& starts,
                         const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                         std::vector<int64_t> steps, std::vector<int64_t>* begin,
                         std::vector<int64_t>* step, Shape* out);

// The named input or a clear error if it is missing.
absl::StatusOr<const Tensor*> RequireInput(const KernelContext& ctx, int i, const char* name);

// Factory for kernels constructed from KernelInfo by a static Create(const KernelInfo&)
// returning StatusOr<std::unique_ptr<K>>.
template <typename K>
absl::StatusOr<std::unique_ptr<Kernel>> MakeKernel(const KernelInfo& info) {
  auto k = K::Create(info);
  if (!k.ok()) return k.status();
  return std::unique_ptr<Kernel>(std::move(*k));
}

// Returns a "type T is not supported by OP" error.
absl::Status UnsupportedType(const char* op, DType dtype);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_KERNEL_UTIL_H_
