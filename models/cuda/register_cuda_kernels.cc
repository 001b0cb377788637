// The CUDA kernel table: every op the CPU runtime registers (models/cpu/register_cpu_kernels.cc)
// has an entry here.
#include "models/cuda/ops.h"

namespace inferd::models::cuda {
namespace {

void RegisterCudaKernels(CudaKernelRegistry& registry) {
  struct Row {
    const char* op;
    int64_t min_opset;
    CudaKernelFactory factory;
  };
  static const Row kTable[] = {
      {"Add", kMinOpset, CreateAdd},
      {"AveragePool", kMinOpset, CreateAveragePool},
      {"BatchNormalization", kMinOpset, CreateBatchNormalization},
      {"Cast", kMinOpset, CreateCast},
      {"Clip", kMinOpset, CreateClip},
      {"Concat", kMinOpset, CreateConcat},
      {"Constant", kMinOpset, CreateConstant},
      {"Conv", kMinOpset, CreateConv},
      {"Div", kMinOpset, CreateDiv},
      {"Flatten", kMinOpset, CreateFlatten},
      {"Gather", kMinOpset, CreateGather},
      {"Gemm", kMinOpset, CreateGemm},
      {"GlobalAveragePool", kMinOpset, CreateGlobalAveragePool},
      {"GlobalMaxPool", kMinOpset, CreateGlobalMaxPool},
      {"HardSigmoid", kMinOpset, CreateHardSigmoid},
      {"HardSwish", 14, CreateHardSwish},
      {"Identity", kMinOpset, CreateIdentity},
      {"LeakyRelu", kMinOpset, CreateLeakyRelu},
      {"LogSoftmax", kMinOpset, CreateLogSoftmax},
      {"MatMul", kMinOpset, CreateMatMul},
      {"MaxPool", kMinOpset, CreateMaxPool},
      {"Mul", kMinOpset, CreateMul},
      {"Pad", kMinOpset, CreatePad},
      {"ReduceMean", kMinOpset, CreateReduceMean},
      {"Relu", kMinOpset, CreateRelu},
      {"Reshape", kMinOpset, CreateReshape},
      {"Resize", 10, CreateResize},
      {"Shape", kMinOpset, CreateShape},
      {"Sigmoid", kMinOpset, CreateSigmoid},
      {"Slice", kMinOpset, CreateSlice},
      {"Softmax", kMinOpset, CreateSoftmax},
      {"Squeeze", kMinOpset, CreateSqueeze},
      {"Sub", kMinOpset, CreateSub},
      {"Tanh", kMinOpset, CreateTanh},
      {"Transpose", kMinOpset, CreateTranspose},
      {"Unsqueeze", kMinOpset, CreateUnsqueeze},
  };
  for (const Row& row : kTable) registry.Register(row.op, row.min_opset, row.factory);
}

}  // namespace

const CudaKernelRegistry& CudaKernels() {
  static const CudaKernelRegistry* registry = [] {
    auto* r = new CudaKernelRegistry;
    RegisterCudaKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace inferd::models::cuda
