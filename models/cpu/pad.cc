// Pad: constant, reflect and edge modes. Pads come from the attribute (opset < 11) or from
// input 1 with an optional constant_value input 2 (opset >= 11). Negative pads crop.
#include <algorithm>

#include "common/status_macros.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

enum class PadMode { kConstant, kReflect, kEdge };

class PadKernel : public Kernel {
 public:
  PadKernel(PadMode mode, bool from_inputs, std::vector<int64_t> pads, float value)
      : mode_(mode), from_inputs_(from_inputs), pads_(std::move(pads)), value_(value) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    std::vector<int64_t> pads = pads_;
    const Tensor* value_tensor = nullptr;
    if (from_inputs_) {
      ASSIGN_OR_RETURN(const Tensor* p, RequireInput(ctx, 1, "pads"));
      ASSIGN_OR_RETURN(pads, ReadInt64s(*p, "pads"));
      value_tensor = ctx.input(2);
      if (value_tensor &&
          (value_tensor->dtype() != x->dtype() || value_tensor->num_elements() != 1)) {
        return absl::InvalidArgumentError("Pad constant_value must be a scalar of the data type");
      }
    }
    const int rank = x->rank();
    if (static_cast<int>(pads.size()) != 2 * rank) {
      return absl::InvalidArgumentError(
          absl::StrCat("Pad has ", pads.size(), " pads for an input of rank ", rank));
    }
    Shape out(rank);
    for (int d = 0; d < rank; ++d) {
      out[d] = x->dim(d) + pads[d] + pads[rank + d];
      if (out[d] < 0) return absl::InvalidArgumentError("Pad crops more than the input holds");
      if (mode_ != PadMode::kConstant && out[d] > 0 && x->dim(d) == 0) {
        return absl::InvalidArgumentError("reflect/edge Pad of an empty dimension");
      }
      if (mode_ == PadMode::kReflect && (pads[d] >= x->dim(d) || pads[rank + d] >= x->dim(d)) &&
          (pads[d] > 0 || pads[rank + d] > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("reflect Pad of ", std::max(pads[d], pads[rank + d]), " on axis ", d,
                         " needs an input dimension larger than that, got ", x->dim(d)));
      }
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x->dtype(), out));
    absl::Status status;
    DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      T fill{};
      if (value_tensor) {
        fill = value_tensor->data<T>()[0];
      } else if constexpr (!std::is_same_v<T, bool>) {
        fill = static_cast<T>(value_);
      }
      Fill<T>(*x, y, pads, fill);
    });
    return status;
  }

 private:
  template <typename T>
  void Fill(const Tensor& x, Tensor* y, const std::vector<int64_t>& pads, T fill) const {
    const int rank = x.rank();
    bool grow_only = mode_ == PadMode::kConstant && rank > 0;
    for (int64_t p : pads) grow_only = grow_only && p >= 0;
    if (grow_only) {
      // Fill, then copy each innermost input row to its place.
      T* yd = y->data<T>();
      std::fill(yd, yd + y->num_elements(), fill);
      const Shape& in = x.shape();
      const Shape& out = y->shape();
      const int64_t row = in[rank - 1];
      if (row == 0) return;
      const int64_t rows = x.num_elements() / row;
      std::vector<int64_t> idx(rank, 0);
      const T* xd = x.data<T>();
      for (int64_t r = 0; r < rows; ++r) {
        int64_t dst = 0;
        for (int d = 0; d < rank - 1; ++d) dst = dst * out[d] + idx[d] + pads[d];
        dst = dst * out[rank - 1] + pads[rank - 1];
        std::copy(xd + r * row, xd + (r + 1) * row, yd + dst);
        for (int d = rank - 2; d >= 0; --d) {
          if (++idx[d] < in[d]) break;
          idx[d] = 0;
        }
      }
      return;
    }
    const Shape& in = x.shape();
    const Shape& out = y->shape();
    std::vector<int64_t> in_strides(rank, 1);
    for (int d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * in[d + 1];
    const T* xd = x.data<T>();
    T* yd = y->data<T>();
    std::vector<int64_t> idx(rank, 0);
    for (int64_t o = 0; o < y->num_elements(); ++o) {
      int64_t src = 0;
      bool outside = false;
      for (int d = 0; d < rank; ++d) {
        int64_t i = idx[d] - pads[d];
        if (i < 0 || i >= in[d]) {
          if (mode_ == PadMode::kConstant) {
            outside = true;
            break;
          }
          if (mode_ == PadMode::kEdge) {
            i = i < 0 ? 0 : in[d] - 1;
          } else {
            i = i < 0 ? -i : 2 * (in[d] - 1) - i;
          }
        }
        src += i * in_strides[d];
      }
      yd[o] = outside ? fill : xd[src];
      for (int d = rank - 1; d >= 0; --d) {
        if (++idx[d] < out[d]) break;
        idx[d] = 0;
      }
    }
  }

  PadMode mode_;
  bool from_inputs_;
  std::vector<int64_t> pads_;
  float value_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreatePad(const KernelInfo& info) {
  ASSIGN_OR_RETURN(std::string mode_name, info.attrs().GetString("mode", "constant"));
  PadMode mode;
  if (mode_name == "constant") {
    mode = PadMode::kConstant;
  } else if (mode_name == "reflect") {
    mode = PadMode::kReflect;
  } else if (mode_name == "edge") {
    mode = PadMode::kEdge;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown Pad mode '", mode_name, "'"));
  }
  const bool from_inputs = info.opset() >= 11;
  std::vector<int64_t> pads;
  float value = 0;
  if (!from_inputs) {
    ASSIGN_OR_RETURN(pads, info.attrs().GetInts(info.opset() < 2 ? "paddings" : "pads", {}));
    ASSIGN_OR_RETURN(value, info.attrs().GetFloat("value", 0.0f));
  }
  return std::unique_ptr<Kernel>(new PadKernel(mode, from_inputs, std::move(pads), value));
}

}  // namespace inferd::models::cpu
