// Clip: bounds from attributes (opset < 11) or optional scalar inputs (opset >= 11).
#include <algorithm>
#include <limits>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class ClipKernel : public Kernel {
 public:
  ClipKernel(bool bounds_from_inputs, float min_attr, float max_attr)
      : bounds_from_inputs_(bounds_from_inputs), min_attr_(min_attr), max_attr_(max_attr) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "input"));
    absl::Status status;
    DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      using C = ComputeType<T>;
      if constexpr (std::is_same_v<T, bool>) {
        status = UnsupportedType("Clip", x->dtype());
      } else {
        C lo = std::numeric_limits<C>::lowest();
        C hi = std::numeric_limits<C>::max();
        if constexpr (std::is_floating_point_v<C>) {
          lo = -std::numeric_limits<C>::infinity();
          hi = std::numeric_limits<C>::infinity();
        }
        if (!bounds_from_inputs_) {
          lo = static_cast<C>(std::max<double>(min_attr_, static_cast<double>(lo)));
          hi = static_cast<C>(std::min<double>(max_attr_, static_cast<double>(hi)));
        } else {
          for (int k = 1; k <= 2; ++k) {
            const Tensor* b = ctx.input(k);
            if (b == nullptr) continue;
            if (b->dtype() != x->dtype() || b->num_elements() != 1) {
              status = absl::InvalidArgumentError(
                  absl::StrCat("Clip ", k == 1 ? "min" : "max",
                               " must be a scalar of the input's type ", DTypeName(x->dtype())));
              return;
            }
            (k == 1 ? lo : hi) = static_cast<C>(b->data<T>()[0]);
          }
        }
        status = UnaryMap<true>(ctx, "Clip", [lo, hi](auto v) {
          return std::min(static_cast<decltype(v)>(hi), std::max(static_cast<decltype(v)>(lo), v));
        });
      }
    });
    return status;
  }

 private:
  bool bounds_from_inputs_;
  float min_attr_;
  float max_attr_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateClip(const KernelInfo& info) {
  const bool from_inputs = info.opset() >= 11;
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  if (!from_inputs) {
    ASSIGN_OR_RETURN(lo, info.attrs().GetFloat("min", std::numeric_limits<float>::lowest()));
    ASSIGN_OR_RETURN(hi, info.attrs().GetFloat("max", std::numeric_limits<float>::max()));
  }
  return std::unique_ptr<Kernel>(new ClipKernel(from_inputs, lo, hi));
}

}  // namespace inferd::models::cpu
