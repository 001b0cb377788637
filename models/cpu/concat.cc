// Concat along one axis, any element type.
#include <cstring>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* first, RequireInput(ctx, 0, "inputs"));
    const int rank = first->rank();
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, rank));
    Shape out = first->shape();
    out[axis] = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      ASSIGN_OR_RETURN(const Tensor* t, RequireInput(ctx, i, "inputs"));
      bool ok = t->rank() == rank && t->dtype() == first->dtype();
      for (int d = 0; ok && d < rank; ++d) ok = d == axis || t->dim(d) == first->dim(d);
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrCat("Concat input ", i, " ", DTypeName(t->dtype()), ShapeToString(t->shape()),
                         " does not match input 0 ", DTypeName(first->dtype()),
                         ShapeToString(first->shape()), " outside axis ", axis));
      }
      out[axis] += t->dim(axis);
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, first->dtype(), out));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= out[d];
    for (int d = axis + 1; d < rank; ++d) inner *= out[d];
    const size_t elem = DTypeSize(first->dtype());
    const int64_t out_row = out[axis] * inner;
    char* yd = static_cast<char*>(y->raw_data());
    int64_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor* t = ctx.input(i);
      const int64_t row = t->dim(axis) * inner;
      const char* src = static_cast<const char*>(t->raw_data());
      ctx.pool().ParallelFor(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1)),
                             [&](int64_t o0, int64_t o1) {
                               for (int64_t o = o0; o < o1; ++o) {
                                 std::memcpy(yd + (o * out_row + offset) * elem,
                                             src + o * row * elem, row * elem);
                               }
                             });
      offset += row;
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateConcat(const KernelInfo& info) {
  if (!info.attrs().Has("axis")) return absl::InvalidArgumentError("missing attribute 'axis'");
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 0));
  return std::unique_ptr<Kernel>(new ConcatKernel(axis));
}

}  // namespace inferd::models::cpu
