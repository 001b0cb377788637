#include "models/model.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "models/cpu/register_cpu_kernels.h"
#include "models/onnx_import.h"
#include "models/planner.h"

namespace inferd::models {

// Recycles intermediate buffers within a run and across runs: a released buffer goes back to
// a capacity-sorted free list and serves the next allocation that fits. Also keeps the run's
// value table, so a run allocates neither. Not thread-safe: each running request holds its own.
class Model::BufferPool : public TensorAllocator {
 public:
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override {
    const int64_t n = NumElements(shape);
    if (n >= 0 && IsSupportedDType(dtype)) {
      const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
      // Smallest free buffer that holds `bytes` without wasting more than half of it.
      auto it = std::lower_bound(free_.begin(), free_.end(), bytes,
                                 [](const std::shared_ptr<Buffer>& b, size_t v) {
                                   return b->capacity() < v;
                                 });
      if (it != free_.end() && (*it)->capacity() <= 2 * bytes + Buffer::kAlignment) {
        std::shared_ptr<Buffer> buffer = std::move(*it);
        free_.erase(it);
        return Tensor::FromBuffer(dtype, std::move(shape), std::move(buffer));
      }
    }
    return Tensor::Create(dtype, std::move(shape));
  }

  // Takes `t`'s buffer back if nothing else refers to it.
  void Release(Tensor& t) {
    std::shared_ptr<Buffer> buffer = t.buffer();
    t = Tensor();
    if (buffer != nullptr && buffer.use_count() == 1) {
      auto it = std::lower_bound(free_.begin(), free_.end(), buffer->capacity(),
                                 [](const std::shared_ptr<Buffer>& b, size_t v) {
                                   return b->capacity() < v;
                                 });
      free_.insert(it, std::move(buffer));
    }
  }

  std::vector<Tensor> values;  // one per graph value, empty between runs
  // One step's input pointers and outputs, reused from step to step and run to run.
  std::vector<const Tensor*> in_ptrs;
  std::vector<Tensor> outs;

 private:
  std::vector<std::shared_ptr<Buffer>> free_;  // sorted by capacity
};

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::filesystem::path& onnx_file,
                                                   LoadOptions options) {
  ASSIGN_OR_RETURN(Graph graph, ImportOnnxFile(onnx_file));
  auto model = FromGraph(std::move(graph), std::move(options));
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(onnx_file.string(), ": ", model.status().message()));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromGraph(Graph graph, LoadOptions options) {
  std::unique_ptr<Model> model(new Model());
  model->device_ = options.device ? options.device : std::make_shared<CpuDevice>();
  const KernelRegistry& registry = CpuKernelRegistry();
  PlanStats& stats = model->stats_;
  stats.nodes_in_file = static_cast<int>(graph.nodes.size());

  RETURN_IF_ERROR(SortTopologically(graph));
  RETURN_IF_ERROR(CheckKernelsExist(graph, registry));
  for (int id : graph.inputs) model->inputs_.push_back(*graph.values[id].info);
  for (int id : graph.outputs) {
    TensorInfo info = graph.values[id].info.value_or(TensorInfo{});
    info.name = graph.values[id].name;
    model->outputs_.push_back(info);
  }
  if (options.optimize) {
    RETURN_IF_ERROR(FoldConstants(graph, registry, model->device_->pool(), stats));
    FoldBatchNormIntoConv(graph, stats);
    FoldPadIntoWindow(graph, stats);
    FuseActivations(graph, stats);
    FuseResidualAdd(graph, stats);
  }
  RemoveDeadNodes(graph);
  stats.nodes_planned = static_cast<int>(graph.nodes.size());
  if (!options.executor.placement.is_cpu()) {
    const std::string& kind = options.executor.placement.kind;
    ExecutorFactory factory = BuiltInExecutors().Find(kind);
    if (factory == nullptr) {
      const auto kinds = BuiltInExecutors().Kinds();
      return absl::FailedPreconditionError(absl::StrCat(
          "device \"", options.executor.placement.ToString(), "\" is not available: this inferd ",
          "was built without ", kind, " support (devices built in: cpu",
          kinds.empty() ? "" : ", ", absl::StrJoin(kinds, ", "), ")"));
    }
    ASSIGN_OR_RETURN(model->executor_,
                     factory(graph, model->inputs_, model->outputs_, options.executor));
    model->graph_ = std::move(graph);
    return model;
  }

  model->graph_ = std::move(graph);
  const Graph& g = model->graph_;
  const std::vector<std::vector<int>> release = ReleaseSchedule(g);
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    const Node& node = g.nodes[s];
    KernelInfo info{node, {}, {}};
    for (int in : node.inputs) {
      auto it = in == kNoValue ? g.constants.end() : g.constants.find(in);
      info.constant_inputs.push_back(it == g.constants.end() ? nullptr : &it->second);
    }
    for (int out : node.outputs) {
      const bool known = out != kNoValue && g.values[out].info.has_value();
      info.output_infos.push_back(known ? &*g.values[out].info : nullptr);
    }
    KernelFactory factory = registry.Find(node.domain, node.op_type, node.opset);
    auto kernel = factory(info);
    if (!kernel.ok()) {
      return absl::Status(kernel.status().code(),
                          absl::StrCat(node.Describe(), ": ", kernel.status().message()));
    }
    model->steps_.push_back(Step{&node, *std::move(kernel), release[s], info.constant_inputs});
  }
  return model;
}

absl::Status Model::ValidateInputs(const std::vector<Tensor>& inputs) const {
  if (inputs.size() != inputs_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the model takes ", inputs_.size(),
                                                   " inputs but ", inputs.size(), " were given"));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& want = inputs_[i];
    const Tensor& got = inputs[i];
    if (got.dtype() != want.dtype) {
      return absl::InvalidArgumentError(absl::StrCat("input '", want.name, "' expects type ",
                                                     DTypeName(want.dtype), " but got ",
                                                     DTypeName(got.dtype())));
    }
    if (got.num_elements() > 0 && got.raw_data() == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("input '", want.name, "' has no data"));
    }
    if (!want.has_shape) continue;
    bool match = want.dims.size() == got.shape().size();
    for (size_t d = 0; match && d < want.dims.size(); ++d) {
      match = want.dims[d] < 0 || want.dims[d] == got.shape()[d];
    }
    if (!match) {
      std::vector<std::string> dims;
      for (int64_t d : want.dims) dims.push_back(d < 0 ? "?" : std::to_string(d));
      return absl::InvalidArgumentError(absl::StrCat("input '", want.name, "' expects shape [",
                                                     absl::StrJoin(dims, ","), "] but got ",
                                                     ShapeToString(got.shape())));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<Model::BufferPool> Model::TakePool() const {
  std::lock_guard<std::mutex> lock(pools_mu_);
  if (idle_pools_.empty()) return std::make_unique<BufferPool>();
  auto pool = std::move(idle_pools_.back());
  idle_pools_.pop_back();
  return pool;
}

void Model::ReturnPool(std::unique_ptr<BufferPool> pool) const {
  std::lock_guard<std::mutex> lock(pools_mu_);
  idle_pools_.push_back(std::move(pool));
}

std::string Model::PlacementDescription() const { return executor_ ? executor_->Describe() : "cpu"; }

absl::StatusOr<std::vector<Tensor>> Model::Run(const std::vector<Tensor>& inputs,
                                               const RunOptions& options) const {
  RETURN_IF_ERROR(ValidateInputs(inputs));
  if (executor_) return executor_->Run(inputs);
  // A pool of one thread has no workers: its ParallelFor/ParallelTasks run inline.
  static ThreadPool* const calling_thread_only = new ThreadPool(1);
  ThreadPool* threads = options.single_threaded ? calling_thread_only : &device_->pool();
  RunProfile* const profile = options.profile;
  const Graph& g = graph_;
  std::unique_ptr<BufferPool> pool = TakePool();
  std::vector<Tensor>& values = pool->values;
  values.resize(g.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) values[g.inputs[i]] = inputs[i];

  std::vector<const Tensor*>& in_ptrs = pool->in_ptrs;
  std::vector<Tensor>& outs = pool->outs;
  absl::Status status;
  for (const Step& step : steps_) {
    const Node& node = *step.node;
    GatherStepInputs(node, step.constant_inputs, values, &in_ptrs);
    outs.assign(node.outputs.size(), Tensor());
    KernelContext ctx(in_ptrs, &outs, pool.get(), threads);
    const auto start =
        profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    status = step.kernel->Compute(ctx);
    if (profile) {
      profile->entries.push_back(
          {node.op_type, node.name,
           std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
               .count(),
           ctx.flops(), outs.empty() ? Shape{} : outs[0].shape()});
    }
    if (!status.ok()) {
      status = absl::Status(status.code(), absl::StrCat(node.Describe(), ": ", status.message()));
      break;
    }
    StoreStepOutputs(node, outs, values);
    for (int id : step.release_after) pool->Release(values[id]);
  }
  std::vector<Tensor> results;
  if (status.ok()) {
    results.reserve(g.outputs.size());
    for (int id : g.outputs) {
      auto it = g.constants.find(id);
      results.push_back(it != g.constants.end() ? it->second : values[id]);
    }
  }
  for (Tensor& t : values) t = Tensor();
  outs.clear();
  ReturnPool(std::move(pool));
  RETURN_IF_ERROR(status);
  for (size_t i = 0; i < results.size(); ++i) {
    // An output that is a constant or an input (Identity, a folded graph) is copied so the
    // caller owns it exclusively.
    if (results[i].buffer() && results[i].buffer().use_count() > 1) {
      ASSIGN_OR_RETURN(results[i], results[i].Clone());
    }
  }
  return results;
}

}  // namespace inferd::models
