// The executor table of a build with CUDA: "cuda" runs on NVIDIA GPUs (models/cuda/).
#include "models/cuda/cuda_executor.h"
#include "models/executor.h"

namespace inferd::models {

void RegisterBuiltInExecutors(ExecutorTable& table) {
  table.Register("cuda", cuda::CreateCudaExecutor);
}

}  // namespace inferd::models
