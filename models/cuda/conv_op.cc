// Conv on cuDNN: NCHW (1-D and 2-D convolutions as 2-D, 3-D as 3-D), groups (depthwise
// included), strides, dilations and pads; asymmetric pads become an explicit Pad first. The
// bias, the planner's fused residual Add (a 4th input) and fused Clip/Relu run in cuDNN's fused
// convolution + bias + activation call where cuDNN offers it (ReLU or none), else in one
// epilogue pass after cudnnConvolutionForward. Algorithms come from cuDNN's heuristics, once per
// input shape, limited to the lane's workspace. Math: strict FP32 unless TF32 was asked for;
// FP16 storage computes in FP32 on tensor cores.
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/cpu/window.h"
#include "models/cuda/cuda_device.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/elementwise.h"
#include "models/cuda/layout.h"
#include "models/cuda/ops.h"
#include "models/planner.h"

namespace inferd::models::cuda {
namespace {

cudnnDataType_t CudnnType(DType t) {
  return t == DType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
}

// cuDNN descriptors for one launch; destroyed with it.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ~Descriptors() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

absl::Status SetTensor(cudnnTensorDescriptor_t d, cudnnDataType_t type, const Shape& shape) {
  std::vector<int> dims(shape.begin(), shape.end()), strides(shape.size());
  int stride = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = stride;
    stride *= dims[i];
  }
  CUDNN_RETURN_IF_ERROR(cudnnSetTensorNdDescriptor(d, type, static_cast<int>(dims.size()),
                                                   dims.data(), strides.data()));
  return absl::OkStatus();
}

class ConvKernel : public CudaKernel {
 public:
  ConvKernel(cpu::WindowAttrs attrs, int64_t group, DeviceTensor weight, DeviceTensor bias,
             bool has_bias, bool residual, float lo, float hi, Precision precision)
      : attrs_(std::move(attrs)),
        group_(group),
        weight_(std::move(weight)),
        bias_(std::move(bias)),
        has_bias_(has_bias),
        residual_(residual),
        lo_(lo),
        hi_(hi),
        precision_(precision) {}

  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x0 = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x0, "input"));
    const Shape& ws = weight_.shape;  // [K, C/group, k...]
    if (x0.shape.size() != ws.size() || x0.shape.size() < 3 || x0.shape.size() > 5) {
      return absl::InvalidArgumentError(absl::StrCat("input ", ShapeToString(x0.shape),
                                                     " does not match weights ",
                                                     ShapeToString(ws)));
    }
    if (x0.shape[1] != ws[1] * group_) {
      return absl::InvalidArgumentError(absl::StrCat("input has ", x0.shape[1],
                                                     " channels, the weights expect ",
                                                     ws[1] * group_));
    }
    const Shape in_spatial(x0.shape.begin() + 2, x0.shape.end());
    const Shape kernel(ws.begin() + 2, ws.end());
    ASSIGN_OR_RETURN(cpu::WindowGeometry g, cpu::ComputeWindow(attrs_, in_spatial, kernel));
    const int spatial = static_cast<int>(in_spatial.size());
    const int first = cpu::kMaxSpatial - spatial;  // geometry arrays are right-aligned

    // Asymmetric pads: pad explicitly, then convolve without pads.
    DeviceTensor padded;
    const DeviceTensor* x = &x0;
    bool symmetric = true;
    for (int d = first; d < cpu::kMaxSpatial; ++d) symmetric &= g.pad_begin[d] == g.pad_end[d];
    if (!symmetric) {
      Shape shape = x0.shape;
      std::vector<int64_t> begin(shape.size(), 0);
      for (int d = 0; d < spatial; ++d) {
        shape[2 + d] += g.pad_begin[first + d] + g.pad_end[first + d];
        begin[2 + d] = g.pad_begin[first + d];
      }
      ASSIGN_OR_RETURN(padded, AllocateDevice(x0.dtype, shape, ctx.stream()));
      RETURN_IF_ERROR(LaunchPad(x0.dtype, x0.data, x0.shape, padded.data, shape, begin,
                                PadMode::kConstant, 0.0, ctx.stream()));
      x = &padded;
    }
    Shape out_shape = {x0.shape[0], ws[0]};
    g.AppendOutDims(out_shape);
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x0.dtype, out_shape));
    if (y->num_elements() == 0) return absl::OkStatus();

    // 1-D convolutions run as 2-D ones of height 1.
    Shape xs = x->shape, ys = out_shape, wshape = ws;
    std::vector<int> pad, stride, dilation;
    for (int d = first; d < cpu::kMaxSpatial; ++d) {
      pad.push_back(symmetric ? static_cast<int>(g.pad_begin[d]) : 0);
      stride.push_back(static_cast<int>(g.stride[d]));
      dilation.push_back(static_cast<int>(g.dilation[d]));
    }
    if (spatial == 1) {
      xs.insert(xs.begin() + 2, 1);
      ys.insert(ys.begin() + 2, 1);
      wshape.insert(wshape.begin() + 2, 1);
      pad.insert(pad.begin(), 0);
      stride.insert(stride.begin(), 1);
      dilation.insert(dilation.begin(), 1);
    }
    const cudnnDataType_t type = CudnnType(x0.dtype);
    Descriptors desc;
    CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&desc.x));
    CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&desc.y));
    CUDNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(&desc.w));
    CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&desc.conv));
    RETURN_IF_ERROR(SetTensor(desc.x, type, xs));
    RETURN_IF_ERROR(SetTensor(desc.y, type, ys));
    std::vector<int> wdims(wshape.begin(), wshape.end());
    CUDNN_RETURN_IF_ERROR(cudnnSetFilterNdDescriptor(desc.w, type, CUDNN_TENSOR_NCHW,
                                                     static_cast<int>(wdims.size()), wdims.data()));
    CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionNdDescriptor(
        desc.conv, static_cast<int>(pad.size()), pad.data(), stride.data(), dilation.data(),
        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(desc.conv, static_cast<int>(group_)));
    const cudnnMathType_t math = precision_ == Precision::kFp16   ? CUDNN_TENSOR_OP_MATH
                                 : precision_ == Precision::kTf32 ? CUDNN_DEFAULT_MATH
                                                                  : CUDNN_FMA_MATH;
    CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(desc.conv, math));
    Lane& lane = ctx.lane();
    ASSIGN_OR_RETURN(Choice choice, Algorithm(lane, desc, xs));
    const cudnnConvolutionFwdAlgo_t algo = choice.algo;
    CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(desc.conv, choice.math));

    const float one = 1.0f, zero = 0.0f;
    const bool relu_only = lo_ == 0.0f && std::isinf(hi_) && hi_ > 0;
    const bool no_act = std::isinf(lo_) && lo_ < 0 && std::isinf(hi_) && hi_ > 0;
    const DeviceTensor* residual = residual_ ? ctx.input(3) : nullptr;
    // The planner folds either operand of an Add into the Conv, of any shape: one that only
    // broadcasts to the output (a [C,1,1] constant) is added by a broadcasting pass.
    const DeviceTensor* broadcast_residual = nullptr;
    if (residual != nullptr && residual->shape != out_shape) {
      ASSIGN_OR_RETURN(Shape sum, BroadcastShapes(out_shape, residual->shape));
      if (sum != out_shape) {
        return absl::UnimplementedError(absl::StrCat(
            "the fused residual ", ShapeToString(residual->shape), " broadcasts the output ",
            ShapeToString(out_shape), " to ", ShapeToString(sum), " on cuda"));
      }
      broadcast_residual = residual;
      residual = nullptr;
    }
    if (has_bias_ && relu_only && broadcast_residual == nullptr) {
      // cuDNN's fused call: y = relu(conv(x) + alpha2 * z + bias), z the residual (or y).
      CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&desc.bias));
      Shape bshape(ys.size(), 1);
      bshape[1] = ws[0];
      RETURN_IF_ERROR(SetTensor(desc.bias, type, bshape));
      CUDNN_RETURN_IF_ERROR(cudnnCreateActivationDescriptor(&desc.act));
      CUDNN_RETURN_IF_ERROR(
          cudnnSetActivationDescriptor(desc.act, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0));
      const float alpha2 = residual ? 1.0f : 0.0f;
      const cudnnStatus_t fused = cudnnConvolutionBiasActivationForward(
          lane.cudnn(), &one, desc.x, x->data, desc.w, weight_.data, desc.conv, algo,
          lane.workspace(), lane.workspace_bytes(), &alpha2, desc.y,
          residual ? residual->data : y->data, desc.bias, bias_.data, desc.act, desc.y, y->data);
      if (fused == CUDNN_STATUS_SUCCESS) return absl::OkStatus();
      if (fused != CUDNN_STATUS_NOT_SUPPORTED) {
        CUDNN_RETURN_IF_ERROR(fused);
      }
      // Not offered for this configuration: the unfused path below.
    }
    CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(lane.cudnn(), &one, desc.x, x->data, desc.w,
                                                  weight_.data, desc.conv, algo, lane.workspace(),
                                                  lane.workspace_bytes(), &zero, desc.y, y->data));
    const float inf = std::numeric_limits<float>::infinity();
    if (has_bias_ || residual != nullptr || (!no_act && broadcast_residual == nullptr)) {
      int64_t spatial_size = 1;
      for (size_t d = 2; d < out_shape.size(); ++d) spatial_size *= out_shape[d];
      // With a broadcast residual still to come, the activation waits for it.
      RETURN_IF_ERROR(LaunchConvEpilogue(
          y->dtype, y->data, has_bias_ ? bias_.data : nullptr, residual ? residual->data : nullptr,
          out_shape[0], out_shape[1], spatial_size, broadcast_residual ? -inf : lo_,
          broadcast_residual ? inf : hi_, ctx.stream()));
    }
    if (broadcast_residual == nullptr) return absl::OkStatus();
    return LaunchBinary(BinaryOp::kAdd, y->dtype, y->data, out_shape, broadcast_residual->data,
                        broadcast_residual->shape, y->data, out_shape, lo_, hi_, ctx.stream());
  }

 private:
  struct Choice {
    cudnnConvolutionFwdAlgo_t algo;
    cudnnMathType_t math;
  };
  // cuDNN's best heuristic choice that fits the workspace, with the math type it was rated
  // with (FMA under strict FP32), cached per input shape.
  absl::StatusOr<Choice> Algorithm(Lane& lane, const Descriptors& desc, const Shape& xs) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = algos_.find(xs); it != algos_.end()) return it->second;
    }
    constexpr int kWant = 8;
    cudnnConvolutionFwdAlgoPerf_t perf[kWant];
    int got = 0;
    CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(
        lane.cudnn(), desc.x, desc.w, desc.conv, desc.y, kWant, &got, perf));
    for (int i = 0; i < got; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= lane.workspace_bytes()) {
        // Strict FP32 keeps FMA math whatever the heuristics rated the algorithm with.
        const Choice choice{perf[i].algo,
                            precision_ == Precision::kFp32 ? CUDNN_FMA_MATH : perf[i].mathType};
        std::lock_guard<std::mutex> lock(mu_);
        algos_[xs] = choice;
        return choice;
      }
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        "no cuDNN convolution algorithm for input ", ShapeToString(xs), " fits the ",
        lane.workspace_bytes() >> 20, " MiB workspace"));
  }

  const cpu::WindowAttrs attrs_;
  const int64_t group_;
  const DeviceTensor weight_, bias_;
  const bool has_bias_, residual_;
  const float lo_, hi_;
  const Precision precision_;
  mutable std::mutex mu_;
  mutable std::map<Shape, Choice> algos_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateConv(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(cpu::WindowAttrs attrs, cpu::ReadWindowAttrs(info.attrs()));
  if (attrs.ceil_mode) return absl::InvalidArgumentError("Conv has no ceil_mode");
  ASSIGN_OR_RETURN(int64_t group, info.attrs().GetInt("group", 1));
  const DeviceTensor* w = info.constant_input(1);
  if (w == nullptr) {
    return absl::UnimplementedError("Conv on cuda needs constant weights");
  }
  if (w->shape.size() < 3 || w->shape.size() > 5 || group < 1 || w->shape[0] % group != 0) {
    return absl::InvalidArgumentError(absl::StrCat("weights ", ShapeToString(w->shape),
                                                   " do not fit group ", group));
  }
  const bool has_bias = info.has_input(2);
  DeviceTensor bias;
  if (has_bias) {
    if (info.constant_input(2) == nullptr) {
      return absl::UnimplementedError("Conv on cuda needs a constant bias");
    }
    bias = *info.constant_input(2);
    if (bias.num_elements() != w->shape[0]) {
      return absl::InvalidArgumentError(absl::StrCat("bias has ", bias.num_elements(),
                                                     " values for ", w->shape[0], " channels"));
    }
  }
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  if (info.attrs().Has(kFusedActivation)) {
    ASSIGN_OR_RETURN(lo, info.attrs().GetFloat(kFusedClipMin, lo));
    ASSIGN_OR_RETURN(hi, info.attrs().GetFloat(kFusedClipMax, hi));
  }
  const bool residual = info.has_input(3);
  return std::unique_ptr<CudaKernel>(new ConvKernel(std::move(attrs), group, *w, std::move(bias),
                                                    has_bias, residual, lo, hi, info.precision));
}

}  // namespace inferd::models::cuda
