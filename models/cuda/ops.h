// Factories of the CUDA kernels, one family per file (activation_ops.cc, conv_op.cc,
// gemm_ops.cc, pool_ops.cc, layout_ops.cc), registered in register_cuda_kernels.cc.
#ifndef INFERD_MODELS_CUDA_OPS_H_
#define INFERD_MODELS_CUDA_OPS_H_

#include "models/cpu/kernel_util.h"  // host-side shape helpers shared with the CPU
#include "models/cuda/cuda_kernel.h"

namespace inferd::models::cuda {

using cpu::BroadcastShapes;
using cpu::NormalizeAxis;
using cpu::SliceBounds;

#define INFERD_CUDA_FACTORY(name) \
  absl::StatusOr<std::unique_ptr<CudaKernel>> Create##name(const CudaKernelInfo& info)

// activation_ops.cc
INFERD_CUDA_FACTORY(Relu);
INFERD_CUDA_FACTORY(LeakyRelu);
INFERD_CUDA_FACTORY(Clip);
INFERD_CUDA_FACTORY(Sigmoid);
INFERD_CUDA_FACTORY(Tanh);
INFERD_CUDA_FACTORY(HardSigmoid);
INFERD_CUDA_FACTORY(HardSwish);
INFERD_CUDA_FACTORY(Add);
INFERD_CUDA_FACTORY(Sub);
INFERD_CUDA_FACTORY(Mul);
INFERD_CUDA_FACTORY(Div);
INFERD_CUDA_FACTORY(Cast);
INFERD_CUDA_FACTORY(BatchNormalization);
// conv_op.cc
INFERD_CUDA_FACTORY(Conv);
// gemm_ops.cc
INFERD_CUDA_FACTORY(Gemm);
INFERD_CUDA_FACTORY(MatMul);
// pool_ops.cc
INFERD_CUDA_FACTORY(MaxPool);
INFERD_CUDA_FACTORY(AveragePool);
INFERD_CUDA_FACTORY(GlobalAveragePool);
INFERD_CUDA_FACTORY(GlobalMaxPool);
INFERD_CUDA_FACTORY(ReduceMean);
INFERD_CUDA_FACTORY(Softmax);
INFERD_CUDA_FACTORY(LogSoftmax);
// layout_ops.cc
INFERD_CUDA_FACTORY(Identity);
INFERD_CUDA_FACTORY(Constant);
INFERD_CUDA_FACTORY(Reshape);
INFERD_CUDA_FACTORY(Flatten);
INFERD_CUDA_FACTORY(Squeeze);
INFERD_CUDA_FACTORY(Unsqueeze);
INFERD_CUDA_FACTORY(Shape);
INFERD_CUDA_FACTORY(Transpose);
INFERD_CUDA_FACTORY(Concat);
INFERD_CUDA_FACTORY(Pad);
INFERD_CUDA_FACTORY(Slice);
INFERD_CUDA_FACTORY(Gather);
INFERD_CUDA_FACTORY(Resize);

#undef INFERD_CUDA_FACTORY

// Shared by the op files: tensor checks with errors that name the problem.
absl::Status RequireFloat(const DeviceTensor& t, const char* what);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_OPS_H_
