// Ops that only change how a buffer is viewed (Flatten, Reshape, Squeeze, Unsqueeze,
// Identity) or describe shapes (Shape), plus Constant. Outputs share the input's buffer.
#include <algorithm>
#include <set>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class FlattenKernel : public Kernel {
 public:
  explicit FlattenKernel(int64_t axis) : axis_(axis) {}
  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "input"));
    const int rank = x->rank();
    if (axis_ < -rank || axis_ > rank) {
      return absl::InvalidArgumentError(
          absl::StrCat("Flatten axis ", axis_, " is out of range for rank ", rank));
    }
    const int axis = static_cast<int>(axis_ < 0 ? axis_ + rank : axis_);
    int64_t outer = 1;
    for (int d = 0; d < axis; ++d) outer *= x->dim(d);
    const int64_t inner = outer == 0 ? 0 : x->num_elements() / outer;
    int64_t inner_dims = 1;
    for (int d = axis; d < rank; ++d) inner_dims *= x->dim(d);
    ASSIGN_OR_RETURN(Tensor y, x->Reshaped({outer, outer == 0 ? inner_dims : inner}));
    ctx.Set(0, std::move(y));
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
};

class ReshapeKernel : public Kernel {
 public:
  explicit ReshapeKernel(bool allow_zero) : allow_zero_(allow_zero) {}
  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    ASSIGN_OR_RETURN(const Tensor* s, RequireInput(ctx, 1, "shape"));
    ASSIGN_OR_RETURN(std::vector<int64_t> dims, ReadInt64s(*s, "Reshape shape"));
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allow_zero_) {
        if (static_cast<int>(i) >= x->rank()) {
          return absl::InvalidArgumentError(
              absl::StrCat("Reshape copies dimension ", i, " but the input has rank ", x->rank()));
        }
        dims[i] = x->dim(static_cast<int>(i));
      }
      if (dims[i] == -1) {
        if (infer >= 0) return absl::InvalidArgumentError("Reshape shape has more than one -1");
        infer = static_cast<int>(i);
        continue;
      }
      if (dims[i] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Reshape dimension ", dims[i], " is invalid"));
      }
      if (__builtin_mul_overflow(known, dims[i], &known)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Reshape shape ", ShapeToString(dims), " has too many elements"));
      }
    }
    if (infer >= 0) {
      if (known == 0 || x->num_elements() % known != 0) {
        return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(x->shape()),
                                                       " to ", ShapeToString(dims)));
      }
      dims[infer] = x->num_elements() / known;
    }
    ASSIGN_OR_RETURN(Tensor y, x->Reshaped(Shape(dims.begin(), dims.end())));
    ctx.Set(0, std::move(y));
    return absl::OkStatus();
  }

 private:
  bool allow_zero_;
};

// Squeeze and Unsqueeze: axes from the attribute (opset < 13) or input 1.
class SqueezeKernel : public Kernel {
 public:
  SqueezeKernel(bool unsqueeze, bool axes_from_input, std::vector<int64_t> axes)
      : unsqueeze_(unsqueeze), axes_from_input_(axes_from_input), axes_(std::move(axes)) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    std::vector<int64_t> axes = axes_;
    if (axes_from_input_ && ctx.input(1) != nullptr) {
      ASSIGN_OR_RETURN(axes, ReadInt64s(*ctx.input(1), "axes"));
    }
    if (unsqueeze_ && axes.empty()) return absl::InvalidArgumentError("Unsqueeze needs axes");
    const int out_rank = unsqueeze_ ? x->rank() + static_cast<int>(axes.size()) : x->rank();
    std::set<int> norm;
    for (int64_t a : axes) {
      ASSIGN_OR_RETURN(int n, NormalizeAxis(a, out_rank));
      if (!norm.insert(n).second) {
        return absl::InvalidArgumentError(absl::StrCat("axis ", a, " is repeated"));
      }
    }
    Shape out;
    if (unsqueeze_) {
      int src = 0;
      for (int d = 0; d < out_rank; ++d) out.push_back(norm.count(d) ? 1 : x->dim(src++));
    } else {
      for (int d = 0; d < x->rank(); ++d) {
        const bool drop = norm.empty() ? x->dim(d) == 1 : norm.count(d) > 0;
        if (drop && x->dim(d) != 1) {
          return absl::InvalidArgumentError(absl::StrCat("cannot squeeze axis ", d, " of size ",
                                                         x->dim(d), " in ",
                                                         ShapeToString(x->shape())));
        }
        if (!drop) out.push_back(x->dim(d));
      }
    }
    ASSIGN_OR_RETURN(Tensor y, x->Reshaped(out));
    ctx.Set(0, std::move(y));
    return absl::OkStatus();
  }

 private:
  bool unsqueeze_;
  bool axes_from_input_;
  std::vector<int64_t> axes_;
};

class IdentityKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "input"));
    ctx.Set(0, *x);
    return absl::OkStatus();
  }
};

class ShapeKernel : public Kernel {
 public:
  ShapeKernel(int64_t start, std::optional<int64_t> end) : start_(start), end_(end) {}
  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    const int64_t rank = x->rank();
    auto clamp = [rank](int64_t v) {
      if (v < 0) v += rank;
      return std::clamp<int64_t>(v, 0, rank);
    };
    const int64_t b = clamp(start_);
    const int64_t e = end_ ? clamp(*end_) : rank;
    const int64_t len = std::max<int64_t>(0, e - b);
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, DType::kInt64, {len}));
    for (int64_t i = 0; i < len; ++i) y->data<int64_t>()[i] = x->dim(static_cast<int>(b + i));
    return absl::OkStatus();
  }

 private:
  int64_t start_;
  std::optional<int64_t> end_;
};

class ConstantKernel : public Kernel {
 public:
  explicit ConstantKernel(Tensor value) : value_(std::move(value)) {}
  absl::Status Compute(KernelContext& ctx) const override {
    ctx.Set(0, value_);
    return absl::OkStatus();
  }

 private:
  Tensor value_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateFlatten(const KernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 1));
  return std::unique_ptr<Kernel>(new FlattenKernel(axis));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReshape(const KernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t allow_zero, info.attrs().GetInt("allowzero", 0));
  return std::unique_ptr<Kernel>(new ReshapeKernel(info.opset() >= 14 && allow_zero != 0));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateSqueeze(const KernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  return std::unique_ptr<Kernel>(new SqueezeKernel(false, info.opset() >= 13, axes));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateUnsqueeze(const KernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  if (info.opset() < 13 && axes.empty()) {
    return absl::InvalidArgumentError("missing attribute 'axes'");
  }
  return std::unique_ptr<Kernel>(new SqueezeKernel(true, info.opset() >= 13, axes));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateIdentity(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new IdentityKernel());
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateShape(const KernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t start, info.attrs().GetInt("start", 0));
  std::optional<int64_t> end;
  if (info.attrs().Has("end")) {
    ASSIGN_OR_RETURN(end, info.attrs().GetInt("end", 0));
  }
  if (info.opset() < 15) start = 0, end.reset();
  return std::unique_ptr<Kernel>(new ShapeKernel(start, end));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateConstant(const KernelInfo& info) {
  ASSIGN_OR_RETURN(Tensor t, ConstantValue(info.attrs()));
  return std::unique_ptr<Kernel>(new ConstantKernel(std::move(t)));
}

}  // namespace inferd::models::cpu
