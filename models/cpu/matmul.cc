// MatMul with numpy semantics: 1-D operands are promoted and the promoted dimension removed,
// batch dimensions broadcast.
#include "common/status_macros.h"
#include "models/cpu/gemm.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class MatMulKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* a, RequireInput(ctx, 0, "A"));
    ASSIGN_OR_RETURN(const Tensor* b, RequireInput(ctx, 1, "B"));
    if (a->dtype() != b->dtype()) {
      return absl::InvalidArgumentError("MatMul inputs must have the same type");
    }
    if (a->rank() == 0 || b->rank() == 0) {
      return absl::InvalidArgumentError("MatMul inputs must have rank >= 1");
    }
    if (a->dtype() == DType::kFloat32) return Run<float>(ctx, *a, *b);
    if (a->dtype() == DType::kFloat64) return Run<double>(ctx, *a, *b);
    return UnsupportedType("MatMul", a->dtype());
  }

 private:
  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor& a, const Tensor& b) const {
    Shape as = a.shape(), bs = b.shape();
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const int64_t m = as[as.size() - 2], k = as.back();
    const int64_t kb = bs[bs.size() - 2], n = bs.back();
    if (k != kb) {
      return absl::InvalidArgumentError(absl::StrCat("MatMul shapes ", ShapeToString(a.shape()),
                                                     " and ", ShapeToString(b.shape()),
                                                     " are not aligned"));
    }
    const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    ASSIGN_OR_RETURN(Shape batch, BroadcastShapes(a_batch, b_batch));
    Shape out = batch;
    if (!a_vec) out.push_back(m);
    if (!b_vec) out.push_back(n);
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, a.dtype(), out));
    const int64_t batches = NumElements(batch);
    const std::vector<int64_t> sa = BroadcastStrides(a_batch, batch);
    const std::vector<int64_t> sb = BroadcastStrides(b_batch, batch);
    const T* ad = a.data<T>();
    const T* bd = b.data<T>();
    T* yd = y->data<T>();
    auto offset = [&](int64_t i, const std::vector<int64_t>& strides) {
      int64_t off = 0;
      for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
        off += (i % batch[d]) * strides[d];
        i /= batch[d];
      }
      return off;
    };
    if (batches >= ctx.pool().num_threads()) {
      ctx.pool().ParallelFor(batches, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          Gemm<T>(false, false, m, n, k, T(1), ad + offset(i, sa) * m * k, k,
                  bd + offset(i, sb) * k * n, n, false, yd + i * m * n, n);
        }
      });
    } else {
      for (int64_t i = 0; i < batches; ++i) {
        const T* ai = ad + offset(i, sa) * m * k;
        const T* bi = bd + offset(i, sb) * k * n;
        T* yi = yd + i * m * n;
        ctx.pool().ParallelFor(m, 16, [&](int64_t r0, int64_t r1) {
          Gemm<T>(false, false, r1 - r0, n, k, T(1), ai + r0 * k, k, bi, n, false, yi + r0 * n, n);
        });
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateMatMul(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new MatMulKernel());
}

}  // namespace inferd::models::cpu
