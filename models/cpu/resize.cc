// Resize (opset 10-17): nearest (four rounding modes), linear and cubic interpolation with
// every coordinate transformation mode, over any number of axes. Interpolation is separable,
// so it runs one axis at a time, skipping axes whose size and scale are unchanged.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"

namespace inferd::models::cpu {
namespace {

enum class Mode { kNearest, kLinear, kCubic };

struct Options {
  Mode mode = Mode::kNearest;
  std::string coordinate_mode = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation_value = 0;
  bool opset10 = false;
};

// For one output index along one axis: source indices and weights, or "extrapolate".
struct Tap {
  bool extrapolate = false;
  int n = 0;
  int64_t index[4];
  double weight[4];
};

absl::StatusOr<std::vector<Tap>> AxisTaps(const Options& o, int64_t in, int64_t out, double scale,
                                          double roi_start, double roi_end) {
  std::vector<Tap> taps(out);
  const double out_width = scale * in;  // as ONNX defines it: not rounded
  for (int64_t x = 0; x < out; ++x) {
    double xo;
    const std::string& cm = o.coordinate_mode;
    if (cm == "align_corners") {
      xo = out_width == 1 ? 0.0 : x * (in - 1) / (out_width - 1);
    } else if (cm == "asymmetric") {
      xo = x / scale;
    } else if (cm == "tf_crop_and_resize") {
      xo = out_width == 1 ? (roi_end - roi_start) * (in - 1) / 2
                          : x * (roi_end - roi_start) * (in - 1) / (out_width - 1);
      xo += roi_start * (in - 1);
      if (xo < 0 || xo > in - 1) {
        taps[x].extrapolate = true;
        continue;
      }
    } else if (cm == "pytorch_half_pixel") {
      xo = out_width == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    } else if (cm == "half_pixel") {
      xo = (x + 0.5) / scale - 0.5;
    } else if (cm == "tf_half_pixel_for_nn") {
      xo = (x + 0.5) / scale;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown coordinate_transformation_mode '", cm, "'"));
    }
    const double fl = std::floor(xo);
    const bool integral = fl == xo;
    const double ratio = integral ? 1.0 : xo - fl;
    const int64_t base = static_cast<int64_t>(fl) - (integral ? 1 : 0);
    Tap& t = taps[x];
    double w[4];
    int64_t first;
    if (o.mode == Mode::kCubic) {
      const double a = o.cubic_a, r = ratio, s = 1 - ratio;
      w[0] = ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a;
      w[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
      w[2] = ((a + 2) * s - (a + 3)) * s * s + 1;
      w[3] = ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a;
      t.n = 4;
      first = base - 1;
    } else {
      t.n = 2;
      first = base;
      if (o.mode == Mode::kLinear) {
        w[0] = 1 - ratio;
        w[1] = ratio;
      } else {
        bool upper;
        if (integral) {
          upper = true;
        } else if (o.nearest_mode == "round_prefer_floor") {
          upper = ratio > 0.5;
        } else if (o.nearest_mode == "round_prefer_ceil") {
          upper = ratio >= 0.5;
        } else if (o.nearest_mode == "floor") {
          upper = false;
        } else if (o.nearest_mode == "ceil") {
          upper = true;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("unknown nearest_mode '", o.nearest_mode, "'"));
        }
        w[0] = upper ? 0 : 1;
        w[1] = upper ? 1 : 0;
      }
    }
    double sum = 0;
    for (int k = 0; k < t.n; ++k) {
      const int64_t idx = first + k;
      if (o.exclude_outside && (idx < 0 || idx >= in)) w[k] = 0;
      sum += w[k];
      t.index[k] = std::clamp<int64_t>(idx, 0, in - 1);
    }
    for (int k = 0; k < t.n; ++k) t.weight[k] = o.exclude_outside && sum != 0 ? w[k] / sum : w[k];
  }
  return taps;
}

template <typename T>
void ResizeAxis(const T* x, T* y, int64_t outer, int64_t in, int64_t out, int64_t inner,
                const std::vector<Tap>& taps, double extrapolation, ThreadPool& pool) {
  using C = ComputeType<T>;
  pool.ParallelFor(outer * out, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1)),
                   [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) {
                       const int64_t o = r / out, i = r % out;
                       const Tap& t = taps[i];
                       T* dst = y + (o * out + i) * inner;
                       if (t.extrapolate) {
                         for (int64_t j = 0; j < inner; ++j)
                           dst[j] = static_cast<T>(static_cast<C>(extrapolation));
                         continue;
                       }
                       for (int64_t j = 0; j < inner; ++j) {
                         double acc = 0;
                         for (int k = 0; k < t.n; ++k) {
                           if (t.weight[k] == 0) continue;
                           acc += t.weight[k] * static_cast<double>(static_cast<C>(
                                                    x[(o * in + t.index[k]) * inner + j]));
                         }
                         dst[j] = static_cast<T>(static_cast<C>(acc));
                       }
                     }
                   });
}

class ResizeKernel : public Kernel {
 public:
  explicit ResizeKernel(Options o) : o_(std::move(o)) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "X"));
    const int rank = x->rank();
    const Tensor* roi = o_.opset10 ? nullptr : ctx.input(1);
    const Tensor* scales = ctx.input(o_.opset10 ? 1 : 2);
    const Tensor* sizes = o_.opset10 ? nullptr : ctx.input(3);
    if (scales && scales->num_elements() == 0) scales = nullptr;
    if (sizes && sizes->num_elements() == 0) sizes = nullptr;
    if ((scales == nullptr) == (sizes == nullptr)) {
      return absl::InvalidArgumentError("Resize needs exactly one of 'scales' and 'sizes'");
    }
    std::vector<double> scale(rank);
    Shape out(rank);
    if (scales) {
      if (scales->num_elements() != rank || scales->dtype() != DType::kFloat32) {
        return absl::InvalidArgumentError(
            absl::StrCat("Resize scales must be ", rank, " float32 values"));
      }
      for (int d = 0; d < rank; ++d) {
        scale[d] = scales->data<float>()[d];
        if (!(scale[d] > 0)) return absl::InvalidArgumentError("Resize scales must be positive");
        out[d] = static_cast<int64_t>(std::floor(x->dim(d) * scale[d]));
      }
    } else {
      ASSIGN_OR_RETURN(std::vector<int64_t> s, ReadInt64s(*sizes, "sizes"));
      if (static_cast<int>(s.size()) != rank) {
        return absl::InvalidArgumentError(absl::StrCat("Resize sizes must have ", rank, " values"));
      }
      for (int d = 0; d < rank; ++d) {
        if (s[d] < 0 || (s[d] > 0 && x->dim(d) == 0)) {
          return absl::InvalidArgumentError("Resize sizes are invalid for the input");
        }
        out[d] = s[d];
        scale[d] = x->dim(d) == 0 ? 1.0 : static_cast<double>(s[d]) / x->dim(d);
      }
    }
    std::vector<double> roi_v(2 * rank, 0.0);
    for (int d = 0; d < rank; ++d) roi_v[rank + d] = 1.0;
    if (o_.coordinate_mode == "tf_crop_and_resize") {
      if (roi == nullptr || roi->num_elements() != 2 * rank) {
        return absl::InvalidArgumentError(
            absl::StrCat("tf_crop_and_resize needs a roi of ", 2 * rank, " values"));
      }
      for (int i = 0; i < 2 * rank; ++i) roi_v[i] = roi->ElementAsDouble(i);
    }
    int64_t total = NumElements(out);
    if (total < 0 || total > (int64_t{1} << 32)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Resize output ", ShapeToString(out), " is too large"));
    }
    absl::Status status;
    const bool known = DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!kIsFloating<T> && !std::is_same_v<T, uint8_t> && !std::is_same_v<T, int8_t>) {
        status = UnsupportedType("Resize", x->dtype());
      } else {
        status = Run<T>(ctx, *x, out, scale, roi_v);
      }
    });
    if (!known) return UnsupportedType("Resize", x->dtype());
    return status;
  }

 private:
  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor& x, const Shape& out,
                   const std::vector<double>& scale, const std::vector<double>& roi) const {
    const int rank = x.rank();
    Tensor current = x;
    Shape shape = x.shape();
    for (int d = 0; d < rank; ++d) {
      const bool crop =
          o_.coordinate_mode == "tf_crop_and_resize" && (roi[d] != 0.0 || roi[rank + d] != 1.0);
      if (out[d] == shape[d] && scale[d] == 1.0 && !crop) continue;
      ASSIGN_OR_RETURN(std::vector<Tap> taps,
                       AxisTaps(o_, shape[d], out[d], scale[d], roi[d], roi[rank + d]));
      Shape next_shape = shape;
      next_shape[d] = out[d];
      ASSIGN_OR_RETURN(Tensor next, Tensor::Create(x.dtype(), next_shape));
      int64_t outer = 1, inner = 1;
      for (int k = 0; k < d; ++k) outer *= shape[k];
      for (int k = d + 1; k < rank; ++k) inner *= shape[k];
      if (shape[d] > 0) {
        ResizeAxis<T>(current.data<T>(), next.data<T>(), outer, shape[d], out[d], inner, taps,
                      o_.extrapolation_value, ctx.pool());
      }
      current = std::move(next);
      shape = std::move(next_shape);
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x.dtype(), out));
    if (y->byte_size() > 0) std::memcpy(y->raw_data(), current.raw_data(), y->byte_size());
    return absl::OkStatus();
  }

  Options o_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateResize(const KernelInfo& info) {
  Options o;
  const AttributeMap& a = info.attrs();
  ASSIGN_OR_RETURN(std::string mode, a.GetString("mode", "nearest"));
  if (mode == "nearest") {
    o.mode = Mode::kNearest;
  } else if (mode == "linear") {
    o.mode = Mode::kLinear;
  } else if (mode == "cubic" && info.opset() >= 11) {
    o.mode = Mode::kCubic;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unsupported Resize mode '", mode, "'"));
  }
  if (info.opset() < 11) {
    o.opset10 = true;
    o.coordinate_mode = "asymmetric";
    o.nearest_mode = "floor";
  } else {
    ASSIGN_OR_RETURN(o.coordinate_mode,
                     a.GetString("coordinate_transformation_mode", "half_pixel"));
    ASSIGN_OR_RETURN(o.nearest_mode, a.GetString("nearest_mode", "round_prefer_floor"));
    ASSIGN_OR_RETURN(float cubic_a, a.GetFloat("cubic_coeff_a", -0.75f));
    ASSIGN_OR_RETURN(int64_t exclude, a.GetInt("exclude_outside", 0));
    ASSIGN_OR_RETURN(float extrapolation, a.GetFloat("extrapolation_value", 0.0f));
    o.cubic_a = cubic_a;
    o.exclude_outside = exclude != 0;
    o.extrapolation_value = extrapolation;
  }
  return std::unique_ptr<Kernel>(new ResizeKernel(std::move(o)));
}

}  // namespace inferd::models::cpu
