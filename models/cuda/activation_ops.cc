// Activations, broadcasting arithmetic (with the planner's fused Clip), Cast and
// BatchNormalization (inference) on CUDA.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/cuda/elementwise.h"
#include "models/cuda/ops.h"
#include "models/planner.h"

namespace inferd::models::cuda {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

class UnaryKernel : public CudaKernel {
 public:
  UnaryKernel(UnaryOp op, float alpha, float beta) : op_(op), alpha_(alpha), beta_(beta) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, x.shape));
    return LaunchUnary(op_, x.dtype, x.data, y->data, x.num_elements(), alpha_, beta_,
                       ctx.stream());
  }

 private:
  const UnaryOp op_;
  const float alpha_, beta_;
};

// Clip from opset 11 takes its bounds as inputs; they must be known on the host.
class ClipInputsKernel : public CudaKernel {
 public:
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    float lo = -kInf, hi = kInf;
    for (int k = 1; k <= 2; ++k) {
      if (const DeviceTensor* b = ctx.input(k)) {
        ASSIGN_OR_RETURN(auto v, HostFloats(*b, k == 1 ? "Clip's min" : "Clip's max"));
        if (v.size() != 1) return absl::InvalidArgumentError("Clip bounds must be scalars");
        (k == 1 ? lo : hi) = static_cast<float>(v[0]);
      }
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, x.shape));
    return LaunchUnary(UnaryOp::kClip, x.dtype, x.data, y->data, x.num_elements(), lo, hi,
                       ctx.stream());
  }
};

// The planner's fused activation (models/planner.h) as clip bounds.
absl::Status FusedBounds(const AttributeMap& attrs, float* lo, float* hi) {
  *lo = -kInf;
  *hi = kInf;
  if (!attrs.Has(kFusedActivation)) return absl::OkStatus();
  ASSIGN_OR_RETURN(*lo, attrs.GetFloat(kFusedClipMin, -kInf));
  ASSIGN_OR_RETURN(*hi, attrs.GetFloat(kFusedClipMax, kInf));
  return absl::OkStatus();
}

int64_t ApplyInt(BinaryOp op, int64_t a, int64_t b) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return b == 0 ? 0 : a / b;
  }
  return a;
}

class BinaryKernel : public CudaKernel {
 public:
  BinaryKernel(BinaryOp op, float lo, float hi) : op_(op), lo_(lo), hi_(hi) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& a = *ctx.input(0);
    const DeviceTensor& b = *ctx.input(1);
    if (a.dtype != b.dtype) {
      return absl::InvalidArgumentError(absl::StrCat("operand types differ: ", DTypeName(a.dtype),
                                                     " and ", DTypeName(b.dtype)));
    }
    ASSIGN_OR_RETURN(Shape out, BroadcastShapes(a.shape, b.shape));
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, a.dtype, out));
    RETURN_IF_ERROR(LaunchBinary(op_, a.dtype, a.data, a.shape, b.data, b.shape, y->data, out,
                                 lo_, hi_, ctx.stream()));
    // Shape arithmetic keeps its values on the host too.
    if (a.host_ints && b.host_ints && y->num_elements() <= kHostMirrorLimit &&
        (a.host_ints->size() == 1 || b.host_ints->size() == 1 || a.shape == b.shape)) {
      auto values = std::make_shared<std::vector<int64_t>>();
      for (int64_t i = 0; i < y->num_elements(); ++i) {
        const int64_t x = (*a.host_ints)[a.host_ints->size() == 1 ? 0 : i];
        const int64_t z = (*b.host_ints)[b.host_ints->size() == 1 ? 0 : i];
        values->push_back(ApplyInt(op_, x, z));
      }
      y->host_ints = std::move(values);
    }
    return absl::OkStatus();
  }

 private:
  const BinaryOp op_;
  const float lo_, hi_;
};

class CastKernel : public CudaKernel {
 public:
  explicit CastKernel(DType to) : to_(to) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    // Float values are stored in the executor's float type: a cast to float32 under fp16
    // produces float16 storage.
    const DType to = to_ == DType::kFloat32 ? ctx.float_type() : to_;
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, to, x.shape));
    RETURN_IF_ERROR(LaunchCast(x.dtype, to, x.data, y->data, x.num_elements(), ctx.stream()));
    if (x.host_ints && (to == DType::kInt64 || to == DType::kInt32)) y->host_ints = x.host_ints;
    if (x.host_floats && (to == DType::kInt64 || to == DType::kInt32)) {
      auto values = std::make_shared<std::vector<int64_t>>();
      for (double v : *x.host_floats) values->push_back(static_cast<int64_t>(v));
      y->host_ints = std::move(values);
    }
    if ((x.host_ints || x.host_floats) && (to == DType::kFloat32 || to == DType::kFloat16)) {
      ASSIGN_OR_RETURN(auto values, HostFloats(x, "Cast input"));
      y->host_floats = std::make_shared<std::vector<double>>(std::move(values));
    }
    return absl::OkStatus();
  }

 private:
  const DType to_;
};

class BatchNormKernel : public CudaKernel {
 public:
  BatchNormKernel(std::shared_ptr<void> scale, std::shared_ptr<void> shift, int64_t channels)
      : scale_(std::move(scale)), shift_(std::move(shift)), channels_(channels) {}
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& x = *ctx.input(0);
    RETURN_IF_ERROR(RequireFloat(x, "input"));
    if (x.shape.size() < 2 || x.shape[1] != channels_) {
      return absl::InvalidArgumentError(absl::StrCat("input ", ShapeToString(x.shape),
                                                     " does not have ", channels_, " channels"));
    }
    int64_t spatial = 1;
    for (size_t d = 2; d < x.shape.size(); ++d) spatial *= x.shape[d];
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, x.dtype, x.shape));
    return LaunchChannelAffine(x.dtype, x.data, y->data, static_cast<const float*>(scale_.get()),
                               static_cast<const float*>(shift_.get()), x.shape[0], channels_,
                               spatial, ctx.stream());
  }

 private:
  std::shared_ptr<void> scale_, shift_;
  const int64_t channels_;
};

absl::StatusOr<std::unique_ptr<CudaKernel>> Unary(UnaryOp op, float alpha = 0, float beta = 0) {
  return std::unique_ptr<CudaKernel>(new UnaryKernel(op, alpha, beta));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> Binary(const CudaKernelInfo& info, BinaryOp op) {
  float lo, hi;
  RETURN_IF_ERROR(FusedBounds(info.attrs(), &lo, &hi));
  return std::unique_ptr<CudaKernel>(new BinaryKernel(op, lo, hi));
}

}  // namespace

absl::Status RequireFloat(const DeviceTensor& t, const char* what) {
  if (t.dtype == DType::kFloat32 || t.dtype == DType::kFloat16) return absl::OkStatus();
  return absl::UnimplementedError(
      absl::StrCat(what, " is ", DTypeName(t.dtype), "; this op runs on float tensors on cuda"));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateRelu(const CudaKernelInfo&) {
  return Unary(UnaryOp::kRelu);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateLeakyRelu(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(float alpha, info.attrs().GetFloat("alpha", 0.01f));
  return Unary(UnaryOp::kLeakyRelu, alpha);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateClip(const CudaKernelInfo& info) {
  if (info.opset() >= 11) return std::unique_ptr<CudaKernel>(new ClipInputsKernel());
  ASSIGN_OR_RETURN(float lo, info.attrs().GetFloat("min", -kInf));
  ASSIGN_OR_RETURN(float hi, info.attrs().GetFloat("max", kInf));
  return Unary(UnaryOp::kClip, lo, hi);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateSigmoid(const CudaKernelInfo&) {
  return Unary(UnaryOp::kSigmoid);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateTanh(const CudaKernelInfo&) {
  return Unary(UnaryOp::kTanh);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateHardSigmoid(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(float alpha, info.attrs().GetFloat("alpha", 0.2f));
  ASSIGN_OR_RETURN(float beta, info.attrs().GetFloat("beta", 0.5f));
  return Unary(UnaryOp::kHardSigmoid, alpha, beta);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateHardSwish(const CudaKernelInfo&) {
  return Unary(UnaryOp::kHardSwish);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateAdd(const CudaKernelInfo& info) {
  return Binary(info, BinaryOp::kAdd);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateSub(const CudaKernelInfo& info) {
  return Binary(info, BinaryOp::kSub);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateMul(const CudaKernelInfo& info) {
  return Binary(info, BinaryOp::kMul);
}
absl::StatusOr<std::unique_ptr<CudaKernel>> CreateDiv(const CudaKernelInfo& info) {
  return Binary(info, BinaryOp::kDiv);
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateCast(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t to, info.attrs().GetInt("to", 0));
  const DType dtype = DTypeFromOnnx(static_cast<int>(to));
  if (DTypeSize(dtype) == 0 || dtype == DType::kBFloat16 || dtype == DType::kString) {
    return absl::UnimplementedError(absl::StrCat("Cast to ONNX type ", to, " on cuda"));
  }
  return std::unique_ptr<CudaKernel>(new CastKernel(dtype));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateBatchNormalization(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t training, info.attrs().GetInt("training_mode", 0));
  if (training != 0) {
    return absl::UnimplementedError("BatchNormalization in training mode on cuda");
  }
  ASSIGN_OR_RETURN(float epsilon, info.attrs().GetFloat("epsilon", 1e-5f));
  const Tensor* params[4];
  for (int i = 0; i < 4; ++i) {
    params[i] = info.host_constant(i + 1);
    if (params[i] == nullptr || params[i]->dtype() != DType::kFloat32 || params[i]->rank() != 1) {
      return absl::UnimplementedError(
          "BatchNormalization on cuda needs constant float32 scale, bias, mean and variance");
    }
  }
  const int64_t c = params[0]->num_elements();
  for (int i = 1; i < 4; ++i) {
    if (params[i]->num_elements() != c) {
      return absl::InvalidArgumentError(
          "BatchNormalization's scale, bias, mean and variance differ in length");
    }
  }
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    const float s = params[0]->data<float>()[i] / std::sqrt(params[3]->data<float>()[i] + epsilon);
    scale[i] = s;
    shift[i] = params[1]->data<float>()[i] - params[2]->data<float>()[i] * s;
  }
  ASSIGN_OR_RETURN(auto dscale, UploadToDevice(scale.data(), c * sizeof(float)));
  ASSIGN_OR_RETURN(auto dshift, UploadToDevice(shift.data(), c * sizeof(float)));
  return std::unique_ptr<CudaKernel>(new BatchNormKernel(std::move(dscale), std::move(dshift), c));
}

}  // namespace inferd::models::cuda
