// A loaded, planned model ready to run. Immutable after Load(); Run() is thread-safe and may be
// called concurrently (each call has its own intermediate buffers).
#ifndef INFERD_MODELS_MODEL_H_
#define INFERD_MODELS_MODEL_H_

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/cpu/cpu_device.h"
#include "models/executor.h"
#include "models/graph.h"
#include "models/kernel.h"

namespace inferd::models {

struct LoadOptions {
  // The device whose thread pool kernels use; shared between models. Null: a new device with
  // one thread per core.
  std::shared_ptr<CpuDevice> device;
  // Load-time graph rewrites (constant folding, BatchNormalization folding, activation fusion).
  // Off only to compare against the unrewritten graph in tests.
  bool optimize = true;
  // Where the model runs and how (models/executor.h): the CPU by default; "cuda[:N]" in builds
  // with CUDA, with the precision and the batch sizes to capture CUDA graphs for.
  ExecutorOptions executor;
};

// Statistics of the load-time plan, for logs and tests.
struct PlanStats {
  int nodes_in_file = 0;
  int nodes_planned = 0;  // kernels run per request
  int folded_constants = 0;
  int fused_batch_norms = 0;
  int fused_activations = 0;
  int folded_pads = 0;
  int fused_residual_adds = 0;
};

// Per-node wall time of one Run(), for profiling.
struct RunProfile {
  struct Entry {
    std::string op_type;
    std::string node_name;
    double microseconds = 0;
    double flops = 0;  // reported by compute-bound kernels, else 0
    Shape output_shape;
  };
  std::vector<Entry> entries;  // in execution order
};

struct RunOptions {
  // Runs every kernel on the calling thread only, without the device's pool: for small models
  // whose requests already run concurrently, where splitting a kernel over threads costs more
  // (wake-ups, spinning, taking turns at the pool) than it saves.
  bool single_threaded = false;
  // If not null, receives each node's time.
  RunProfile* profile = nullptr;
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::filesystem::path& onnx_file,
                                                     LoadOptions options = {});
  // Plans an already imported graph (used by tests and the importer's callers).
  static absl::StatusOr<std::unique_ptr<Model>> FromGraph(Graph graph, LoadOptions options = {});
  ~Model();

  // Runs the model on `inputs`, given in the order of inputs(). Validates count, dtype, rank and
  // every fixed dimension; the error names the input and what was expected.
  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs,
                                          const RunOptions& options = {}) const;

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  const PlanStats& plan_stats() const { return stats_; }
  CpuDevice& device() const { return *device_; }
  // Where Run() executes: "cpu", or the device executor's description.
  std::string PlacementDescription() const;

 private:
  struct Step {
    const Node* node;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> release_after;  // values whose last use is this step
    // Per input: the graph's constant (weights, folded shapes), read in place; else nullptr.
    std::vector<const Tensor*> constant_inputs;
  };
  class BufferPool;

  Model() = default;
  absl::Status ValidateInputs(const std::vector<Tensor>& inputs) const;
  std::unique_ptr<BufferPool> TakePool() const;
  void ReturnPool(std::unique_ptr<BufferPool> pool) const;

  Graph graph_;
  std::vector<Step> steps_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  PlanStats stats_;
  std::shared_ptr<CpuDevice> device_;
  std::unique_ptr<DeviceExecutor> executor_;  // null: the CPU steps above run

  mutable std::mutex pools_mu_;
  mutable std::vector<std::unique_ptr<BufferPool>> idle_pools_;  // guarded by pools_mu_
};

}  // namespace inferd::models

#endif  // INFERD_MODELS_MODEL_H_
