#include "models/cpu/register_cpu_kernels.h"

#include "models/cpu/kernels.h"

namespace inferd::models {

void RegisterCpuKernels(KernelRegistry& registry) {
  struct Row {
    const char* op;
    int64_t min_opset;
    KernelFactory factory;
  };
  // Each kernel handles every opset from kMinOpset (or the op's first version) to kMaxOpset,
  // reading the node's opset where the op's semantics changed.
  static const Row kTable[] = {
      {"Add", kMinOpset, cpu::CreateAdd},
      {"AveragePool", kMinOpset, cpu::CreateAveragePool},
      {"BatchNormalization", kMinOpset, cpu::CreateBatchNormalization},
      {"Cast", kMinOpset, cpu::CreateCast},
      {"Clip", kMinOpset, cpu::CreateClip},
      {"Concat", kMinOpset, cpu::CreateConcat},
      {"Constant", kMinOpset, cpu::CreateConstant},
      {"Conv", kMinOpset, cpu::CreateConv},
      {"Div", kMinOpset, cpu::CreateDiv},
      {"Flatten", kMinOpset, cpu::CreateFlatten},
      {"Gather", kMinOpset, cpu::CreateGather},
      {"Gemm", kMinOpset, cpu::CreateGemm},
      {"GlobalAveragePool", kMinOpset, cpu::CreateGlobalAveragePool},
      {"GlobalMaxPool", kMinOpset, cpu::CreateGlobalMaxPool},
      {"HardSigmoid", kMinOpset, cpu::CreateHardSigmoid},
      {"HardSwish", 14, cpu::CreateHardSwish},
      {"Identity", kMinOpset, cpu::CreateIdentity},
      {"LeakyRelu", kMinOpset, cpu::CreateLeakyRelu},
      {"LogSoftmax", kMinOpset, cpu::CreateLogSoftmax},
      {"MatMul", kMinOpset, cpu::CreateMatMul},
      {"MaxPool", kMinOpset, cpu::CreateMaxPool},
      {"Mul", kMinOpset, cpu::CreateMul},
      {"Pad", kMinOpset, cpu::CreatePad},
      {"ReduceMean", kMinOpset, cpu::CreateReduceMean},
      {"Relu", kMinOpset, cpu::CreateRelu},
      {"Reshape", kMinOpset, cpu::CreateReshape},
      {"Resize", 10, cpu::CreateResize},
      {"Shape", kMinOpset, cpu::CreateShape},
      {"Sigmoid", kMinOpset, cpu::CreateSigmoid},
      {"Slice", kMinOpset, cpu::CreateSlice},
      {"Softmax", kMinOpset, cpu::CreateSoftmax},
      {"Squeeze", kMinOpset, cpu::CreateSqueeze},
      {"Sub", kMinOpset, cpu::CreateSub},
      {"Tanh", kMinOpset, cpu::CreateTanh},
      {"Transpose", kMinOpset, cpu::CreateTranspose},
      {"Unsqueeze", kMinOpset, cpu::CreateUnsqueeze},
  };
  for (const Row& row : kTable) registry.Register(row.op, row.min_opset, kMaxOpset, row.factory);
}

const KernelRegistry& CpuKernelRegistry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterCpuKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace inferd::models
