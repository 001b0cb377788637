// The CPU kernel table.
#ifndef INFERD_MODELS_CPU_REGISTER_CPU_KERNELS_H_
#define INFERD_MODELS_CPU_REGISTER_CPU_KERNELS_H_

#include "models/kernel.h"

namespace inferd::models {

// Adds every CPU kernel to `registry`.
void RegisterCpuKernels(KernelRegistry& registry);

// A registry holding the CPU kernels, built on first use; thread-safe.
const KernelRegistry& CpuKernelRegistry();

}  // namespace inferd::models

#endif  // INFERD_MODELS_CPU_REGISTER_CPU_KERNELS_H_
