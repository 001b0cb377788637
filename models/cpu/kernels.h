// Factories of the CPU kernels, one per ONNX op; registered by RegisterCpuKernels().
#ifndef INFERD_MODELS_CPU_KERNELS_H_
#define INFERD_MODELS_CPU_KERNELS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "models/kernel.h"

namespace inferd::models::cpu {

absl::StatusOr<std::unique_ptr<Kernel>> CreateConv(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateGemm(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateMatMul(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateRelu(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateLeakyRelu(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateClip(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateSigmoid(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateTanh(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateHardSigmoid(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateHardSwish(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateAdd(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateSub(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateMul(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateDiv(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateMaxPool(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateAveragePool(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateGlobalAveragePool(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateGlobalMaxPool(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateBatchNormalization(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateConcat(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateFlatten(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReshape(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateTranspose(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateSqueeze(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateUnsqueeze(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateSoftmax(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateLogSoftmax(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreatePad(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateIdentity(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateConstant(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateShape(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateGather(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateSlice(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateCast(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReduceMean(const KernelInfo& info);
absl::StatusOr<std::unique_ptr<Kernel>> CreateResize(const KernelInfo& info);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_KERNELS_H_
