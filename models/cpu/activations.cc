// Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish: attribute-parameterised unary maps.
#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

class ReluKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    return UnaryMap</*kAllowInt=*/true>(
        ctx, "Relu", [](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); });
  }
};

class LeakyReluKernel : public Kernel {
 public:
  explicit LeakyReluKernel(float alpha) : alpha_(alpha) {}
  absl::Status Compute(KernelContext& ctx) const override {
    const float alpha = alpha_;
    return UnaryMap<false>(ctx, "LeakyRelu", [alpha](auto x) {
      using C = decltype(x);
      return x >= C(0) ? x : static_cast<C>(alpha) * x;
    });
  }

 private:
  float alpha_;
};

class SigmoidKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    return UnaryMap<false>(ctx, "Sigmoid", [](auto x) {
      using C = decltype(x);
      // Stable for large |x|: never exponentiates a large positive number.
      if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
      const C e = std::exp(x);
      return e / (C(1) + e);
    });
  }
};

class TanhKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    return UnaryMap<false>(ctx, "Tanh", [](auto x) { return std::tanh(x); });
  }
};

class HardSigmoidKernel : public Kernel {
 public:
  HardSigmoidKernel(float alpha, float beta) : alpha_(alpha), beta_(beta) {}
  absl::Status Compute(KernelContext& ctx) const override {
    const float alpha = alpha_, beta = beta_;
    return UnaryMap<false>(ctx, "HardSigmoid", [alpha, beta](auto x) {
      using C = decltype(x);
      return std::max(C(0), std::min(C(1), static_cast<C>(alpha) * x + static_cast<C>(beta)));
    });
  }

 private:
  float alpha_, beta_;
};

class HardSwishKernel : public Kernel {
 public:
  absl::Status Compute(KernelContext& ctx) const override {
    return UnaryMap<false>(ctx, "HardSwish", [](auto x) {
      using C = decltype(x);
      return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
    });
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateRelu(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new ReluKernel());
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateLeakyRelu(const KernelInfo& info) {
  ASSIGN_OR_RETURN(float alpha, info.attrs().GetFloat("alpha", 0.01f));
  return std::unique_ptr<Kernel>(new LeakyReluKernel(alpha));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateSigmoid(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new SigmoidKernel());
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateTanh(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new TanhKernel());
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateHardSigmoid(const KernelInfo& info) {
  ASSIGN_OR_RETURN(float alpha, info.attrs().GetFloat("alpha", 0.2f));
  ASSIGN_OR_RETURN(float beta, info.attrs().GetFloat("beta", 0.5f));
  return std::unique_ptr<Kernel>(new HardSigmoidKernel(alpha, beta));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateHardSwish(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new HardSwishKernel());
}

}  // namespace inferd::models::cpu
