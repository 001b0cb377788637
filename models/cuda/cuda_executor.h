// The "cuda" device executor (models/executor.h): places a planned graph on a CUDA device and
// runs it there.
//
// At load the graph's constants go to the device (float weights converted to half under fp16;
// small constants also kept on the host), a CUDA kernel is created per node (a node without one
// fails the load, naming it), and, for each batch size in `graph_batch_sizes`, one run is
// captured into a CUDA graph (after an eager warm-up run that fixes cuDNN's algorithm choices)
// so that replaying it costs one launch. A model whose weights do not fit in the device's free
// memory fails its load with RESOURCE_EXHAUSTED saying how much it needs.
//
// Run() borrows a lane (stream, handles, pinned staging: models/cuda/cuda_device.h), copies the
// inputs into pinned memory, and either replays the captured graph for that batch size or
// enqueues the run eagerly: host-to-device copies, kernels, device-to-host copies, then one
// synchronisation. Concurrent runs use different lanes, so one run's copies overlap another's
// kernels; a model has at most 8 lanes, and further concurrent runs wait for one. Thread-safe.
#ifndef INFERD_MODELS_CUDA_CUDA_EXECUTOR_H_
#define INFERD_MODELS_CUDA_CUDA_EXECUTOR_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "models/executor.h"
#include "models/graph.h"

namespace inferd::models::cuda {

// An ExecutorFactory (registered as "cuda").
absl::StatusOr<std::unique_ptr<DeviceExecutor>> CreateCudaExecutor(
    const Graph& graph, const std::vector<TensorInfo>& inputs,
    const std::vector<TensorInfo>& outputs, const ExecutorOptions& options);

}  // namespace inferd::models::cuda

#endif  // INFERD_MODELS_CUDA_CUDA_EXECUTOR_H_
