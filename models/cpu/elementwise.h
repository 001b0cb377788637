// Element-wise loops shared by the unary and binary kernels: dtype dispatch, float16 through
// float, numpy broadcasting and intra-op parallelism for large tensors.
#ifndef INFERD_MODELS_CPU_ELEMENTWISE_H_
#define INFERD_MODELS_CPU_ELEMENTWISE_H_

#include <type_traits>

#include "models/cpu/kernel_util.h"

namespace inferd::models::cpu {

// The type arithmetic is done in: float for Half, T otherwise.
template <typename T>
using ComputeType = std::conditional_t<std::is_same_v<T, Half>, float, T>;

// Elements per parallel chunk of a memory-bound loop.
inline constexpr int64_t kElementwiseChunk = 1 << 15;

template <typename T>
constexpr bool kIsFloating =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, Half>;

// y = fn(x) element-wise over `x`, same shape; fn takes and returns ComputeType<T>.
// kAllowInt: whether integer inputs are accepted (bool never is).
template <bool kAllowInt, typename Fn>
absl::Status UnaryMap(KernelContext& ctx, const char* op, Fn fn) {
  const Tensor* x = ctx.input(0);
  if (x == nullptr) return absl::InvalidArgumentError(absl::StrCat(op, " needs an input"));
  absl::Status status;
  const bool known = DispatchDType(x->dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      status = UnsupportedType(op, x->dtype());
    } else {
      if constexpr (!kIsFloating<T> && !kAllowInt) {
        status = UnsupportedType(op, x->dtype());
        return;
      } else {
        auto y = ctx.Allocate(0, x->dtype(), x->shape());
        if (!y.ok()) {
          status = y.status();
          return;
        }
        const T* in = x->data<T>();
        T* out = (*y)->template data<T>();
        ctx.pool().ParallelFor(x->num_elements(), kElementwiseChunk, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            out[i] = static_cast<T>(fn(static_cast<ComputeType<T>>(in[i])));
          }
        });
      }
    }
  });
  if (!known) return UnsupportedType(op, x->dtype());
  return status;
}

// out[i] = fn(a[ia], b[ib]) with numpy broadcasting of a and b; T is the element type of both
// inputs and the output. fn takes and returns ComputeType<T>; `check(bv)` may reject a right
// operand (integer division by zero) before anything is written.
template <typename T, typename Fn>
absl::Status BroadcastBinary(KernelContext& ctx, const Tensor& a, const Tensor& b, Fn fn) {
  auto out_shape = BroadcastShapes(a.shape(), b.shape());
  if (!out_shape.ok()) return out_shape.status();
  auto y = ctx.Allocate(0, a.dtype(), *out_shape);
  if (!y.ok()) return y.status();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* out = (*y)->template data<T>();
  const int64_t n = (*y)->num_elements();
  using C = ComputeType<T>;
  auto op = [&](T x, T z) { return static_cast<T>(fn(static_cast<C>(x), static_cast<C>(z))); };
  if (a.shape() == b.shape()) {
    ctx.pool().ParallelFor(n, kElementwiseChunk, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = op(pa[i], pb[i]);
    });
    return absl::OkStatus();
  }
  if (b.num_elements() == 1) {
    const T bv = pb[0];
    ctx.pool().ParallelFor(n, kElementwiseChunk, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = op(pa[i], bv);
    });
    return absl::OkStatus();
  }
  if (a.num_elements() == 1) {
    const T av = pa[0];
    ctx.pool().ParallelFor(n, kElementwiseChunk, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) out[i] = op(av, pb[i]);
    });
    return absl::OkStatus();
  }
  if (n == 0) return absl::OkStatus();
  const Shape& shape = *out_shape;
  const int rank = static_cast<int>(shape.size());
  const std::vector<int64_t> sa = BroadcastStrides(a.shape(), shape);
  const std::vector<int64_t> sb = BroadcastStrides(b.shape(), shape);
  const int64_t inner = shape[rank - 1];
  const int64_t ia = sa[rank - 1];
  const int64_t ib = sb[rank - 1];
  const int64_t rows = n / inner;
  ctx.pool().ParallelFor(rows, std::max<int64_t>(1, kElementwiseChunk / inner),
                         [&](int64_t r0, int64_t r1) {
                           for (int64_t r = r0; r < r1; ++r) {
                             // Offsets of row r in a and b.
                             int64_t oa = 0, ob = 0, rem = r;
                             for (int d = rank - 2; d >= 0; --d) {
                               const int64_t idx = rem % shape[d];
                               rem /= shape[d];
                               oa += idx * sa[d];
                               ob += idx * sb[d];
                             }
                             T* o = out + r * inner;
                             const T* xa = pa + oa;
                             const T* xb = pb + ob;
                             if (ia == 1 && ib == 1) {
                               for (int64_t i = 0; i < inner; ++i) o[i] = op(xa[i], xb[i]);
                             } else if (ia == 1) {
                               const T v = xb[0];
                               for (int64_t i = 0; i < inner; ++i) o[i] = op(xa[i], v);
                             } else if (ib == 1) {
                               const T v = xa[0];
                               for (int64_t i = 0; i < inner; ++i) o[i] = op(v, xb[i]);
                             } else {
                               for (int64_t i = 0; i < inner; ++i)
                                 o[i] = op(xa[i * ia], xb[i * ib]);
                             }
                           }
                         });
  return absl::OkStatus();
}

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_ELEMENTWISE_H_
