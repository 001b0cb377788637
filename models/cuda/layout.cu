#include <cuda_fp16.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/device_math.cuh"
#include "models/cuda/layout.h"

namespace inferd::models::cuda {
namespace {

// Copies elements of 1, 2, 4 or 8 bytes as unsigned integers of that size.
template <int kSize>
struct Word;
template <>
struct Word<1> {
  using T = uint8_t;
};
template <>
struct Word<2> {
  using T = uint16_t;
};
template <>
struct Word<4> {
  using T = uint32_t;
};
template <>
struct Word<8> {
  using T = uint64_t;
};

template <typename T>
__global__ void TransposeKernel(const T* x, T* y, int64_t n, Dims8 out, Dims8 in_strides) {
  INFERD_GRID_STRIDE(i, n) {
    int64_t rest = i, src = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const int64_t c = rest % out.d[d];
      rest /= out.d[d];
      src += c * in_strides.d[d];
    }
    y[i] = x[src];
  }
}

template <typename T>
__global__ void SliceKernel(const T* x, T* y, int64_t n, Dims8 out, Dims8 in_strides, Dims8 start,
                            Dims8 step) {
  INFERD_GRID_STRIDE(i, n) {
    int64_t rest = i, src = 0;
    for (int d = out.rank - 1; d >= 0; --d) {
      const int64_t c = rest % out.d[d];
      rest /= out.d[d];
      src += (start.d[d] + c * step.d[d]) * in_strides.d[d];
    }
    y[i] = x[src];
  }
}

template <typename T>
__global__ void PadKernel(const T* x, T* y, int64_t n, Dims8 in, Dims8 out, Dims8 begin,
                          PadMode mode, T value) {
  INFERD_GRID_STRIDE(i, n) {
    int64_t rest = i, src = 0, stride = 1;
    bool inside = true;
    for (int d = out.rank - 1; d >= 0; --d) {
      const int64_t c = rest % out.d[d];
      rest /= out.d[d];
      int64_t k = c - begin.d[d];
      const int64_t size = in.d[d];
      if (k < 0 || k >= size) {
        if (mode == PadMode::kConstant || size == 0) {
          inside = false;
        } else if (mode == PadMode::kEdge) {
          k = k < 0 ? 0 : size - 1;
        } else {  // reflect, without repeating the edge
          const int64_t period = size > 1 ? 2 * (size - 1) : 1;
          k = ((k % period) + period) % period;
          if (k >= size) k = period - k;
        }
      }
      src += k * stride;
      stride *= size;
    }
    y[i] = inside ? x[src] : value;
  }
}

template <typename T, typename I>
__global__ void GatherKernel(const T* x, int64_t axis_dim, int64_t inner, const I* idx, int64_t n,
                             T* y, int64_t total) {
  INFERD_GRID_STRIDE(i, total) {
    const int64_t e = i % inner;
    const int64_t j = (i / inner) % n;
    const int64_t o = i / (inner * n);
    int64_t k = static_cast<int64_t>(idx[j]);
    if (k < 0) k += axis_dim;
    y[i] = (k >= 0 && k < axis_dim) ? x[(o * axis_dim + k) * inner + e] : T(0);
  }
}

// As models/cpu/resize.cc: the output length in the formulas is scale * in, not rounded.
__device__ float SourceCoordinate(float out_coord, float scale, int64_t in_size,
                                  CoordinateMode mode) {
  const float out_width = scale * static_cast<float>(in_size);
  switch (mode) {
    case CoordinateMode::kHalfPixel:
      return (out_coord + 0.5f) / scale - 0.5f;
    case CoordinateMode::kPytorchHalfPixel:
      return out_width == 1.0f ? -0.5f : (out_coord + 0.5f) / scale - 0.5f;
    case CoordinateMode::kAlignCorners:
      return out_width == 1.0f ? 0.0f : out_coord * (in_size - 1) / (out_width - 1.0f);
    case CoordinateMode::kAsymmetric:
      return out_coord / scale;
    case CoordinateMode::kTfHalfPixelForNn:
      return (out_coord + 0.5f) / scale;
  }
  return out_coord;
}

__device__ int64_t NearestIndex(float v, NearestMode mode, int64_t size) {
  int64_t k;
  switch (mode) {
    case NearestMode::kRoundPreferFloor:
      k = (v == floorf(v) + 0.5f) ? static_cast<int64_t>(floorf(v)) : static_cast<int64_t>(roundf(v));
      break;
    case NearestMode::kRoundPreferCeil:
      k = static_cast<int64_t>(roundf(v));
      break;
    case NearestMode::kFloor:
      k = static_cast<int64_t>(floorf(v));
      break;
    default:
      k = static_cast<int64_t>(ceilf(v));
      break;
  }
  return k < 0 ? 0 : (k >= size ? size - 1 : k);
}

template <typename T>
__global__ void Resize2DKernel(const T* x, int64_t h, int64_t w, T* y, int64_t oh, int64_t ow,
                               int64_t total, float scale_h, float scale_w, ResizeMode mode,
                               CoordinateMode coord, NearestMode nearest) {
  INFERD_GRID_STRIDE(i, total) {
    const int64_t ox = i % ow;
    const int64_t oy = (i / ow) % oh;
    const int64_t o = i / (ow * oh);
    const T* plane = x + o * h * w;
    const float sy = SourceCoordinate(static_cast<float>(oy), scale_h, h, coord);
    const float sx = SourceCoordinate(static_cast<float>(ox), scale_w, w, coord);
    if (mode == ResizeMode::kNearest) {
      y[i] = plane[NearestIndex(sy, nearest, h) * w + NearestIndex(sx, nearest, w)];
      continue;
    }
    const float cy = fminf(fmaxf(sy, 0.0f), static_cast<float>(h - 1));
    const float cx = fminf(fmaxf(sx, 0.0f), static_cast<float>(w - 1));
    const int64_t y0 = static_cast<int64_t>(floorf(cy)), x0 = static_cast<int64_t>(floorf(cx));
    const int64_t y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    const float fy = cy - y0, fx = cx - x0;
    const float top = ToFloat(plane[y0 * w + x0]) * (1 - fx) + ToFloat(plane[y0 * w + x1]) * fx;
    const float bottom = ToFloat(plane[y1 * w + x0]) * (1 - fx) + ToFloat(plane[y1 * w + x1]) * fx;
    y[i] = FromFloat<T>(top * (1 - fy) + bottom * fy);
  }
}

Dims8 ToDims(absl::Span<const int64_t> v) {
  Dims8 d;
  d.rank = static_cast<int>(v.size());
  for (int i = 0; i < d.rank; ++i) d.d[i] = v[i];
  return d;
}

Dims8 Strides(absl::Span<const int64_t> shape) {
  Dims8 s;
  s.rank = static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    s.d[i] = stride;
    stride *= shape[i];
  }
  return s;
}

int64_t Count(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status TooManyDims(size_t rank) {
  return rank > 8 ? absl::UnimplementedError("more than 8 dimensions on cuda") : absl::OkStatus();
}

template <typename Fn>
absl::Status BySize(size_t elem_size, Fn fn) {
  switch (elem_size) {
    case 1:
      fn(Word<1>{});
      break;
    case 2:
      fn(Word<2>{});
      break;
    case 4:
      fn(Word<4>{});
      break;
    case 8:
      fn(Word<8>{});
      break;
    default:
      return absl::UnimplementedError(absl::StrCat("elements of ", elem_size, " bytes"));
  }
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchTranspose(const void* x, void* y, absl::Span<const int64_t> in,
                             absl::Span<const int64_t> perm, size_t elem_size,
                             cudaStream_t stream) {
  if (absl::Status s = TooManyDims(in.size()); !s.ok()) return s;
  const int64_t n = Count(in);
  if (n == 0) return absl::OkStatus();
  const Dims8 in_strides = Strides(in);
  Dims8 out, strides;
  out.rank = strides.rank = static_cast<int>(in.size());
  for (int d = 0; d < out.rank; ++d) {
    out.d[d] = in[perm[d]];
    strides.d[d] = in_strides.d[perm[d]];
  }
  return BySize(elem_size, [&](auto w) {
    using T = typename decltype(w)::T;
    TransposeKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const T*>(x),
                                                        static_cast<T*>(y), n, out, strides);
  });
}

absl::Status LaunchSlice(const void* x, absl::Span<const int64_t> in, void* y,
                         absl::Span<const int64_t> out, absl::Span<const int64_t> start,
                         absl::Span<const int64_t> step, size_t elem_size, cudaStream_t stream) {
  if (absl::Status s = TooManyDims(in.size()); !s.ok()) return s;
  const int64_t n = Count(out);
  if (n == 0) return absl::OkStatus();
  const Dims8 o = ToDims(out), strides = Strides(in), b = ToDims(start), st = ToDims(step);
  return BySize(elem_size, [&](auto w) {
    using T = typename decltype(w)::T;
    SliceKernel<<<Blocks(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                    n, o, strides, b, st);
  });
}

absl::Status LaunchPad(DType dtype, const void* x, absl::Span<const int64_t> in, void* y,
                       absl::Span<const int64_t> out, absl::Span<const int64_t> begin,
                       PadMode mode, double value, cudaStream_t stream) {
  if (absl::Status s = TooManyDims(in.size()); !s.ok()) return s;
  const int64_t n = Count(out);
  if (n == 0) return absl::OkStatus();
  const Dims8 i = ToDims(in), o = ToDims(out), b = ToDims(begin);
  const unsigned int blocks = Blocks(n);
  switch (dtype) {
    case DType::kFloat32:
      PadKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(x),
                                                 static_cast<float*>(y), n, i, o, b, mode,
                                                 static_cast<float>(value));
      break;
    case DType::kFloat16:
      PadKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __half*>(x),
                                                 static_cast<__half*>(y), n, i, o, b, mode,
                                                 __float2half(static_cast<float>(value)));
      break;
    case DType::kInt64:
      PadKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const int64_t*>(x),
                                                 static_cast<int64_t*>(y), n, i, o, b, mode,
                                                 static_cast<int64_t>(value));
      break;
    case DType::kInt32:
      PadKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const int32_t*>(x),
                                                 static_cast<int32_t*>(y), n, i, o, b, mode,
                                                 static_cast<int32_t>(value));
      break;
    default:
      return absl::UnimplementedError(absl::StrCat("Pad on cuda does not support ", DTypeName(dtype)));
  }
  CUDA_RETURN_IF_LAUNCH_FAILED();
  return absl::OkStatus();
}

absl::Status LaunchGather(const void* x, int64_t outer, int64_t axis_dim, int64_t inner,
                          const void* indices, bool indices_int64, int64_t n, void* y,
                          size_t elem_size, cudaStream_t stream) {
  const int64_t total = outer * n * inner;
  if (total == 0) return absl::OkStatus();
  return BySize(elem_size, [&](auto w) {
    using T = typename decltype(w)::T;
    if (indices_int64) {
      GatherKernel<<<Blocks(total), kThreads, 0, stream>>>(
          static_cast<const T*>(x), axis_dim, inner, static_cast<const int64_t*>(indices), n,
          static_cast<T*>(y), total);
    } else {
      GatherKernel<<<Blocks(total), kThreads, 0, stream>>>(
          static_cast<const T*>(x), axis_dim, inner, static_cast<const int32_t*>(indices), n,
          static_cast<T*>(y), total);
    }
  });
}

absl::Status LaunchResize2D(DType dtype, const void* x, int64_t outer, int64_t h, int64_t w,
                            void* y, int64_t oh, int64_t ow, float scale_h, float scale_w,
                            ResizeMode mode, CoordinateMode coord, NearestMode nearest,
                            cudaStream_t stream) {
  const int64_t total = outer * oh * ow;
  if (total == 0) return absl::OkStatus();
  return ForFloatType(dtype, "Resize", [&](auto tag) {
    using T = decltype(tag);
    Resize2DKernel<<<Blocks(total), kThreads, 0, stream>>>(static_cast<const T*>(x), h, w,
                                                           static_cast<T*>(y), oh, ow, total,
                                                           scale_h, scale_w, mode, coord, nearest);
  });
}

}  // namespace inferd::models::cuda
