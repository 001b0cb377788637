// Devices other than the CPU. A planned graph (after the device-neutral load-time rewrites:
// constant folding, BatchNormalization folding, activation and residual fusion) is handed to a
// DeviceExecutor, which places it on its device and runs it there; Model::Run then delegates to
// it. Executors come from an explicit table filled once by RegisterBuiltInExecutors(), which is
// defined by the build: with CUDA it registers "cuda", without it registers nothing, so a CPU-only
// build contains no CUDA code at all and asking for a device reports that it was not built.
#ifndef INFERD_MODELS_EXECUTOR_H_
#define INFERD_MODELS_EXECUTOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "models/graph.h"
#include "models/tensor.h"

namespace inferd::models {

enum class Precision {
  kFp32,  // IEEE single precision throughout
  kTf32,  // FP32 tensors; matrix products may use TF32 tensor cores (asked for explicitly)
  kFp16,  // weights converted to half at load, activations in half, accumulation in FP32
};
// "fp32", "tf32", "fp16".
const char* PrecisionName(Precision p);
absl::StatusOr<Precision> ParsePrecision(std::string_view name);

// Where a model runs: "cpu", or a device kind with an ordinal ("cuda", "cuda:1").
struct Placement {
  std::string kind = "cpu";
  int ordinal = 0;
  bool is_cpu() const { return kind == "cpu"; }
  std::string ToString() const;
};
// "cpu" | KIND | KIND:N; the kind must be a lower-case word, N >= 0.
absl::StatusOr<Placement> ParsePlacement(std::string_view spec);

struct ExecutorOptions {
  Placement placement;
  Precision precision = Precision::kFp32;
  // Batch sizes whose whole run is captured once at load (CUDA Graphs) and replayed.
  std::vector<int64_t> graph_batch_sizes;
};

// A graph placed on a device. Run() takes and returns host tensors, is thread-safe and may be
// called concurrently (each call borrows its own stream and buffers).
class DeviceExecutor {
 public:
  virtual ~DeviceExecutor() = default;
  virtual absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) const = 0;
  // One line for logs: device, precision, memory, captured batch sizes.
  virtual std::string Describe() const = 0;
};

// `graph` is planned and outlives nothing: the executor copies what it keeps (weights go to the
// device). `inputs`/`outputs` describe the graph's inputs and outputs.
using ExecutorFactory = absl::StatusOr<std::unique_ptr<DeviceExecutor>> (*)(
    const Graph& graph, const std::vector<TensorInfo>& inputs,
    const std::vector<TensorInfo>& outputs, const ExecutorOptions& options);

class ExecutorTable {
 public:
  void Register(std::string kind, ExecutorFactory factory);
  // nullptr when `kind` was not built into this binary.
  ExecutorFactory Find(std::string_view kind) const;
  std::vector<std::string> Kinds() const;

 private:
  std::vector<std::pair<std::string, ExecutorFactory>> entries_;
};

// Defined once per build (models/executors_cuda.cc or models/executors_cpu_only.cc).
void RegisterBuiltInExecutors(ExecutorTable& table);
// The table, filled on first use.
const ExecutorTable& BuiltInExecutors();

}  // namespace inferd::models

#endif  // INFERD_MODELS_EXECUTOR_H_
