// Gemm and MatMul on cuBLAS (cublasGemmEx / cublasGemmStridedBatchedEx). Row-major products are
// computed as the column-major product of the transposes, so nothing is transposed in memory.
// FP32 runs with FP32 compute (TF32 only with --precision=tf32); FP16 storage computes in FP32
// on tensor cores.
#include <algorithm>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "models/cuda/cuda_device.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/elementwise.h"
#include "models/cuda/ops.h"

namespace inferd::models::cuda {
namespace {

cudaDataType_t BlasType(DType t) { return t == DType::kFloat16 ? CUDA_R_16F : CUDA_R_32F; }

// TF32 applies to float32 data only; float16 data computes in FP32 on tensor cores either way.
cublasComputeType_t Compute(Precision p, DType dtype) {
  return p == Precision::kTf32 && dtype == DType::kFloat32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                           : CUBLAS_COMPUTE_32F;
}

// Row-major Y[b] (m x n) = alpha * op(A[b]) (m x k) * op(B[b]) (k x n), for `batch` products
// with element strides between them (0: the same matrix for all).
absl::Status RowMajorGemm(Lane& lane, Precision precision, DType dtype, bool trans_a,
                          bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const void* a, int64_t stride_a, const void* b, int64_t stride_b,
                          void* y, int64_t stride_y, int64_t batch) {
  const float beta = 0.0f;
  const cudaDataType_t type = BlasType(dtype);
  if (k == 0) {  // an empty sum: zeros (cuBLAS rejects the zero leading dimensions)
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(y, 0, static_cast<size_t>(batch * m * n) * DTypeSize(dtype),
                                         lane.stream()));
    return absl::OkStatus();
  }
  const int lda = static_cast<int>(std::max<int64_t>(1, trans_a ? m : k));
  const int ldb = static_cast<int>(std::max<int64_t>(1, trans_b ? k : n));
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1) {
    CUBLAS_RETURN_IF_ERROR(cublasGemmEx(lane.cublas(), op_b, op_a, static_cast<int>(n),
                                        static_cast<int>(m), static_cast<int>(k), &alpha, b, type,
                                        ldb, a, type, lda, &beta, y, type, static_cast<int>(n),
                                        Compute(precision, dtype), CUBLAS_GEMM_DEFAULT));
  } else {
    CUBLAS_RETURN_IF_ERROR(cublasGemmStridedBatchedEx(
        lane.cublas(), op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
        &alpha, b, type, ldb, stride_b, a, type, lda, stride_a, &beta, y, type,
        static_cast<int>(n), stride_y, static_cast<int>(batch), Compute(precision, dtype),
        CUBLAS_GEMM_DEFAULT));
  }
  return absl::OkStatus();
}

class GemmKernel : public CudaKernel {
 public:
  GemmKernel(bool trans_a, bool trans_b, float alpha, float beta, std::optional<DeviceTensor> c)
      : trans_a_(trans_a), trans_b_(trans_b), alpha_(alpha), beta_(beta), c_(std::move(c)) {}

  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& a = *ctx.input(0);
    const DeviceTensor& b = *ctx.input(1);
    RETURN_IF_ERROR(RequireFloat(a, "A"));
    RETURN_IF_ERROR(RequireFloat(b, "B"));
    if (a.shape.size() != 2 || b.shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("Gemm takes matrices, got ",
                                                     ShapeToString(a.shape), " and ",
                                                     ShapeToString(b.shape)));
    }
    const int64_t m = trans_a_ ? a.shape[1] : a.shape[0];
    const int64_t k = trans_a_ ? a.shape[0] : a.shape[1];
    const int64_t kb = trans_b_ ? b.shape[1] : b.shape[0];
    const int64_t n = trans_b_ ? b.shape[0] : b.shape[1];
    if (k != kb) {
      return absl::InvalidArgumentError(absl::StrCat("inner dimensions differ: ", k, " and ", kb));
    }
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, a.dtype, {m, n}));
    if (y->num_elements() == 0) return absl::OkStatus();
    RETURN_IF_ERROR(RowMajorGemm(ctx.lane(), ctx.precision(), a.dtype, trans_a_, trans_b_, m, n,
                                 k, alpha_, a.data, 0, b.data, 0, y->data, 0, 1));
    // + beta * C, broadcast (C constant: pre-scaled at load; else beta must be 1).
    const DeviceTensor* c = c_ ? &*c_ : ctx.input(2);
    if (c == nullptr || beta_ == 0.0f) return absl::OkStatus();
    if (!c_ && beta_ != 1.0f) {
      return absl::UnimplementedError("Gemm on cuda with a computed C needs beta = 1");
    }
    ASSIGN_OR_RETURN(Shape out, BroadcastShapes(y->shape, c->shape));
    if (out != y->shape) {
      return absl::InvalidArgumentError(absl::StrCat("C ", ShapeToString(c->shape),
                                                     " does not broadcast to ",
                                                     ShapeToString(y->shape)));
    }
    const float inf = std::numeric_limits<float>::infinity();
    return LaunchBinary(BinaryOp::kAdd, y->dtype, y->data, y->shape, c->data, c->shape, y->data,
                        y->shape, -inf, inf, ctx.stream());
  }

 private:
  const bool trans_a_, trans_b_;
  const float alpha_, beta_;
  const std::optional<DeviceTensor> c_;  // constant C, already multiplied by beta
};

class MatMulKernel : public CudaKernel {
 public:
  absl::Status Launch(CudaContext& ctx) const override {
    const DeviceTensor& a = *ctx.input(0);
    const DeviceTensor& b = *ctx.input(1);
    RETURN_IF_ERROR(RequireFloat(a, "A"));
    RETURN_IF_ERROR(RequireFloat(b, "B"));
    if (a.shape.empty() || b.shape.empty()) {
      return absl::InvalidArgumentError("MatMul operands must have rank >= 1");
    }
    // 1-D operands are promoted to matrices and the added dimension dropped from the result.
    Shape as = a.shape, bs = b.shape;
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const int64_t m = as[as.size() - 2], k = as.back(), kb = bs[bs.size() - 2], n = bs.back();
    if (k != kb) {
      return absl::InvalidArgumentError(absl::StrCat("inner dimensions differ: ",
                                                     ShapeToString(a.shape), " x ",
                                                     ShapeToString(b.shape)));
    }
    const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    ASSIGN_OR_RETURN(Shape batch_shape, BroadcastShapes(a_batch, b_batch));
    const int64_t batch = NumElements(batch_shape);
    Shape out = batch_shape;
    if (!a_vec) out.push_back(m);
    if (!b_vec) out.push_back(n);
    ASSIGN_OR_RETURN(DeviceTensor * y, ctx.Allocate(0, a.dtype, out));
    if (y->num_elements() == 0) return absl::OkStatus();
    const int64_t a_count = NumElements(a_batch), b_count = NumElements(b_batch);
    if (b_count == 1) {
      // B shared: fold A's batch into its rows, one GEMM.
      return RowMajorGemm(ctx.lane(), ctx.precision(), a.dtype, false, false, a_count * m, n, k,
                          1.0f, a.data, 0, b.data, 0, y->data, 0, 1);
    }
    // An operand with as many matrices as the result is not broadcast in any dimension, so its
    // matrices are in the result's order.
    if ((a_count == batch || a_count == 1) && (b_count == batch || b_count == 1)) {
      return RowMajorGemm(ctx.lane(), ctx.precision(), a.dtype, false, false, m, n, k, 1.0f,
                          a.data, a_count == 1 ? 0 : m * k, b.data, b_count == 1 ? 0 : k * n,
                          y->data, m * n, batch);
    }
    return absl::UnimplementedError(absl::StrCat("MatMul on cuda cannot broadcast batch dims of ",
                                                 ShapeToString(a.shape), " and ",
                                                 ShapeToString(b.shape)));
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateGemm(const CudaKernelInfo& info) {
  ASSIGN_OR_RETURN(int64_t trans_a, info.attrs().GetInt("transA", 0));
  ASSIGN_OR_RETURN(int64_t trans_b, info.attrs().GetInt("transB", 0));
  ASSIGN_OR_RETURN(float alpha, info.attrs().GetFloat("alpha", 1.0f));
  ASSIGN_OR_RETURN(float beta, info.attrs().GetFloat("beta", 1.0f));
  std::optional<DeviceTensor> c;
  if (info.has_input(2) && info.host_constant(2) != nullptr && beta != 0.0f) {
    const Tensor& host = *info.host_constant(2);
    if (host.dtype() != DType::kFloat32) {
      return absl::UnimplementedError("Gemm on cuda takes a float32 C");
    }
    // beta * C at load, stored like every other float constant.
    std::vector<float> scaled(host.num_elements());
    for (int64_t i = 0; i < host.num_elements(); ++i) scaled[i] = beta * host.data<float>()[i];
    ASSIGN_OR_RETURN(DeviceTensor t,
                     ConstantToDevice(Tensor::FromVector<float>(host.shape(), scaled),
                                      info.precision));
    c = std::move(t);
  }
  return std::unique_ptr<CudaKernel>(
      new GemmKernel(trans_a != 0, trans_b != 0, alpha, beta, std::move(c)));
}

absl::StatusOr<std::unique_ptr<CudaKernel>> CreateMatMul(const CudaKernelInfo&) {
  return std::unique_ptr<CudaKernel>(new MatMulKernel());
}

}  // namespace inferd::models::cuda
