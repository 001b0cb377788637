// Gather along an axis with int32/int64 indices (negative indices count from the end).
#include <cstring>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class GatherKernel : public Kernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    ASSIGN_OR_RETURN(const Tensor* ind, RequireInput(ctx, 1, "indices"));
    if (ind->dtype() != DType::kInt64 && ind->dtype() != DType::kInt32) {
      return absl::InvalidArgumentError("Gather indices must be int32 or int64");
    }
    if (x->rank() == 0) return absl::InvalidArgumentError("Gather data must have rank >= 1");
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, x->rank()));
    Shape out(x->shape().begin(), x->shape().begin() + axis);
    out.insert(out.end(), ind->shape().begin(), ind->shape().end());
    out.insert(out.end(), x->shape().begin() + axis + 1, x->shape().end());
    const int64_t limit = x->dim(axis);
    std::vector<int64_t> idx(ind->num_elements());
    for (int64_t i = 0; i < ind->num_elements(); ++i) {
      int64_t v = ind->ElementAsInt64(i);
      if (v < -limit || v >= limit) {
        return absl::InvalidArgumentError(
            absl::StrCat("Gather index ", v, " is out of range for axis size ", limit));
      }
      idx[i] = v < 0 ? v + limit : v;
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x->dtype(), out));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x->dim(d);
    for (int d = axis + 1; d < x->rank(); ++d) inner *= x->dim(d);
    const size_t bytes = inner * DTypeSize(x->dtype());
    const char* src = static_cast<const char*>(x->raw_data());
    char* dst = static_cast<char*>(y->raw_data());
    const int64_t n = static_cast<int64_t>(idx.size());
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(dst + (o * n + i) * bytes, src + (o * limit + idx[i]) * bytes, bytes);
      }
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateGather(const KernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 0));
  return std::unique_ptr<Kernel>(new GatherKernel(axis));
}

}  // namespace inferd::models::cpu
