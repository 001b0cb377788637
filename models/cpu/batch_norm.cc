// BatchNormalization: inference form y = scale * (x - mean) / sqrt(var + eps) + B per channel,
// and training form (opset 14+, training_mode=1) with batch statistics and running outputs.
#include <cmath>
#include <vector>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class BatchNormKernel : public Kernel {
 public:
  BatchNormKernel(float epsilon, float momentum, bool training)
      : epsilon_(epsilon), momentum_(momentum), training_(training) {}

  absl::Status Compute(KernelContext& ctx) const override {
    const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
    const Tensor* in[5];
    for (int i = 0; i < 5; ++i) {
      ASSIGN_OR_RETURN(in[i], RequireInput(ctx, i, names[i]));
    }
    const Tensor& x = *in[0];
    if (x.rank() < 2) {
      return absl::InvalidArgumentError("BatchNormalization needs an input of rank >= 2");
    }
    const int64_t n = x.dim(0), c = x.dim(1);
    const int64_t spatial = n * c == 0 ? 0 : x.num_elements() / (n * c);
    for (int i = 1; i < 5; ++i) {
      if (in[i]->num_elements() != c || in[i]->dtype() != x.dtype()) {
        return absl::InvalidArgumentError(
            absl::StrCat("BatchNormalization ", names[i], " must hold ", c, " values of type ",
                         DTypeName(x.dtype()), ", got ", ShapeToString(in[i]->shape()), " ",
                         DTypeName(in[i]->dtype())));
      }
    }
    absl::Status status;
    const bool known = DispatchDType(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!kIsFloating<T>) {
        status = UnsupportedType("BatchNormalization", x.dtype());
      } else {
        status = Run<T>(ctx, in, n, c, spatial);
      }
    });
    if (!known) return UnsupportedType("BatchNormalization", x.dtype());
    return status;
  }

 private:
  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor* const* in, int64_t n, int64_t c,
                   int64_t spatial) const {
    const Tensor& x = *in[0];
    const T* xd = x.data<T>();
    std::vector<double> mean(c), var(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      mean[ch] = static_cast<double>(in[3]->data<T>()[ch]);
      var[ch] = static_cast<double>(in[4]->data<T>()[ch]);
    }
    std::vector<double> batch_mean(c, 0), batch_var(c, 0);
    if (training_) {
      const double count = static_cast<double>(n * spatial);
      for (int64_t ch = 0; ch < c; ++ch) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; ++i) {
          const T* p = xd + (i * c + ch) * spatial;
          for (int64_t j = 0; j < spatial; ++j) s += static_cast<double>(p[j]);
        }
        const double mu = count > 0 ? s / count : 0;
        for (int64_t i = 0; i < n; ++i) {
          const T* p = xd + (i * c + ch) * spatial;
          for (int64_t j = 0; j < spatial; ++j) {
            const double d = static_cast<double>(p[j]) - mu;
            s2 += d * d;
          }
        }
        batch_mean[ch] = mu;
        batch_var[ch] = count > 0 ? s2 / count : 0;
      }
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x.dtype(), x.shape()));
    T* yd = y->data<T>();
    std::vector<double> a(c), b(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      const double mu = training_ ? batch_mean[ch] : mean[ch];
      const double v = training_ ? batch_var[ch] : var[ch];
      a[ch] = static_cast<double>(in[1]->data<T>()[ch]) / std::sqrt(v + epsilon_);
      b[ch] = static_cast<double>(in[2]->data<T>()[ch]) - mu * a[ch];
    }
    ctx.pool().ParallelFor(n * c, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t ch = p % c;
        const T* xp = xd + p * spatial;
        T* yp = yd + p * spatial;
        using Cmp = ComputeType<T>;
        const Cmp sa = static_cast<Cmp>(a[ch]), sb = static_cast<Cmp>(b[ch]);
        for (int64_t j = 0; j < spatial; ++j)
          yp[j] = static_cast<T>(static_cast<Cmp>(xp[j]) * sa + sb);
      }
    });
    if (training_) {
      for (int out = 1; out <= 2 && out < ctx.num_outputs(); ++out) {
        ASSIGN_OR_RETURN(Tensor * r, ctx.Allocate(out, x.dtype(), {c}));
        for (int64_t ch = 0; ch < c; ++ch) {
          const double running = out == 1 ? mean[ch] : var[ch];
          const double current = out == 1 ? batch_mean[ch] : batch_var[ch];
          r->data<T>()[ch] = static_cast<T>(running * momentum_ + current * (1.0 - momentum_));
        }
      }
    }
    return absl::OkStatus();
  }

  float epsilon_;
  float momentum_;
  bool training_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateBatchNormalization(const KernelInfo& info) {
  ASSIGN_OR_RETURN(float epsilon, info.attrs().GetFloat("epsilon", 1e-5f));
  ASSIGN_OR_RETURN(float momentum, info.attrs().GetFloat("momentum", 0.9f));
  ASSIGN_OR_RETURN(int64_t training, info.attrs().GetInt("training_mode", 0));
  if (info.opset() < 9) {
    ASSIGN_OR_RETURN(int64_t spatial, info.attrs().GetInt("spatial", 1));
    if (spatial != 1) {
      return absl::UnimplementedError("BatchNormalization with spatial=0 is not supported");
    }
  }
  if (info.opset() < 14) {
    // Before opset 14 the extra outputs were training-only statistics; inference ignores them.
    training = 0;
  }
  return std::unique_ptr<Kernel>(new BatchNormKernel(epsilon, momentum, training != 0));
}

}  // namespace inferd::models::cpu
