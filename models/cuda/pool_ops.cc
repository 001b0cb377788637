// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean, Softmax and LogSoftmax on
// CUDA. Window geometry (pads, auto_pad, ceil_mode, dilations) is computed on the host by the
// same code as on the CPU (models/cpu/window.h).
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/cpu/window.h"
#include "models/cuda/ops.h"
#include "models/cuda/pool.h"

namespace inferd::models::cuda {
namespace {

class PoolKernel : public CudaKernel {
 public:
  PoolKernel(PoolKind kind, cpu::WindowAttrs attrs, bool count_include_pad)
      : kind_(kind), attrs_(std::move(attrs)), count_include_pad_(count_include_pad) {}

  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    if (x.shape.size() < 3 || x.shape.size() > 2 + cpu::kMaxSpatial) {
      return absl::InvalidArgumentError(
          absl::StrCat("pooling takes [N, C, 1 to 3 spatial dims], got ", ShapeToString(x.shape)));
    }
    const Shape spatial(x.shape.begin() + 2, x.shape.end());
    ASSIGN_OR_RETURN(cpu::WindowGeometry w, cpu::ComputeWindow(attrs_, spatial, {}));
    Shape out = {x.shape[0], x.shape[1]};
    w.AppendOutDims(out);
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    PoolGeometry g;
    g.dims = cpu::kMaxSpatial;  // right-aligned; leading dims of size 1
    for (int d = 0; d < cpu::kMaxSpatial; ++d) {
      g.in[d] = w.in[d];
      g.out[d] = w.out[d];
      g.kernel[d] = w.kernel[d];
      g.stride[d] = w.stride[d];
      g.dilation[d] = w.dilation[d];
      g.pad_begin[d] = w.pad_begin[d];
      g.pad_end[d] = w.pad_end[d];
    }
    return LaunchPool(kind_, x.dtype, x.data, y->data, x.shape[0] * x.shape[1], g,
                      count_include_pad_, ctx.stream());
  }

 private:
  const PoolKind kind_;
  const cpu::WindowAttrs attrs_;
  const bool count_include_pad_;
};

// Global pooling and ReduceMean: a reduction over a contiguous block of dims.
class ReduceKernel : public CudaKernel {
 public:
  // `axes` empty: all dims but the first two (global pooling) when `global`, else all dims.
  ReduceKernel(bool mean, bool global, std::vector<int64_t> axes, bool keepdims)
      : mean_(mean), global_(global), axes_(std::move(axes)), keepdims_(keepdims) {}

  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<bool> reduced(rank, false);
    if (global_) {
      if (rank < 3) return absl::InvalidArgumentError("global pooling needs [N, C, spatial...]");
      for (int64_t d = 2; d < rank; ++d) reduced[d] = true;
    } else if (axes_.empty()) {
      reduced.assign(rank, true);
    } else {
      for (int64_t a : axes_) {
        ASSIGN_OR_RETURN(int d, NormalizeAxis(a, static_cast<int>(rank)));
        reduced[d] = true;
      }
    }
    int64_t first = rank, last = -1;
    for (int64_t d = 0; d < rank; ++d) {
      if (reduced[d]) {
        first = std::min(first, d);
        last = d;
      }
    }
    for (int64_t d = first; d <= last; ++d) {
      if (!reduced[d]) {
        return absl::UnimplementedError(
            "ReduceMean on cuda reduces a contiguous block of axes only");
      }
    }
    int64_t outer = 1, reduce = 1, inner = 1;
    Shape out;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < first) outer *= x.shape[d];
      else if (d > last) inner *= x.shape[d];
      else reduce *= x.shape[d];
      if (!reduced[d]) out.push_back(x.shape[d]);
      else if (keepdims_) out.push_back(1);
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, out));
    if (reduce == 0) return absl::InvalidArgumentError("reduction over an empty dimension");
    return LaunchReduce(mean_, x.dtype, x.data, y->data, outer, reduce, inner, ctx.stream());
  }

 private:
  const bool mean_, global_;
  const std::vector<int64_t> axes_;
  const bool keepdims_;
};

class SoftmaxKernel : public CudaKernel {
 public:
  SoftmaxKernel(bool log, int64_t axis, bool whole_tail) : log_(log), axis_(axis), whole_tail_(whole_tail) {}

  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    ASSIGN_OR_RETURN(int axis, NormalizeAxis(axis_, static_cast<int>(rank)));
    int64_t outer = 1, dim = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < axis) outer *= x.shape[d];
      else if (d == axis || whole_tail_) dim *= x.shape[d];
      else inner *= x.shape[d];
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, x.shape));
    return LaunchSoftmax(log_, x.dtype, x.data, y->data, outer, dim, inner, ctx.stream());
  }

 private:
  const bool log_;
  const int64_t axis_;
  const bool whole_tail_;  // before opset 13: the input is flattened to 2-D at `axis`
};

absl::StatusOr<std::unique_ptr<CudaKernel>> Pool(const CudaKernelInfo& info, PoolKind kind) {
  ASSIGN_OR_RETURN(cpu::WindowAttrs attrs, cpu::ReadWindowAttrs(info.attrs()));
  if (attrs.kernel_shape.empty()) return absl::InvalidArgumentError("kernel_shape is required");
  if (info.node.outputs.size() > 1 && info.node.outputs[1] != kNoValue) {
    return absl::UnimplementedError("MaxPool's Indices output on cuda");
  }
  ASSIGN_OR_RETURN(int64_t include_pad, info.attrs().GetInt("count_include_pad", 0));
  return std::unique_ptr<CudaKernel>(new PoolKernel(kind, std::move(attrs), include_pad != 0));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> Softmax(const CudaKernelInfo& info, bool log) {
  const bool v13 = info.opset() >= 13;
  ASSIGN_OR_RETURN(int64_t axis, info.attrs().GetInt("axis", v13 ? -1 : 1));
  return std::unique_ptr<CudaKernel>(new SoftmaxKernel(log, axis, !v13));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateMaxPool(const CudaKernelInfo& info) {
  return Pool(info, PoolKind::kMax);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateAveragePool(const CudaKernelInfo& info) {
  return Pool(info, PoolKind::kAverage);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateGlobalAveragePool(const CudaKernelInfo&) {
  return std::unique_ptr<CudaKernel>(new ReduceKernel(true, true, {}, true));
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateGlobalMaxPool(const CudaKernelInfo&) {
  return std::unique_ptr<CudaKernel>(new ReduceKernel(false, true, {}, true));
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateReduceMean(const CudaKernelInfo& info) {
  if (info.opset() >= 18 && info.has_input(1)) {
    return absl::UnimplementedError("ReduceMean with axes as an input on cuda");
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> axes, info.attrs().GetInts("axes", {}));
  ASSIGN_OR_RETURN(int64_t keepdims, info.attrs().GetInt("keepdims", 1));
  return std::unique_ptr<CudaKernel>(new ReduceKernel(true, false, std::move(axes), keepdims != 0));
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateSoftmax(const CudaKernelInfo& info) {
  return Softmax(info, false);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateLogSoftmax(const CudaKernelInfo& info) {
  return Softmax(info, true);
}

}  // namespace inferd::models::cuda
