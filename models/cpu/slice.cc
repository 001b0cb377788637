// Slice: starts/ends/axes from attributes (opset < 10) or inputs with optional steps
// (opset >= 10); out-of-range bounds are clamped as ONNX specifies.
#include <algorithm>
#include <cstring>
#include <set>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class SliceKernel : public Kernel {
 public:
  SliceKernel(bool from_inputs, std::vector<int64_t> starts, std::vector<int64_t> ends,
              std::vector<int64_t> axes)
      : from_inputs_(from_inputs),
        starts_(std::move(starts)),
        ends_(std::move(ends)),
        axes_(std::move(axes)) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (from_inputs_) {
      ASSIGN_OR_RETURN(const Tensor* s, RequireInput(ctx, 1, "starts"));
      ASSIGN_OR_RETURN(const Tensor* e, RequireInput(ctx, 2, "ends"));
      ASSIGN_OR_RETURN(starts, ReadInt64s(*s, "starts"));
      ASSIGN_OR_RETURN(ends, ReadInt64s(*e, "ends"));
      if (ctx.input(3)) {
        ASSIGN_OR_RETURN(axes, ReadInt64s(*ctx.input(3), "axes"));
      }
      if (ctx.input(4)) {
        ASSIGN_OR_RETURN(steps, ReadInt64s(*ctx.input(4), "steps"));
      }
    }
    const int rank = x->rank();
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (starts.size() != ends.size() || axes.size() != starts.size() ||
        steps.size() != starts.size()) {
      return absl::InvalidArgumentError("Slice starts, ends, axes and steps differ in length");
    }
    std::vector<int64_t> begin(rank, 0), step(rank, 1);
    Shape out = x->shape();
    std::set<int> seen;
    for (size_t i = 0; i < starts.size(); ++i) {
      ASSIGN_OR_RETURN(int axis, NormalizeAxis(axes[i], rank));
      if (!seen.insert(axis).second) {
        return absl::InvalidArgumentError(absl::StrCat("Slice axis ", axes[i], " is repeated"));
      }
      const int64_t dim = x->dim(axis);
      const int64_t st = steps[i];
      if (st == 0) return absl::InvalidArgumentError("Slice step must not be 0");
      int64_t b = starts[i], e = ends[i];
      if (b < 0) b += dim;
      if (e < 0) e += dim;
      if (st > 0) {
        b = std::clamp<int64_t>(b, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        out[axis] = e > b ? (e - b + st - 1) / st : 0;
      } else {
        b = std::clamp<int64_t>(b, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        out[axis] = b > e ? (b - e + (-st) - 1) / (-st) : 0;
      }
      begin[axis] = b;
      step[axis] = st;
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x->dtype(), out));
    if (y->num_elements() == 0) return absl::OkStatus();
    std::vector<int64_t> strides(rank, 1);
    for (int d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * x->dim(d + 1);
    const size_t elem = DTypeSize(x->dtype());
    const char* xd = static_cast<const char*>(x->raw_data());
    char* yd = static_cast<char*>(y->raw_data());
    std::vector<int64_t> idx(rank, 0);
    for (int64_t o = 0; o < y->num_elements(); ++o) {
      int64_t src = 0;
      for (int d = 0; d < rank; ++d) src += (begin[d] + idx[d] * step[d]) * strides[d];
      std::memcpy(yd + o * elem, xd + src * elem, elem);
      for (int d = rank - 1; d >= 0; --d) {
        if (++idx[d] < out[d]) break;
        idx[d] = 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  bool from_inputs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateSlice(const KernelInfo& info) {
  if (info.opset() >= 10) {
    return std::unique_ptr<Kernel>(new SliceKernel(true, {}, {}, {}));
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> starts, info.attrs().GetInts("starts", {}));
  ASSIGN_OR_RETURN(std::vector<int64_t> ends, info.attrs().GetInts("ends", {}));
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  return std::unique_ptr<Kernel>(new SliceKernel(false, starts, ends, axes));
}

}  // namespace inferd::models::cpu
