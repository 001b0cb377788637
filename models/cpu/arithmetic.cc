// Add, Sub, Mul, Div with numpy broadcasting over every numeric type. Add may carry a fused
// Relu/Clip from the planner.
#include <algorithm>
#include <limits>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"
#include "models/planner.h"

namespace inferd::models::cpu {
namespace {

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

const char* OpName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "Add";
    case BinaryOp::kSub:
      return "Sub";
    case BinaryOp::kMul:
      return "Mul";
    case BinaryOp::kDiv:
      return "Div";
  }
  return "?";
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(BinaryOp op, bool fused_clip, float lo, float hi)
      : op_(op), fused_clip_(fused_clip), lo_(lo), hi_(hi) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* a, RequireInput(ctx, 0, "A"));
    ASSIGN_OR_RETURN(const Tensor* b, RequireInput(ctx, 1, "B"));
    if (a->dtype() != b->dtype()) {
      return absl::InvalidArgumentError(absl::StrCat(OpName(op_), " inputs have different types ",
                                                     DTypeName(a->dtype()), " and ",
                                                     DTypeName(b->dtype())));
    }
    absl::Status status;
    const bool known = DispatchDType(a->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        status = UnsupportedType(OpName(op_), a->dtype());
      } else {
        status = Run<T>(ctx, *a, *b);
      }
    });
    if (!known) return UnsupportedType(OpName(op_), a->dtype());
    return status;
  }

 private:
  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor& a, const Tensor& b) const {
    using C = ComputeType<T>;
    switch (op_) {
      case BinaryOp::kAdd:
        if (fused_clip_) {
          const float lo = lo_, hi = hi_;
          if constexpr (std::is_same_v<C, float>) {
            return BroadcastBinary<T>(
                ctx, a, b, [lo, hi](C x, C y) { return std::min(hi, std::max(lo, x + y)); });
          } else {
            return BroadcastBinary<T>(ctx, a, b, [lo, hi](C x, C y) {
              const double r = static_cast<double>(static_cast<C>(x + y));
              return static_cast<C>(std::min<double>(hi, std::max<double>(lo, r)));
            });
          }
        }
        return BroadcastBinary<T>(ctx, a, b, [](C x, C y) { return static_cast<C>(x + y); });
      case BinaryOp::kSub:
        return BroadcastBinary<T>(ctx, a, b, [](C x, C y) { return static_cast<C>(x - y); });
      case BinaryOp::kMul:
        return BroadcastBinary<T>(ctx, a, b, [](C x, C y) { return static_cast<C>(x * y); });
      case BinaryOp::kDiv:
        if constexpr (std::is_integral_v<C>) {
          // Integer division by zero (or INT_MIN / -1) would trap: reject it as bad input.
          const T* pb = b.data<T>();
          for (int64_t i = 0; i < b.num_elements(); ++i) {
            if (pb[i] == 0) return absl::InvalidArgumentError("integer division by zero in Div");
            if constexpr (std::is_signed_v<C>) {
              if (pb[i] == -1) {
                const T* pa = a.data<T>();
                for (int64_t j = 0; j < a.num_elements(); ++j) {
                  if (pa[j] == std::numeric_limits<T>::min()) {
                    return absl::InvalidArgumentError("integer overflow in Div");
                  }
                }
              }
            }
          }
        }
        return BroadcastBinary<T>(ctx, a, b, [](C x, C y) { return static_cast<C>(x / y); });
    }
    return absl::InternalError("unknown binary op");
  }

  BinaryOp op_;
  bool fused_clip_;
  float lo_, hi_;
};

absl::StatusOr<std::unique_ptr<Kernel>> CreateBinary(const KernelInfo& info, BinaryOp op) {
  if (info.opset() < 7 && info.attrs().Has("broadcast")) {
    return absl::UnimplementedError("legacy broadcast attribute (opset < 7) is not supported");
  }
  const bool fused = info.attrs().Has(kFusedActivation);
  float lo = 0, hi = 0;
  if (fused) {
    ASSIGN_OR_RETURN(lo, info.attrs().GetFloat(kFusedClipMin, 0));
    ASSIGN_OR_RETURN(hi, info.attrs().GetFloat(kFusedClipMax, 0));
  }
  return std::unique_ptr<Kernel>(new BinaryKernel(op, fused, lo, hi));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateAdd(const KernelInfo& info) {
  return CreateBinary(info, BinaryOp::kAdd);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateSub(const KernelInfo& info) {
  return CreateBinary(info, BinaryOp::kSub);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateMul(const KernelInfo& info) {
  return CreateBinary(info, BinaryOp::kMul);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateDiv(const KernelInfo& info) {
  return CreateBinary(info, BinaryOp::kDiv);
}

}  // namespace inferd::models::cpu
