// ReduceMean over `axes` (all axes when absent), keeping reduced dims when keepdims=1.
#include <set>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class ReduceMeanKernel : public Kernel {
 public:
  ReduceMeanKernel(std::vector<int64_t> axes, bool keepdims)
      : axes_(std::move(axes)), keepdims_(keepdims) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "data"));
    const int rank = x->rank();
    std::vector<bool> reduce(rank, axes_.empty());
    for (int64_t a : axes_) {
      ASSIGN_OR_RETURN(int axis, NormalizeAxis(a, rank));
      reduce[axis] = true;
    }
    Shape out;
    for (int d = 0; d < rank; ++d) {
      if (!reduce[d]) {
        out.push_back(x->dim(d));
      } else if (keepdims_) {
        out.push_back(1);
      }
    }
    absl::Status status;
    const bool known = DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        status = UnsupportedType("ReduceMean", x->dtype());
      } else {
        auto y = ctx.Allocate(0, x->dtype(), out);
        if (!y.ok()) {
          status = y.status();
          return;
        }
        const int64_t n_out = (*y)->num_elements();
        std::vector<double> sum(n_out, 0.0);
        const int64_t count = n_out == 0 ? 0 : x->num_elements() / n_out;
        std::vector<int64_t> idx(rank, 0);
        const T* xd = x->data<T>();
        for (int64_t i = 0; i < x->num_elements(); ++i) {
          int64_t o = 0;
          for (int d = 0; d < rank; ++d) {
            if (!reduce[d]) o = o * x->dim(d) + idx[d];
          }
          sum[o] += static_cast<double>(static_cast<ComputeType<T>>(xd[i]));
          for (int d = rank - 1; d >= 0; --d) {
            if (++idx[d] < x->dim(d)) break;
            idx[d] = 0;
          }
        }
        T* yd = (*y)->template data<T>();
        for (int64_t o = 0; o < n_out; ++o) {
          yd[o] = static_cast<T>(static_cast<ComputeType<T>>(count > 0 ? sum[o] / count : 0.0));
        }
      }
    });
    if (!known) return UnsupportedType("ReduceMean", x->dtype());
    return status;
  }

 private:
  std::vector<int64_t> axes_;
  bool keepdims_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReduceMean(const KernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  ASSIGN_OR_RETURN(int64_t keepdims, info.attrs().GetInt("keepdims", 1));
  return std::unique_ptr<Kernel>(new ReduceMeanKernel(std::move(axes), keepdims != 0));
}

}  // namespace inferd::models::cpu
