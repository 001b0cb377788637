#include "models/cpu/kernel_util.h"

#include <algorithm>

#include "common/status_macros.h"

namespace inferd::models::cpu {

absl::StatusOr<int> NormalizeAxis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    return absl::InvalidArgumentError(
        absl::StrCat("axis ", axis, " is out of range for rank ", rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shapes ", ShapeToString(a), " and ", ShapeToString(b), " cannot be broadcast together"));
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> BroadcastStrides(const Shape& shape, const Shape& out_shape) {
  const size_t rank = out_shape.size();
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const size_t src = shape.size() - 1 - k;
    const size_t dst = rank - 1 - k;
    strides[dst] = shape[src] == 1 ? 0 : stride;
    stride *= shape[src];
  }
  return strides;
}

absl::StatusOr<std::vector<int64_t>> ReadInt64s(const Tensor& t, const char* what) {
  if (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be int64 or int32, got ", DTypeName(t.dtype())));
  }
  if (t.rank() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a 1-D tensor, got shape ", ShapeToString(t.shape())));
  }
  std::vector<int64_t> v(t.num_elements());
  for (int64_t i = 0; i < t.num_elements(); ++i) v[i] = t.ElementAsInt64(i);
  return v;
}

absl::StatusOr<const Tensor*> RequireInput(const KernelContext& ctx, int i, const char* name) {
  const Tensor* t = ctx.input(i);
  if (t == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("missing required input '", name, "'"));
  }
  return t;
}

absl::Status UnsupportedType(const char* op, DType dtype) {
  return absl::UnimplementedError(
      absl::StrCat(op, " does not support tensors of type ", DTypeName(dtype)));
}

absl::Status SliceBounds(const Shape& in, const std::vector<int64_t>& starts,
                         const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                         std::vector<int64_t> steps, std::vector<int64_t>* begin,
                         std::vector<int64_t>* step, Shape* out) {
  const int rank = static_cast<int>(in.size());
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (starts.size() != ends.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return absl::InvalidArgumentError("Slice starts, ends, axes and steps differ in length");
  }
  begin->assign(rank, 0);
  step->assign(rank, 1);
  *out = in;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axes[i], rank));
    if (seen[axis]) {
      return absl::InvalidArgumentError(absl::StrCat("Slice axis ", axes[i], " is repeated"));
    }
    seen[axis] = true;
    const int64_t dim = in[axis];
    const int64_t st = steps[i];
    if (st == 0) return absl::InvalidArgumentError("Slice step must not be 0");
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    if (st > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      (*out)[axis] = e > b ? (e - b + st - 1) / st : 0;
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      (*out)[axis] = b > e ? (b - e + (-st) - 1) / (-st) : 0;
    }
    (*begin)[axis] = b;
    (*step)[axis] = st;
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ConstantValue(const AttributeMap& a) {
  if (a.all().size() != 1) {
    return absl::InvalidArgumentError("Constant needs exactly one value attribute");
  }
  if (a.Has("value")) return a.GetTensor("value");
  if (a.Has("value_float")) {
    ASSIGN_OR_RETURN(float v, a.GetFloat("value_float", 0));
    return Tensor::FromVector<float>({}, {v});
  }
  if (a.Has("value_int")) {
    ASSIGN_OR_RETURN(int64_t v, a.GetInt("value_int", 0));
    return Tensor::FromVector<int64_t>({}, {v});
  }
  if (a.Has("value_floats")) {
    ASSIGN_OR_RETURN(std::vector<float> v, a.GetFloats("value_floats", {}));
    return Tensor::FromVector<float>({static_cast<int64_t>(v.size())}, v);
  }
  if (a.Has("value_ints")) {
    ASSIGN_OR_RETURN(std::vector<int64_t> v, a.GetInts("value_ints", {}));
    return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
  }
  return absl::UnimplementedError(
      absl::StrCat("Constant attribute '", a.all().begin()->first, "' is not supported"));
}

}  // namespace inferd::models::cpu
