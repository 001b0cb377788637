// Shape and data-movement ops on CUDA. Reshape, Flatten, Squeeze, Unsqueeze and Identity are
// views (no copy). Shape writes its values with a kernel and keeps them on the host, and the
// integer ops exporters chain on it (Gather, Slice, Concat, Unsqueeze, Cast, arithmetic) carry
// those host values along, so Reshape, Slice, Pad and Resize read their parameters on the host
// without a device-to-host copy: a whole run stays asynchronous and capturable.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/elementwise.h"
#include "models/cuda/layout.h"
#include "models/cuda/ops.h"

namespace inferd::models::cuda {
namespace {

DeviceTensor View(const DeviceTensor& x, Shape shape) {
  DeviceTensor y = x;
  y.shape = std::move(shape);
  return y;
}

// Keeps the host values of a small integer result: `values` is what the device computed.
void Mirror(DeviceTensor* y, std::vector<int64_t> values) {
  if (static_cast<int64_t>(values.size()) <= kHostMirrorLimit) {
    y->host_ints = std::make_shared<const std::vector<int64_t>>(std::move(values));
  }
}

class IdentityKernel : public CudaKernel {
 public:
  absl::Status Launch(CudaContext& ctx) const override {
    ctx.Set(0, *ctx.input(0));
    return absl::OkStatus();
  }
};

class ConstantKernel : public CudaKernel {
 public:
  explicit ConstantKernel(DeviceTensor value) : value_(std::move(value)) {}
  absl::Status Launch(CudaContext& ctx) const override {
    ctx.Set(0, value_);
    return absl::OkStatus();
  }

 private:
  const DeviceTensor value_;
};

class ReshapeKernel : public CudaKernel {
 public:
  explicit ReshapeKernel(bool allowzero) : allowzero_(allowzero) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    ASSIGN_OR_RETURN(std::vector<int64_t> target, HostInts(*ctx.input(1), "Reshape's shape"));
    Shape out;
    int infer = -1;
    int64_t known = 1;
    for (size_t i = 0; i < target.size(); ++i) {
      int64_t d = target[i];
      if (d == 0 && !allowzero_) {
        if (i >= x.shape.size()) return absl::InvalidArgumentError("Reshape copies a missing dim");
        d = x.shape[i];
      }
      if (d == -1) {
        if (infer >= 0) return absl::InvalidArgumentError("Reshape has two -1 dims");
        infer = static_cast<int>(i);
        out.push_back(1);
        continue;
      }
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat("Reshape dim ", d));
      known *= d;
      out.push_back(d);
    }
    const int64_t n = x.num_elements();
    if (infer >= 0) {
      if (known == 0 || n % known != 0) {
        return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(x.shape),
                                                       " to ", ShapeToString(target)));
      }
      out[infer] = n / known;
    }
    if (NumElements(out) != n) {
      return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", ShapeToString(x.shape),
                                                     " to ", ShapeToString(target)));
    }
    ctx.Set(0, View(x, std::move(out)));
    return absl::OkStatus();
  }

 private:
  const bool allowzero_;
};

class FlattenKernel : public CudaKernel {
 public:
  explicit FlattenKernel(int64_t axis) : axis_(axis) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (axis < 0 || axis > rank) return absl::InvalidArgumentError("Flatten axis out of range");
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis; d < rank; ++d) inner *= x.shape[d];
    ctx.Set(0, View(x, {outer, inner}));
    return absl::OkStatus();
  }

 private:
  const int64_t axis_;
};

class SqueezeKernel : public CudaKernel {
 public:
  SqueezeKernel(bool unsqueeze, bool axes_input, std::vector<int64_t> axes)
      : unsqueeze_(unsqueeze), axes_input_(axes_input), axes_(std::move(axes)) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    std::vector<int64_t> axes = axes_;
    if (axes_input_ && ctx.input(1)) {
      ASSIGN_OR_RETURN(axes, HostInts(*ctx.input(1), "axes"));
    }
    const int rank = static_cast<int>(x.shape.size());
    Shape out;
    if (unsqueeze_) {
      const int out_rank = rank + static_cast<int>(axes.size());
      std::vector<bool> added(out_rank, false);
      for (int64_t a : axes) {
        ASSIGN_OR_RETURN(int d, NormalizeAxis(a, out_rank));
        if (added[d]) return absl::InvalidArgumentError("Unsqueeze axis repeated");
        added[d] = true;
      }
      for (int d = 0, k = 0; d < out_rank; ++d) out.push_back(added[d] ? 1 : x.shape[k++]);
    } else {
      std::vector<bool> removed(rank, false);
      for (int64_t a : axes) {
        ASSIGN_OR_RETURN(int d, NormalizeAxis(a, rank));
        if (x.shape[d] != 1) {
          return absl::InvalidArgumentError(absl::StrCat("cannot squeeze dim ", d, " of ",
                                                         ShapeToString(x.shape)));
        }
        removed[d] = true;
      }
      for (int d = 0; d < rank; ++d) {
        const bool drop = axes.empty() ? x.shape[d] == 1 : removed[d];
        if (!drop) out.push_back(x.shape[d]);
      }
    }
    ctx.Set(0, View(x, std::move(out)));
    return absl::OkStatus();
  }

 private:
  const bool unsqueeze_, axes_input_;
  const std::vector<int64_t> axes_;
};

class ShapeKernel : public CudaKernel {
 public:
  ShapeKernel(int64_t start, std::optional<int64_t> end) : start_(start), end_(end) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const Shape& in = ctx.input(0)->shape;
    const int64_t rank = static_cast<int64_t>(in.size());
    auto clamp = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
    const int64_t b = clamp(start_), e = clamp(end_.value_or(rank));
    std::vector<int64_t> values(in.begin() + b, in.begin() + std::max(b, e));
    ASSIGN_OR_RETURN(DeviceTensor * y,
                     ctx.Allocate(0, DType::kInt64, {static_cast<int64_t>(values.size())}));
    RETURN_IF_ERROR(LaunchFillInts(values, DType::kInt64, y->data, ctx.stream()));
    Mirror(y, std::move(values));
    return absl::OkStatus();
  }

 private:
  const int64_t start_;
  const std::optional<int64_t> end_;
};

class TransposeKernel : public CudaKernel {
 public:
  explicit TransposeKernel(std::vector<int64_t> perm) : perm_(std::move(perm)) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    const int rank = static_cast<int>(x.shape.size());
    std::vector<int64_t> perm = perm_;
    if (perm.empty()) {
      for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
    }
    if (static_cast<int>(perm.size()) != rank) {
      return absl::InvalidArgumentError("Transpose perm does not match the rank");
    }
    Shape out;
    std::vector<bool> used(rank, false);
    for (int64_t p : perm) {
      if (p < 0 || p >= rank || used[p]) return absl::InvalidArgumentError("bad Transpose perm");
      used[p] = true;
      out.push_back(x.shape[p]);
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    return LaunchTranspose(x.data, y->data, x.shape, perm, DTypeSize(x.dtype), ctx.stream());
  }

 private:
  const std::vector<int64_t> perm_;
};

class ConcatKernel : public CudaKernel {
 public:
  explicit ConcatKernel(int64_t axis) : axis_(axis) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& first = *ctx.input(0);
    const int rank = static_cast<int>(first.shape.size());
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, rank));
    Shape out = first.shape;
    out[axis] = 0;
    bool mirrored = true;
    std::vector<int64_t> values;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const DeviceTensor& t = *ctx.input(i);
      if (t.dtype != first.dtype || static_cast<int>(t.shape.size()) != rank) {
        return absl::InvalidArgumentError("Concat inputs differ in type or rank");
      }
      for (int d = 0; d < rank; ++d) {
        if (d != axis && t.shape[d] != first.shape[d]) {
          return absl::InvalidArgumentError(absl::StrCat("Concat input ", ShapeToString(t.shape),
                                                         " does not match ",
                                                         ShapeToString(first.shape)));
        }
      }
      out[axis] += t.shape[axis];
      mirrored = mirrored && t.host_ints != nullptr;
      if (t.host_ints) values.insert(values.end(), t.host_ints->begin(), t.host_ints->end());
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, first.dtype, out));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= out[d];
    for (int d = axis + 1; d < rank; ++d) inner *= out[d];
    const size_t elem = DTypeSize(first.dtype);
    const size_t dst_pitch = static_cast<size_t>(out[axis] * inner) * elem;
    size_t offset = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const DeviceTensor& t = *ctx.input(i);
      const size_t width = static_cast<size_t>(t.shape[axis] * inner) * elem;
      if (width > 0 && outer > 0) {
        CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(static_cast<char*>(y->data) + offset, dst_pitch,
                                               t.data, width, width, static_cast<size_t>(outer),
                                               cudaMemcpyDeviceToDevice, ctx.stream()));
      }
      offset += width;
    }
    if (mirrored && rank == 1) Mirror(y, std::move(values));
    return absl::OkStatus();
  }

 private:
  const int64_t axis_;
};

class PadKernel : public CudaKernel {
 public:
  PadKernel(PadMode mode, std::vector<int64_t> pads, float value, bool from_inputs)
      : mode_(mode), pads_(std::move(pads)), value_(value), from_inputs_(from_inputs) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    const int rank = static_cast<int>(x.shape.size());
    std::vector<int64_t> pads = pads_;
    double value = value_;
    std::vector<int64_t> axes;
    if (from_inputs_) {
      ASSIGN_OR_RETURN(pads, HostInts(*ctx.input(1), "Pad's pads"));
      if (ctx.input(2)) {
        ASSIGN_OR_RETURN(auto v, HostFloats(*ctx.input(2), "Pad's constant_value"));
        if (!v.empty()) value = v[0];
      }
      if (ctx.input(3)) {
        ASSIGN_OR_RETURN(axes, HostInts(*ctx.input(3), "Pad's axes"));
      }
    }
    if (axes.empty()) {
      for (int d = 0; d < rank; ++d) axes.push_back(d);
    }
    if (pads.size() != 2 * axes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("Pad has ", pads.size(), " pads for ",
                                                     axes.size(), " axes"));
    }
    std::vector<int64_t> begin(rank, 0);
    Shape out = x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      ASSIGN_OR_RETURN(int d, NormalizeAxis(axes[i], rank));
      begin[d] = pads[i];
      out[d] += pads[i] + pads[i + axes.size()];
      if (out[d] < 0) return absl::InvalidArgumentError("Pad crops below zero size");
      if (mode_ == PadMode::kReflect && (pads[i] >= x.shape[d] || pads[i + axes.size()] >= x.shape[d])) {
        return absl::InvalidArgumentError("reflect pads must be smaller than the dimension");
      }
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    return LaunchPad(x.dtype, x.data, x.shape, y->data, out, begin, mode_, value, ctx.stream());
  }

 private:
  const PadMode mode_;
  const std::vector<int64_t> pads_;
  const float value_;
  const bool from_inputs_;
};

class SliceKernel : public CudaKernel {
 public:
  SliceKernel(bool from_inputs, std::vector<int64_t> starts, std::vector<int64_t> ends,
              std::vector<int64_t> axes)
      : from_inputs_(from_inputs), starts_(std::move(starts)), ends_(std::move(ends)),
        axes_(std::move(axes)) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (from_inputs_) {
      ASSIGN_OR_RETURN(starts, HostInts(*ctx.input(1), "Slice's starts"));
      ASSIGN_OR_RETURN(ends, HostInts(*ctx.input(2), "Slice's ends"));
      if (ctx.input(3)) {
        ASSIGN_OR_RETURN(axes, HostInts(*ctx.input(3), "Slice's axes"));
      }
      if (ctx.input(4)) {
        ASSIGN_OR_RETURN(steps, HostInts(*ctx.input(4), "Slice's steps"));
      }
    }
    std::vector<int64_t> begin, step;
    Shape out;
    RETURN_IF_ERROR(SliceBounds(x.shape, starts, ends, axes, steps, &begin, &step, &out));
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    RETURN_IF_ERROR(
        LaunchSlice(x.data, x.shape, y->data, out, begin, step, DTypeSize(x.dtype), ctx.stream()));
    if (x.host_ints && x.shape.size() == 1) {
      std::vector<int64_t> values;
      for (int64_t i = 0; i < out[0]; ++i) values.push_back((*x.host_ints)[begin[0] + i * step[0]]);
      Mirror(y, std::move(values));
    }
    return absl::OkStatus();
  }

 private:
  const bool from_inputs_;
  const std::vector<int64_t> starts_, ends_, axes_;
};

class GatherKernel : public CudaKernel {
 public:
  explicit GatherKernel(int64_t axis) : axis_(axis) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    const DeviceTensor& idx = *ctx.input(1);
    if (idx.dtype != DType::kInt64 && idx.dtype != DType::kInt32) {
      return absl::InvalidArgumentError("Gather indices must be int32 or int64");
    }
    const int rank = static_cast<int>(x.shape.size());
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, rank));
    const int64_t dim = x.shape[axis];
    if (idx.host_ints) {
      for (int64_t k : *idx.host_ints) {
        if (k < -dim || k >= dim) {
          return absl::InvalidArgumentError(absl::StrCat("Gather index ", k,
                                                         " is out of range for dim ", dim));
        }
      }
    }
    Shape out(x.shape.begin(), x.shape.begin() + axis);
    out.insert(out.end(), idx.shape.begin(), idx.shape.end());
    out.insert(out.end(), x.shape.begin() + axis + 1, x.shape.end());
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int d = axis + 1; d < rank; ++d) inner *= x.shape[d];
    RETURN_IF_ERROR(LaunchGather(x.data, outer, dim, inner, idx.data, idx.dtype == DType::kInt64,
                                 idx.num_elements(), y->data, DTypeSize(x.dtype), ctx.stream()));
    if (x.host_ints && idx.host_ints && rank == 1) {
      std::vector<int64_t> values;
      for (int64_t k : *idx.host_ints) values.push_back((*x.host_ints)[k < 0 ? k + dim : k]);
      Mirror(y, std::move(values));
    }
    return absl::OkStatus();
  }

 private:
  const int64_t axis_;
};

class ResizeKernel : public CudaKernel {
 public:
  ResizeKernel(ResizeMode mode, CoordinateMode coord, NearestMode nearest, int scales_input,
               int sizes_input)
      : mode_(mode), coord_(coord), nearest_(nearest), scales_input_(scales_input),
        sizes_input_(sizes_input) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    const int rank = static_cast<int>(x.shape.size());
    std::vector<double> scales;
    Shape out = x.shape;
    const DeviceTensor* sizes = sizes_input_ >= 0 ? ctx.input(sizes_input_) : nullptr;
    const DeviceTensor* sc = scales_input_ >= 0 ? ctx.input(scales_input_) : nullptr;
    if (sizes != nullptr && sizes->num_elements() > 0) {
      ASSIGN_OR_RETURN(auto s, HostInts(*sizes, "Resize's sizes"));
      if (static_cast<int>(s.size()) != rank) return absl::InvalidArgumentError("bad Resize sizes");
      for (int d = 0; d < rank; ++d) {
        out[d] = s[d];
        scales.push_back(x.shape[d] > 0 ? double(s[d]) / x.shape[d] : 1.0);
      }
    } else if (sc != nullptr && sc->num_elements() > 0) {
      ASSIGN_OR_RETURN(scales, HostFloats(*sc, "Resize's scales"));
      if (static_cast<int>(scales.size()) != rank) {
        return absl::InvalidArgumentError("bad Resize scales");
      }
      for (int d = 0; d < rank; ++d) out[d] = static_cast<int64_t>(x.shape[d] * scales[d]);
    } else {
      return absl::InvalidArgumentError("Resize needs scales or sizes");
    }
    for (int d = 0; d + 2 < rank; ++d) {
      if (out[d] != x.shape[d]) {
        return absl::UnimplementedError("Resize on cuda resizes the last two dims only");
      }
    }
    if (rank < 2) return absl::UnimplementedError("Resize on cuda needs rank >= 2");
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    const int64_t outer = NumElements(Shape(x.shape.begin(), x.shape.end() - 2));
    return LaunchResize2D(x.dtype, x.data, outer, x.shape[rank - 2], x.shape[rank - 1], y->data,
                          out[rank - 2], out[rank - 1], static_cast<float>(scales[rank - 2]),
                          static_cast<float>(scales[rank - 1]), mode_, coord_, nearest_,
                          ctx.stream());
  }

 private:
  const ResizeMode mode_;
  const CoordinateMode coord_;
  const NearestMode nearest_;
  const int scales_input_, sizes_input_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateIdentity(const CudaKernelInfo&) {
  return std::unique_ptr<CudaKernel>(new IdentityKernel());
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateConstant(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(Tensor value, cpu::ConstantValue(info.attrs()));
  ASSIGN_OR_RETURN(DeviceTensor t, ConstantToDevice(value, info.precision));
  return std::unique_ptr<CudaKernel>(new ConstantKernel(std::move(t)));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateReshape(const CudaKernelInfo& info) {
  if (info.opset() < 5) return absl::UnimplementedError("Reshape before opset 5 on cuda");
  ASSIGN_OR_RETURN(int64_t allowzero, info.attrs().GetInt("allowzero", 0));
  return std::unique_ptr<CudaKernel>(new ReshapeKernel(allowzero != 0));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateFlatten(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 1));
  return std::unique_ptr<CudaKernel>(new FlattenKernel(axis));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateSqueeze(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  return std::unique_ptr<CudaKernel>(new SqueezeKernel(false, info.opset() >= 13, axes));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateUnsqueeze(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  return std::unique_ptr<CudaKernel>(new SqueezeKernel(true, info.opset() >= 13, axes));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateShape(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t start, info.attrs().GetInt("start", 0));
  std::optional<int64_t> end;
  if (info.attrs().Has("end")) {
    ASSIGN_OR_RETURN(int64_t e, info.attrs().GetInt("end", 0));
    end = e;
  }
  return std::unique_ptr<CudaKernel>(new ShapeKernel(start, end));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateTranspose(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(std::vector<int64_t> perm, info.attrs().GetInts("perm", {}));
  return std::unique_ptr<CudaKernel>(new TransposeKernel(std::move(perm)));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateConcat(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 0));
  return std::unique_ptr<CudaKernel>(new ConcatKernel(axis));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreatePad(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(std::string mode_name, info.attrs().GetString("mode", "constant"));
  PadMode mode;
  if (mode_name == "constant") mode = PadMode::kConstant;
  else if (mode_name == "reflect") mode = PadMode::kReflect;
  else if (mode_name == "edge") mode = PadMode::kEdge;
  else return absl::UnimplementedError(absl::StrCat("Pad mode ", mode_name, " on cuda"));
  if (info.opset() >= 11) {
    return std::unique_ptr<CudaKernel>(new PadKernel(mode, {}, 0.0f, true));
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> pads, info.attrs().GetInts("pads", {}));
  ASSIGN_OR_RETURN(float value, info.attrs().GetFloat("value", 0.0f));
  return std::unique_ptr<CudaKernel>(new PadKernel(mode, std::move(pads), value, false));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateSlice(const CudaKernelInfo& info) {
  if (info.opset() >= 10) return std::unique_ptr<CudaKernel>(new SliceKernel(true, {}, {}, {}));
  ASSIGN_OR_RETURN(std::vector<int64_t> starts, info.attrs().GetInts("starts", {}));
  ASSIGN_OR_RETURN(std::vector<int64_t> ends, info.attrs().GetInts("ends", {}));
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  return std::unique_ptr<CudaKernel>(new SliceKernel(false, starts, ends, axes));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateGather(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", 0));
  return std::unique_ptr<CudaKernel>(new GatherKernel(axis));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateResize(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(std::string mode_name, info.attrs().GetString("mode", "nearest"));
  ResizeMode mode;
  if (mode_name == "nearest") mode = ResizeMode::kNearest;
  else if (mode_name == "linear" || mode_name == "bilinear") mode = ResizeMode::kLinear;
  else return absl::UnimplementedError(absl::StrCat("Resize mode ", mode_name, " on cuda"));
  const bool v11 = info.opset() >= 11;
  ASSIGN_OR_RETURN(std::string coord_name,
                   info.attrs().GetString("coordinate_transformation_mode",
                                          v11 ? "half_pixel" : "asymmetric"));
  CoordinateMode coord;
  if (coord_name == "half_pixel") coord = CoordinateMode::kHalfPixel;
  else if (coord_name == "pytorch_half_pixel") coord = CoordinateMode::kPytorchHalfPixel;
  else if (coord_name == "align_corners") coord = CoordinateMode::kAlignCorners;
  else if (coord_name == "asymmetric") coord = CoordinateMode::kAsymmetric;
  else if (coord_name == "tf_half_pixel_for_nn") coord = CoordinateMode::kTfHalfPixelForNn;
  else return absl::UnimplementedError(absl::StrCat("Resize coordinates ", coord_name, " on cuda"));
  ASSIGN_OR_RETURN(std::string nearest_name,
                   info.attrs().GetString("nearest_mode", "round_prefer_floor"));
  NearestMode nearest;
  if (nearest_name == "round_prefer_floor") nearest = NearestMode::kRoundPreferFloor;
  else if (nearest_name == "round_prefer_ceil") nearest = NearestMode::kRoundPreferCeil;
  else if (nearest_name == "floor") nearest = NearestMode::kFloor;
  else if (nearest_name == "ceil") nearest = NearestMode::kCeil;
  else return absl::UnimplementedError(absl::StrCat("Resize nearest_mode ", nearest_name));
  if (!v11) nearest = NearestMode::kFloor;  // opset 10's nearest rounds down
  return std::unique_ptr<CudaKernel>(
      new ResizeKernel(mode, coord, nearest, v11 ? 2 : 1, v11 ? 3 : -1));
}

}  // namespace inferd::models::cuda
