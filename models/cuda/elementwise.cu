#include <cuda_fp16.h>

#include <cuda/std/limits>
#include <type_traits>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/device_math.cuh"
#include "models/cuda/elementwise.h"

namespace inferd::models::cuda {
namespace {

template <typename T>
__global__ void UnaryKernel(const T* x, T* y, int64_t n, UnaryOp op, float alpha, float beta) {
  INFERD_GRID_STRIDE(i, n) {
    const float v = ToFloat(x[i]);
    float r = v;
    switch (op) {
      case UnaryOp::kRelu:
        r = v > 0.0f ? v : 0.0f;
        break;
      case UnaryOp::kLeakyRelu:
        r = v >= 0.0f ? v : alpha * v;
        break;
      case UnaryOp::kClip:
        r = fminf(fmaxf(v, alpha), beta);
        break;
      case UnaryOp::kSigmoid:
        r = 1.0f / (1.0f + __expf(-v));
        break;
      case UnaryOp::kTanh:
        r = tanhf(v);
        break;
      case UnaryOp::kHardSigmoid:
        r = fminf(fmaxf(alpha * v + beta, 0.0f), 1.0f);
        break;
      case UnaryOp::kHardSwish:
        r = v * fminf(fmaxf(v / 6.0f + 0.5f, 0.0f), 1.0f);
        break;
    }
    y[i] = FromFloat<T>(r);
  }
}

// Strides of an operand broadcast to the output's rank (0 where it is broadcast).
struct Broadcast {
  int rank;
  int64_t out[8];
  int64_t a[8];
  int64_t b[8];
};

template <typename T>
__device__ __forceinline__ T Apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return b == T(0) ? T(0) : a / b;
  }
  return a;
}

template <typename T>
__global__ void BinaryIntKernel(const T* a, const T* b, T* y, int64_t n, Broadcast s, BinaryOp op,
                                bool clamp, float lo, float hi) {
  INFERD_GRID_STRIDE(i, n) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t c = rest % s.out[d];
      rest /= s.out[d];
      ia += c * s.a[d];
      ib += c * s.b[d];
    }
    T r = Apply(op, a[ia], b[ib]);
    if (clamp) {
      const double v = static_cast<double>(r);
      if (v < lo) r = static_cast<T>(ceil(static_cast<double>(lo)));
      if (v > hi) r = static_cast<T>(floor(static_cast<double>(hi)));
    }
    y[i] = r;
  }
}

template <typename T>
__global__ void BinaryFloatKernel(const T* a, const T* b, T* y, int64_t n, Broadcast s, BinaryOp op,
                                  bool clamp, float lo, float hi) {
  INFERD_GRID_STRIDE(i, n) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int64_t c = rest % s.out[d];
      rest /= s.out[d];
      ia += c * s.a[d];
      ib += c * s.b[d];
    }
    const float x = ToFloat(a[ia]), z = ToFloat(b[ib]);
    float r;
    switch (op) {
      case BinaryOp::kAdd:
        r = x + z;
        break;
      case BinaryOp::kSub:
        r = x - z;
        break;
      case BinaryOp::kMul:
        r = x * z;
        break;
      default:
        r = x / z;
        break;
    }
    y[i] = FromFloat<T>(clamp ? fminf(fmaxf(r, lo), hi) : r);
  }
}

// Same-shape operands: no index arithmetic.
template <typename T>
__global__ void BinaryFloatFlatKernel(const T* a, const T* b, T* y, int64_t n, BinaryOp op,
                                      bool clamp, float lo, float hi) {
  INFERD_GRID_STRIDE(i, n) {
    const float x = ToFloat(a[i]), z = ToFloat(b[i]);
    float r = op == BinaryOp::kAdd   ? x + z
              : op == BinaryOp::kSub ? x - z
              : op == BinaryOp::kMul ? x * z
                                     : x / z;
    y[i] = FromFloat<T>(clamp ? fminf(fmaxf(r, lo), hi) : r);
  }
}

// Element conversion as the CPU's Cast does it (models/cpu/cast.cc): float16 goes through
// float32, bool is "not zero", and float -> integer saturates, with NaN giving 0.
template <typename To, typename From>
struct Convert {
  __device__ static To Do(From v) {
    using C = typename std::conditional<std::is_same<From, __half>::value, float, From>::type;
    C c;
    if constexpr (std::is_same<From, __half>::value) {
      c = __half2float(v);
    } else {
      c = v;
    }
    if constexpr (std::is_same<To, bool>::value) {
      return c != C(0);
    } else if constexpr (std::is_same<To, __half>::value) {
      return __float2half(static_cast<float>(c));
    } else if constexpr (std::is_integral<To>::value && std::is_floating_point<C>::value) {
      if (c != c) return To(0);
      if (c <= static_cast<C>(::cuda::std::numeric_limits<To>::lowest())) {
        return ::cuda::std::numeric_limits<To>::lowest();
      }
      if (c >= static_cast<C>(::cuda::std::numeric_limits<To>::max())) {
        return ::cuda::std::numeric_limits<To>::max();
      }
      return static_cast<To>(c);
    } else {
      return static_cast<To>(c);
    }
  }
};

template <typename From, typename To>
__global__ void CastKernel(const From* x, To* y, int64_t n) {
  INFERD_GRID_STRIDE(i, n) { y[i] = Convert<To, From>::Do(x[i]); }
}

template <typename T>
__global__ void EpilogueKernel(T* y, const T* bias, const T* residual, int64_t n, int64_t channels,
                               int64_t spatial, bool clamp, float lo, float hi) {
  INFERD_GRID_STRIDE(i, n) {
    float v = ToFloat(y[i]);
    if (bias) v += ToFloat(bias[(i / spatial) % channels]);
    if (residual) v += ToFloat(residual[i]);
    y[i] = FromFloat<T>(clamp ? fminf(fmaxf(v, lo), hi) : v);
  }
}

template <typename T>
__global__ void AffineKernel(const T* x, T* y, const float* scale, const float* shift, int64_t n,
                             int64_t channels, int64_t spatial) {
  INFERD_GRID_STRIDE(i, n) {
    const int64_t c = (i / spatial) % channels;
    y[i] = FromFloat<T>(ToFloat(x[i]) * scale[c] + shift[c]);
  }
}

template <typename T>
__global__ void FillKernel(T* y, Dims8 values) {
  const int i = threadIdx.x;
  if (i < values.rank) y[i] = static_cast<T>(values.d[i]);
}

// Whether [lo, hi] bounds anything: without a fused activation nothing is clamped, so NaN stays
// NaN as on the CPU.
bool Clamps(float lo, float hi) { return !(std::isinf(lo) && lo < 0 && std::isinf(hi) && hi > 0); }

absl::Status Unsupported(const char* what, DType dtype) {
  return absl::UnimplementedError(absl::StrCat(what, " on cuda does not support ", DTypeName(dtype)));
}

// Calls fn(T{}) with T the device type of a storage dtype Cast handles (__half for float16);
// false for the others.
template <typename Fn>
bool ForCastType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      fn(float{});
      return true;
    case DType::kFloat64:
      fn(double{});
      return true;
    case DType::kFloat16:
      fn(__half{});
      return true;
    case DType::kInt8:
      fn(int8_t{});
      return true;
    case DType::kUInt8:
      fn(uint8_t{});
      return true;
    case DType::kInt32:
      fn(int32_t{});
      return true;
    case DType::kInt64:
      fn(int64_t{});
      return true;
    case DType::kBool:
      fn(bool{});
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::Status LaunchUnary(UnaryOp op, DType dtype, const void* x, void* y, int64_t n, float alpha,
                         float beta, cudaStream_t stream) {
  if (n == 0) return absl::OkStatus();
  return ForFloatType(dtype, "activation", [&](auto tag) {
    using T = decltype(tag);
    UnaryKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                    n, op, alpha, beta);
  });
}

absl::Status LaunchBinary(BinaryOp op, DType dtype, const void* a,
                          absl::Span<const int64_t> a_shape, const void* b,
                          absl::Span<const int64_t> b_shape, void* y, absl::Span<const int64_t> out,
                          float lo, float hi, cudaStream_t stream) {
  int64_t n = 1;
  for (int64_t d : out) n *= d;
  if (n == 0) return absl::OkStatus();
  if (out.size() > 8) return absl::UnimplementedError("broadcasting over more than 8 dimensions");
  Broadcast s{};
  s.rank = static_cast<int>(out.size());
  auto strides = [&](absl::Span<const int64_t> shape, int64_t* dst) {
    int64_t stride = 1;
    for (int d = s.rank - 1; d >= 0; --d) {
      const int k = d - (s.rank - static_cast<int>(shape.size()));
      const int64_t extent = k >= 0 ? shape[k] : 1;
      dst[d] = extent == 1 ? 0 : stride;
      stride *= extent;
    }
  };
  for (int d = 0; d < s.rank; ++d) s.out[d] = out[d];
  strides(a_shape, s.a);
  strides(b_shape, s.b);
  const bool flat = a_shape == out && b_shape == out;
  const bool clamp = Clamps(lo, hi);
  const unsigned int blocks = Blocks(n);
  switch (dtype) {
    case DType::kFloat32:
      if (flat) {
        BinaryFloatFlatKernel<<<blocks, kThreads, 0, stream>>>(
            static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(y), n,
            op, clamp, lo, hi);
      } else {
        BinaryFloatKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(a),
                                                           static_cast<const float*>(b),
                                                           static_cast<float*>(y), n, s, op, clamp,
                                                           lo, hi);
      }
      break;
    case DType::kFloat16:
      if (flat) {
        BinaryFloatFlatKernel<<<blocks, kThreads, 0, stream>>>(
            static_cast<const __half*>(a), static_cast<const __half*>(b), static_cast<__half*>(y),
            n, op, clamp, lo, hi);
      } else {
        BinaryFloatKernel<<<blocks, kThreads, 0, stream>>>(
            static_cast<const __half*>(a), static_cast<const __half*>(b), static_cast<__half*>(y),
            n, s, op, clamp, lo, hi);
      }
      break;
    case DType::kInt32:
      BinaryIntKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const int32_t*>(a),
                                                       static_cast<const int32_t*>(b),
                                                       static_cast<int32_t*>(y), n, s, op, clamp,
                                                       lo, hi);
      break;
    case DType::kInt64:
      BinaryIntKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const int64_t*>(a),
                                                       static_cast<const int64_t*>(b),
                                                       static_cast<int64_t*>(y), n, s, op, clamp,
                                                       lo, hi);
      break;
    default:
      return Unsupported("arithmetic", dtype);
  }
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

absl::Status LaunchCast(DType from, DType to, const void* x, void* y, int64_t n,
                        cudaStream_t stream) {
  if (n == 0) return absl::OkStatus();
  bool to_known = true;
  const bool from_known = ForCastType(from, [&](auto from_tag) {
    using From = decltype(from_tag);
    to_known = ForCastType(to, [&](auto to_tag) {
      using To = decltype(to_tag);
      CastKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const From*>(x),
                                                       static_cast<To*>(y), n);
    });
  });
  if (!from_known) return Unsupported("Cast", from);
  if (!to_known) return Unsupported("Cast", to);
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

absl::Status LaunchConvEpilogue(DType dtype, void* y, const void* bias, const void* residual,
                                int64_t batch, int64_t channels, int64_t spatial, float lo,
                                float hi, cudaStream_t stream) {
  const int64_t n = batch * channels * spatial;
  if (n == 0) return absl::OkStatus();
  return ForFloatType(dtype, "Conv", [&](auto tag) {
    using T = decltype(tag);
    EpilogueKernel<<<Blocks(n), kThreads, 0, stream>>>(
        static_cast<T*>(y), static_cast<const T*>(bias), static_cast<const T*>(residual), n,
        channels, spatial, Clamps(lo, hi), lo, hi);
  });
}

absl::Status LaunchChannelAffine(DType dtype, const void* x, void* y, const float* scale,
                                 const float* shift, int64_t batch, int64_t channels,
                                 int64_t spatial, cudaStream_t stream) {
  const int64_t n = batch * channels * spatial;
  if (n == 0) return absl::OkStatus();
  return ForFloatType(dtype, "BatchNormalization", [&](auto tag) {
    using T = decltype(tag);
    AffineKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                     scale, shift, n, channels, spatial);
  });
}

absl::Status LaunchFillInts(absl::Span<const int64_t> values, DType dtype, void* y,
                            cudaStream_t stream) {
  if (values.size() > 8) return absl::UnimplementedError("more than 8 values to fill");
  if (values.empty()) return absl::OkStatus();
  Dims8 v;
  v.rank = static_cast<int>(values.size());
  for (int i = 0; i < v.rank; ++i) v.d[i] = values[i];
  if (dtype == DType::kInt64) {
    FillKernel<<<1, 8, 0, stream>>>(static_cast<int64_t*>(y), v);
  } else if (dtype == DType::kInt32) {
    FillKernel<<<1, 8, 0, stream>>>(static_cast<int32_t*>(y), v);
  } else {
    return Unsupported("fill", dtype);
  }
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

}  // namespace inferd::models::cuda
