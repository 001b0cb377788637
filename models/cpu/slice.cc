// Slice: starts/ends/axes from attributes (opset < 10) or inputs with optional steps
// (opset >= 10); out-of-range bounds are clamped as ONNX specifies.
#include <algorithm>
#include <cstring>

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
    std::vector<int64_t> begin, step;
    Shape out;
    RETURN_IF_ERROR(SliceBounds(x->shape(), starts, ends, axes, steps, &begin, &step, &out));
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
