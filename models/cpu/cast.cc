// Cast between every supported numeric type and bool (float16 through float).
#include <cmath>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

template <typename To, typename From>
To Convert(From v) {
  using C = ComputeType<From>;
  const C c = static_cast<C>(v);
  if constexpr (std::is_same_v<To, bool>) {
    return c != C(0);
  } else if constexpr (std::is_same_v<To, Half>) {
    return Half(static_cast<float>(c));
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<C>) {
    // Out-of-range and NaN float->int conversions are undefined in C++; saturate instead.
    if (std::isnan(c)) return To(0);
    if (c <= static_cast<C>(std::numeric_limits<To>::lowest()))
      return std::numeric_limits<To>::lowest();
    if (c >= static_cast<C>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(c);
  } else {
    return static_cast<To>(c);
  }
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(DType to) : to_(to) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "input"));
    if (!IsSupportedDType(x->dtype())) return UnsupportedType("Cast", x->dtype());
    if (x->dtype() == to_) {
      ctx.Set(0, *x);
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, to_, x->shape()));
    const int64_t n = x->num_elements();
    DispatchDType(x->dtype(), [&](auto from_tag) {
      using From = decltype(from_tag);
      DispatchDType(to_, [&](auto to_tag) {
        using To = decltype(to_tag);
        const From* in = x->data<From>();
        To* out = y->data<To>();
        for (int64_t i = 0; i < n; ++i) out[i] = Convert<To, From>(in[i]);
      });
    });
    return absl::OkStatus();
  }

 private:
  DType to_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCast(const KernelInfo& info) {
  if (!info.attrs().Has("to")) return absl::InvalidArgumentError("missing attribute 'to'");
  ASSIGN_OR_RETURN(int64_t to, info.attrs().GetInt("to", 0));
  const DType dtype = DTypeFromOnnx(static_cast<int>(to));
  if (!IsSupportedDType(dtype)) {
    return absl::UnimplementedError(
        absl::StrCat("Cast to ", DTypeName(dtype), " is not supported"));
  }
  return std::unique_ptr<Kernel>(new CastKernel(dtype));
}

}  // namespace inferd::models::cpu
