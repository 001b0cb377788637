// Softmax and LogSoftmax. Opset < 13 coerces the input to 2-D at `axis` (default 1) and
// normalises each row; opset >= 13 normalises along `axis` (default -1).
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(bool log, bool coerce_2d, int64_t axis)
      : log_(log), coerce_2d_(coerce_2d), axis_(axis) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "input"));
    const int rank = x->rank();
    if (rank == 0) return absl::InvalidArgumentError("Softmax needs an input of rank >= 1");
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, rank));
    // Rows of `len` elements, `stride` apart element to element, `outer` x `inner` of them.
    int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x->dim(d);
    if (coerce_2d_) {
      for (int d = axis; d < rank; ++d) len *= x->dim(d);
    } else {
      len = x->dim(axis);
      for (int d = axis + 1; d < rank; ++d) inner *= x->dim(d);
    }
    absl::Status status;
    const bool known = DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!kIsFloating<T>) {
        status = UnsupportedType(log_ ? "LogSoftmax" : "Softmax", x->dtype());
      } else {
        using C = ComputeType<T>;
        auto y = ctx.Allocate(0, x->dtype(), x->shape());
        if (!y.ok()) {
          status = y.status();
          return;
        }
        const T* xd = x->data<T>();
        T* yd = (*y)->template data<T>();
        ctx.pool().ParallelFor(outer * inner, 64, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t base = (r / inner) * len * inner + r % inner;
            C mx = -std::numeric_limits<C>::infinity();
            for (int64_t i = 0; i < len; ++i)
              mx = std::max(mx, static_cast<C>(xd[base + i * inner]));
            C sum = 0;
            for (int64_t i = 0; i < len; ++i) {
              sum += std::exp(static_cast<C>(xd[base + i * inner]) - mx);
            }
            if (log_) {
              const C lse = std::log(sum);
              for (int64_t i = 0; i < len; ++i) {
                yd[base + i * inner] =
                    static_cast<T>(static_cast<C>(xd[base + i * inner]) - mx - lse);
              }
            } else {
              for (int64_t i = 0; i < len; ++i) {
                yd[base + i * inner] =
                    static_cast<T>(std::exp(static_cast<C>(xd[base + i * inner]) - mx) / sum);
              }
            }
          }
        });
      }
    });
    if (!known) return UnsupportedType("Softmax", x->dtype());
    return status;
  }

 private:
  bool log_;
  bool coerce_2d_;
  int64_t axis_;
};

absl::StatusOr<std::unique_ptr<Kernel>> Create(const KernelInfo& info, bool log) {
  const bool coerce = info.opset() < 13;
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", coerce ? 1 : -1));
  return std::unique_ptr<Kernel>(new SoftmaxKernel(log, coerce, axis));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateSoftmax(const KernelInfo& info) {
  return Create(info, false);
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateLogSoftmax(const KernelInfo& info) {
  return Create(info, true);
}

}  // namespace inferd::models::cpu
