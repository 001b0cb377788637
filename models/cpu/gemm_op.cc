// Gemm: Y = alpha * op(A) * op(B) + beta * C, with C unidirectionally broadcast to [M, N].
#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/gemm.h"
#include "models/cpu/kernels.h"
#include "models/cpu/small_rows_gemm.h"

namespace inferd::models::cpu {
namespace {

class GemmKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<GemmKernel>> Create(const KernelInfo& info) {
    auto k = std::unique_ptr<GemmKernel>(new GemmKernel());
    ASSIGN_OR_RETURN(k->alpha_, info.attrs().GetFloat("alpha", 1.0f));
    ASSIGN_OR_RETURN(k->beta_, info.attrs().GetFloat("beta", 1.0f));
    ASSIGN_OR_RETURN(int64_t ta, info.attrs().GetInt("transA", 0));
    ASSIGN_OR_RETURN(int64_t tb, info.attrs().GetInt("transB", 0));
    k->trans_a_ = ta != 0;
    k->trans_b_ = tb != 0;
    // Constant float weights (a fully connected layer) are laid out once for small batches,
    // unless the copy would be large (it sits beside the original).
    const Tensor* b = info.constant_input(1);
    if (b != nullptr && b->dtype() == DType::kFloat32 && b->rank() == 2 &&
        b->num_elements() <= kSmallRowsMaxWeights) {
      const int64_t kk = k->trans_b_ ? b->dim(1) : b->dim(0);
      const int64_t n = k->trans_b_ ? b->dim(0) : b->dim(1);
      k->small_rows_b_ =
          std::make_unique<KMajorMatrix>(b->data<float>(), b->dim(1), kk, n, k->trans_b_);
    }
    return k;
  }

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* a, RequireInput(ctx, 0, "A"));
    ASSIGN_OR_RETURN(const Tensor* b, RequireInput(ctx, 1, "B"));
    const Tensor* c = ctx.input(2);
    if (a->rank() != 2 || b->rank() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("Gemm needs 2-D A and B, got ",
                                                     ShapeToString(a->shape()), " and ",
                                                     ShapeToString(b->shape())));
    }
    if (a->dtype() != b->dtype() || (c && c->dtype() != a->dtype())) {
      return absl::InvalidArgumentError("Gemm inputs must have the same type");
    }
    if (a->dtype() == DType::kFloat32) return Run<float>(ctx, *a, *b, c);
    if (a->dtype() == DType::kFloat64) return Run<double>(ctx, *a, *b, c);
    return UnsupportedType("Gemm", a->dtype());
  }

 private:
  GemmKernel() = default;

  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor& a, const Tensor& b, const Tensor* c) const {
    const int64_t m = trans_a_ ? a.dim(1) : a.dim(0);
    const int64_t k = trans_a_ ? a.dim(0) : a.dim(1);
    const int64_t kb = trans_b_ ? b.dim(1) : b.dim(0);
    const int64_t n = trans_b_ ? b.dim(0) : b.dim(1);
    if (k != kb) {
      return absl::InvalidArgumentError(absl::StrCat("Gemm inner dimensions differ: op(A) is ", m,
                                                     "x", k, ", op(B) is ", kb, "x", n));
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, a.dtype(), {m, n}));
    T* yd = y->data<T>();
    const bool use_c = c != nullptr && beta_ != 0.0f;
    if (use_c) {
      // Broadcast C into Y, scaled by beta; the product then accumulates onto it.
      const Shape& cs = c->shape();
      if (cs.size() > 2) return absl::InvalidArgumentError("Gemm C must have rank <= 2");
      const int64_t cm = cs.size() == 2 ? cs[0] : 1;
      const int64_t cn = cs.empty() ? 1 : cs.back();
      if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) {
        return absl::InvalidArgumentError(absl::StrCat("Gemm C of shape ", ShapeToString(cs),
                                                       " does not broadcast to [", m, ",", n, "]"));
      }
      const T* cd = c->data<T>();
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          yd[i * n + j] = static_cast<T>(beta_) * cd[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        }
      }
    }
    const T* ad = a.data<T>();
    const T* bd = b.data<T>();
    const int64_t lda = a.dim(1), ldb = b.dim(1);
    const T alpha = static_cast<T>(alpha_);
    if constexpr (std::is_same_v<T, float>) {
      if (small_rows_b_ != nullptr && !trans_a_ && m <= kSmallRowsMax && small_rows_b_->k() == k &&
          small_rows_b_->n() == n) {
        // Columns in blocks of 64 across the pool (a batch this small has few rows to split).
        const int64_t blocks = (n + 63) / 64;
        ctx.pool().ParallelFor(blocks, 1, [&](int64_t b0, int64_t b1) {
          SmallRowsGemm(m, b0 * 64, std::min(n, b1 * 64), alpha, ad, lda, *small_rows_b_, use_c, yd,
                        n);
        });
        return absl::OkStatus();
      }
    }
    // Split the rows of Y (or its columns when there is one row) across the pool.
    if (m >= 2 * ctx.pool().num_threads()) {
      ctx.pool().ParallelFor(m, 16, [&](int64_t r0, int64_t r1) {
        const T* a0 = trans_a_ ? ad + r0 : ad + r0 * lda;
        Gemm<T>(trans_a_, trans_b_, r1 - r0, n, k, alpha, a0, lda, bd, ldb, use_c, yd + r0 * n, n);
      });
    } else {
      ctx.pool().ParallelFor(n, 64, [&](int64_t c0, int64_t c1) {
        const T* b0 = trans_b_ ? bd + c0 * ldb : bd + c0;
        Gemm<T>(trans_a_, trans_b_, m, c1 - c0, k, alpha, ad, lda, b0, ldb, use_c, yd + c0, n);
      });
    }
    return absl::OkStatus();
  }

  // Batches up to this many rows take SmallRowsGemm when the weights are constant and have
  // at most kSmallRowsMaxWeights elements (16 MiB: a classifier of 4096 inputs and 1000
  // outputs has 4.1 M).
  static constexpr int64_t kSmallRowsMax = 32;
  static constexpr int64_t kSmallRowsMaxWeights = int64_t{4} << 20;

  float alpha_ = 1, beta_ = 1;
  bool trans_a_ = false, trans_b_ = false;
  std::unique_ptr<KMajorMatrix> small_rows_b_;  // constant float B, K-major
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateGemm(const KernelInfo& info) {
  return MakeKernel<GemmKernel>(info);
}

}  // namespace inferd::models::cpu
