// The executor table of a build without CUDA (INFERD_CUDA=OFF, or AUTO without nvcc): the CPU
// runs everything and no other device kind exists.
#include "models/executor.h"

namespace inferd::models {

void RegisterBuiltInExecutors(ExecutorTable&) {}

}  // namespace inferd::models
