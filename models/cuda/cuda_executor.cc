#include "models/cuda/cuda_executor.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "models/cuda/cuda_device.h"
#include "models/cuda/cuda_kernel.h"
#include "models/cuda/cuda_status.h"
#include "models/cuda/elementwise.h"
#include "models/planner.h"

namespace inferd::models::cuda {
namespace {

// Per lane: cuDNN convolution and cuBLAS workspace.
constexpr size_t kWorkspaceBytes = size_t{256} << 20;
// Lanes per model: runs beyond this many at once wait for a lane to come back (each lane holds a
// workspace, handles and its own captured graphs).
constexpr int kMaxLanes = 8;

// Host tensors' data copied into pinned memory, then to the device.
struct PinnedInput {
  const void* data;
  Shape shape;
  DType dtype;
};

class CudaExecutor : public DeviceExecutor {
 public:
  static absl::StatusOr<std::unique_ptr<CudaExecutor>> Create(const Graph& graph,
                                                              const std::vector<TensorInfo>& inputs,
                                                              const std::vector<TensorInfo>& outputs,
                                                              const ExecutorOptions& options);
  ~CudaExecutor() override;

  absl::StatusOr<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs) const override;
  std::string Describe() const override;

 private:
  struct Step {
    const Node* node;
    std::unique_ptr<CudaKernel> kernel;
    std::vector<int> release_after;
    std::vector<const DeviceTensor*> constant_inputs;
  };
  // One run captured for one batch size on one lane; its inputs and outputs live in pinned
  // buffers of its own, whose addresses the graph holds.
  struct Captured {
    cudaGraphExec_t exec = nullptr;
    std::vector<Shape> in_shapes;
    std::vector<void*> in;   // pinned, one per graph input
    std::vector<size_t> in_bytes;
    std::vector<void*> out;  // pinned, one per graph output
    std::vector<Shape> out_shapes;
    std::vector<DType> out_dtypes;
    Captured() = default;
    Captured(const Captured&) = delete;
    Captured& operator=(const Captured&) = delete;
    ~Captured();
  };
  struct LaneState {
    std::unique_ptr<Lane> lane;
    std::map<int64_t, std::unique_ptr<Captured>> graphs;
    std::set<int64_t> failed;  // batch sizes whose capture failed on this lane: run eagerly
  };

  CudaExecutor() = default;
  absl::Status Plan(const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs);
  absl::Status UploadConstants();
  absl::StatusOr<std::unique_ptr<LaneState>> TakeLane() const;
  void ReturnLane(std::unique_ptr<LaneState> lane) const;
  // A lane that is not coming back (its stream failed): another may be created.
  void DropLane() const;
  // Enqueues a whole run on the lane's stream: inputs from (pinned) host memory to the device,
  // every step, and the outputs' device-to-host copies into `out` (pinned, sized by the caller
  // through `out_bytes`, called once the outputs' shapes are known, before the copies).
  absl::Status Enqueue(Lane& lane, const std::vector<PinnedInput>& inputs,
                       const std::function<absl::StatusOr<std::vector<void*>>(
                           const std::vector<DeviceTensor>&)>& out_buffers,
                       std::vector<Shape>* out_shapes, std::vector<DType>* out_dtypes) const;
  absl::Status Capture(LaneState& state, int64_t batch) const;
  absl::StatusOr<std::vector<Tensor>> RunCaptured(LaneState& state, const Captured& c,
                                                  const std::vector<Tensor>& inputs) const;
  // The input shapes a run of `batch` rows has, or nullopt when the model's inputs do not all
  // have a fixed shape but for a batch dimension 0 (such models are never captured).
  std::optional<std::vector<Shape>> BatchShapes(int64_t batch) const;
  absl::StatusOr<std::vector<Tensor>> RunEager(LaneState& state,
                                               const std::vector<Tensor>& inputs) const;

  Graph graph_;
  std::vector<TensorInfo> inputs_, outputs_;
  ExecutorOptions options_;
  std::shared_ptr<CudaDevice> device_;
  std::map<int, DeviceTensor> constants_;
  std::vector<Step> steps_;
  size_t weight_bytes_ = 0;
  std::vector<int64_t> captured_batches_;

  mutable std::mutex lanes_mu_;
  mutable std::condition_variable lane_returned_;
  mutable std::vector<std::unique_ptr<LaneState>> idle_lanes_;  // guarded by lanes_mu_
  mutable int lanes_ = 0;                                        // created, guarded by lanes_mu_
};

DType StorageType(DType declared, Precision precision) {
  return declared == DType::kFloat32 && precision == Precision::kFp16 ? DType::kFloat16 : declared;
}

CudaExecutor::Captured::~Captured() {
  if (exec) cudaGraphExecDestroy(exec);
  for (void* p : in) cudaFreeHost(p);
  for (void* p : out) cudaFreeHost(p);
}

CudaExecutor::~CudaExecutor() {
  if (device_ && device_->MakeCurrent().ok()) {
    idle_lanes_.clear();
    steps_.clear();
    constants_.clear();
    cudaDeviceSynchronize();
  }
}

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(
    const Graph& graph, const std::vector<TensorInfo>& inputs,
    const std::vector<TensorInfo>& outputs, const ExecutorOptions& options) {
  std::unique_ptr<CudaExecutor> e(new CudaExecutor());
  (void)cudaGetLastError();
  e->options_ = options;
  ASSIGN_OR_RETURN(e->device_, CudaDevice::Get(options.placement.ordinal));
  RETURN_IF_ERROR(e->device_->MakeCurrent());
  e->graph_ = graph;
  RETURN_IF_ERROR(e->UploadConstants());
  RETURN_IF_ERROR(e->Plan(inputs, outputs));
  // Capture a graph per batch size, on one lane now (others capture when they first need it).
  for (int64_t b : options.graph_batch_sizes) {
    if (b > 0 && e->BatchShapes(b)) e->captured_batches_.push_back(b);
  }
  std::sort(e->captured_batches_.begin(), e->captured_batches_.end());
  e->captured_batches_.erase(std::unique(e->captured_batches_.begin(), e->captured_batches_.end()),
                             e->captured_batches_.end());
  if (!e->captured_batches_.empty()) {
    ASSIGN_OR_RETURN(auto lane, e->TakeLane());
    std::vector<int64_t> captured;
    for (int64_t b : e->captured_batches_) {
      absl::Status s = e->Capture(*lane, b);
      if (s.ok()) {
        captured.push_back(b);
        continue;
      }
      // The model may not run at that batch size at all (a Reshape fixed to another batch):
      // such runs would fail eagerly too; the load goes on without that graph.
      (void)cudaGetLastError();
      INFERD_LOG(WARNING) << "no CUDA graph for batch " << b << ": " << s;
    }
    e->captured_batches_ = std::move(captured);
    e->ReturnLane(std::move(lane));
  }
  return e;
}

absl::Status CudaExecutor::UploadConstants() {
  size_t bytes = 0;
  for (const auto& [id, t] : graph_.constants) {
    bytes += t.num_elements() * DTypeSize(StorageType(t.dtype(), options_.precision));
  }
  ASSIGN_OR_RETURN(size_t free, device_->FreeMemory());
  // Leave room for the lanes' workspaces and activations.
  if (bytes + kWorkspaceBytes > free) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the model does not fit on cuda:%d: its weights need %.1f MiB (%s) and a %.0f MiB "
        "workspace, the device has %.1f MiB free",
        device_->ordinal(), bytes / 1048576.0, PrecisionName(options_.precision),
        kWorkspaceBytes / 1048576.0, free / 1048576.0));
  }
  for (const auto& [id, t] : graph_.constants) {
    if (DTypeSize(t.dtype()) == 0) continue;  // strings: no kernel reads them on the device
    ASSIGN_OR_RETURN(DeviceTensor d, ConstantToDevice(t, options_.precision));
    weight_bytes_ += d.bytes();
    constants_[id] = std::move(d);
  }
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return absl::OkStatus();
}

absl::Status CudaExecutor::Plan(const std::vector<TensorInfo>& inputs,
                                const std::vector<TensorInfo>& outputs) {
  inputs_ = inputs;
  outputs_ = outputs;
  const Graph& g = graph_;
  const std::vector<std::vector<int>> release = ReleaseSchedule(g);
  std::vector<std::string> missing;
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    const Node& node = g.nodes[s];
    CudaKernelFactory factory = CudaKernels().Find(node.domain, node.op_type, node.opset);
    if (factory == nullptr) {
      missing.push_back(node.Describe());
      continue;
    }
    CudaKernelInfo info{node, {}, {}, {}, options_.precision};
    for (int in : node.inputs) {
      auto dc = in == kNoValue ? constants_.end() : constants_.find(in);
      info.constant_inputs.push_back(dc == constants_.end() ? nullptr : &dc->second);
      auto hc = in == kNoValue ? g.constants.end() : g.constants.find(in);
      info.host_constants.push_back(hc == g.constants.end() ? nullptr : &hc->second);
    }
    for (int out : node.outputs) {
      const bool known = out != kNoValue && g.values[out].info.has_value();
      info.output_infos.push_back(known ? &*g.values[out].info : nullptr);
    }
    auto kernel = factory(info);
    if (!kernel.ok()) {
      return absl::Status(kernel.status().code(),
                          absl::StrCat(node.Describe(), " on cuda: ", kernel.status().message()));
    }
    steps_.push_back(Step{&node, *std::move(kernel), release[s], info.constant_inputs});
  }
  if (!missing.empty()) {
    return absl::UnimplementedError(
        absl::StrCat("no CUDA kernel for ", absl::StrJoin(missing, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CudaExecutor::LaneState>> CudaExecutor::TakeLane() const {
  {
    std::unique_lock<std::mutex> lock(lanes_mu_);
    lane_returned_.wait(lock, [&] { return !idle_lanes_.empty() || lanes_ < kMaxLanes; });
    if (!idle_lanes_.empty()) {
      auto lane = std::move(idle_lanes_.back());
      idle_lanes_.pop_back();
      return lane;
    }
    ++lanes_;
  }
  auto state = std::make_unique<LaneState>();
  auto lane = Lane::Create(device_, kWorkspaceBytes, options_.precision == Precision::kTf32);
  if (!lane.ok()) {
    DropLane();
    return lane.status();
  }
  state->lane = *std::move(lane);
  return state;
}

void CudaExecutor::ReturnLane(std::unique_ptr<LaneState> lane) const {
  {
    std::lock_guard<std::mutex> lock(lanes_mu_);
    idle_lanes_.push_back(std::move(lane));
  }
  lane_returned_.notify_one();
}

void CudaExecutor::DropLane() const {
  {
    std::lock_guard<std::mutex> lock(lanes_mu_);
    --lanes_;
  }
  lane_returned_.notify_one();
}

absl::Status CudaExecutor::Enqueue(
    Lane& lane, const std::vector<PinnedInput>& inputs,
    const std::function<absl::StatusOr<std::vector<void*>>(const std::vector<DeviceTensor>&)>&
        out_buffers,
    std::vector<Shape>* out_shapes, std::vector<DType>* out_dtypes) const {
  const cudaStream_t stream = lane.stream();
  const Graph& g = graph_;
  std::vector<DeviceTensor> values(g.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const PinnedInput& in = inputs[i];
    const DType storage = StorageType(in.dtype, options_.precision);
    ASSIGN_OR_RETURN(DeviceTensor raw, AllocateDevice(in.dtype, in.shape, stream));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(raw.data, in.data, raw.bytes(), cudaMemcpyHostToDevice, stream));
    if (storage != in.dtype) {
      ASSIGN_OR_RETURN(DeviceTensor converted, AllocateDevice(storage, in.shape, stream));
      RETURN_IF_ERROR(LaunchCast(in.dtype, storage, raw.data, converted.data,
                                 raw.num_elements(), stream));
      raw = std::move(converted);
    }
    values[g.inputs[i]] = std::move(raw);
  }
  std::vector<const DeviceTensor*> in_ptrs;
  std::vector<DeviceTensor> outs;
  for (const Step& step : steps_) {
    const Node& node = *step.node;
    GatherStepInputs(node, step.constant_inputs, values, &in_ptrs);
    outs.assign(node.outputs.size(), DeviceTensor());
    CudaContext ctx(in_ptrs, &outs, &lane, options_.precision);
    if (absl::Status s = step.kernel->Launch(ctx); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(node.Describe(), ": ", s.message()));
    }
    StoreStepOutputs(node, outs, values);
    for (int id : step.release_after) values[id].Clear();
  }
  // Outputs: float values back to the declared float32, then to the host.
  std::vector<DeviceTensor> results;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const int id = g.outputs[i];
    auto c = constants_.find(id);
    DeviceTensor t = c != constants_.end() ? c->second : values[id];
    if (t.data == nullptr) return absl::InternalError("an output was not computed");
    if (t.dtype == DType::kFloat16 && outputs_[i].dtype != DType::kFloat16) {
      ASSIGN_OR_RETURN(DeviceTensor f, AllocateDevice(DType::kFloat32, t.shape, stream));
      RETURN_IF_ERROR(LaunchCast(DType::kFloat16, DType::kFloat32, t.data, f.data,
                                 t.num_elements(), stream));
      t = std::move(f);
    }
    results.push_back(std::move(t));
  }
  values.clear();
  ASSIGN_OR_RETURN(std::vector<void*> host, out_buffers(results));
  out_shapes->clear();
  out_dtypes->clear();
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].bytes() > 0) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host[i], results[i].data, results[i].bytes(),
                                           cudaMemcpyDeviceToHost, stream));
    }
    out_shapes->push_back(results[i].shape);
    out_dtypes->push_back(results[i].dtype);
  }
  return absl::OkStatus();
}

std::optional<std::vector<Shape>> CudaExecutor::BatchShapes(int64_t batch) const {
  std::vector<Shape> shapes;
  for (const TensorInfo& info : inputs_) {
    if (!info.has_shape || info.dims.empty() || info.dims[0] >= 0) return std::nullopt;
    Shape shape(info.dims.begin(), info.dims.end());
    for (size_t d = 1; d < shape.size(); ++d) {
      if (shape[d] < 0) return std::nullopt;
    }
    shape[0] = batch;
    shapes.push_back(std::move(shape));
  }
  if (shapes.empty()) return std::nullopt;
  return shapes;
}

absl::Status CudaExecutor::Capture(LaneState& state, int64_t batch) const {
  Lane& lane = *state.lane;
  auto owned = std::make_unique<Captured>();
  Captured& c = *owned;
  std::optional<std::vector<Shape>> shapes_for_batch = BatchShapes(batch);
  if (!shapes_for_batch) return absl::FailedPreconditionError("inputs have no batch dimension");
  c.in_shapes = *shapes_for_batch;
  std::vector<PinnedInput> inputs;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const TensorInfo& info = inputs_[i];
    const Shape& shape = c.in_shapes[i];
    const size_t bytes = NumElements(shape) * DTypeSize(info.dtype);
    void* p = nullptr;
    CUDA_RETURN_IF_ERROR(cudaHostAlloc(&p, std::max<size_t>(bytes, 16), cudaHostAllocDefault));
    std::memset(p, 0, bytes);
    c.in.push_back(p);
    c.in_bytes.push_back(bytes);
    inputs.push_back({p, shape, info.dtype});
  }
  // An eager warm-up run on zeros: it settles cuDNN's algorithm choices and tells the output
  // sizes, so the captured run allocates nothing outside the stream-ordered pool.
  std::vector<size_t> out_bytes;
  auto warm_buffers = [&](const std::vector<DeviceTensor>& results)
      -> absl::StatusOr<std::vector<void*>> {
    std::vector<void*> out;
    for (size_t i = 0; i < results.size(); ++i) {
      void* p = nullptr;
      CUDA_RETURN_IF_ERROR(
          cudaHostAlloc(&p, std::max<size_t>(results[i].bytes(), 16), cudaHostAllocDefault));
      c.out.push_back(p);
      out_bytes.push_back(results[i].bytes());
      out.push_back(p);
    }
    return out;
  };
  RETURN_IF_ERROR(Enqueue(lane, inputs, warm_buffers, &c.out_shapes, &c.out_dtypes));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(lane.stream()));

  auto fixed_buffers = [&](const std::vector<DeviceTensor>& results)
      -> absl::StatusOr<std::vector<void*>> {
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].bytes() != out_bytes[i]) {
        return absl::InternalError("output sizes changed between the warm-up and the capture");
      }
    }
    return c.out;
  };
  CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(lane.stream(), cudaStreamCaptureModeThreadLocal));
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  absl::Status enqueued = Enqueue(lane, inputs, fixed_buffers, &shapes, &dtypes);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(lane.stream(), &graph);
  if (!enqueued.ok() || ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    RETURN_IF_ERROR(enqueued);
    CUDA_RETURN_IF_ERROR(ended);
  }
  const cudaError_t made = cudaGraphInstantiate(&c.exec, graph, 0);
  cudaGraphDestroy(graph);
  CUDA_RETURN_IF_ERROR(made);
  state.graphs[batch] = std::move(owned);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunCaptured(
    LaneState& state, const Captured& c, const std::vector<Tensor>& inputs) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].byte_size() != c.in_bytes[i]) return absl::InternalError("input size mismatch");
    std::memcpy(c.in[i], inputs[i].raw_data(), c.in_bytes[i]);
  }
  CUDA_RETURN_IF_ERROR(cudaGraphLaunch(c.exec, state.lane->stream()));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(state.lane->stream()));
  std::vector<Tensor> out;
  for (size_t i = 0; i < c.out.size(); ++i) {
    ASSIGN_OR_RETURN(Tensor t, Tensor::Create(c.out_dtypes[i], c.out_shapes[i]));
    std::memcpy(t.raw_data(), c.out[i], t.byte_size());
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunEager(LaneState& state,
                                                           const std::vector<Tensor>& inputs) const {
  Lane& lane = *state.lane;
  std::vector<PinnedInput> pinned;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSIGN_OR_RETURN(void* p, lane.Staging(static_cast<int>(i), inputs[i].byte_size()));
    std::memcpy(p, inputs[i].raw_data(), inputs[i].byte_size());
    pinned.push_back({p, inputs[i].shape(), inputs[i].dtype()});
  }
  const int first_out = static_cast<int>(inputs.size());
  std::vector<void*> host;
  auto buffers = [&](const std::vector<DeviceTensor>& results)
      -> absl::StatusOr<std::vector<void*>> {
    for (size_t i = 0; i < results.size(); ++i) {
      ASSIGN_OR_RETURN(void* p, lane.Staging(first_out + static_cast<int>(i), results[i].bytes()));
      host.push_back(p);
    }
    return host;
  };
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  absl::Status s = Enqueue(lane, pinned, buffers, &shapes, &dtypes);
  // Wait even after an error: enqueued work may still read the staging buffers.
  const cudaError_t synced = cudaStreamSynchronize(lane.stream());
  RETURN_IF_ERROR(s);
  CUDA_RETURN_IF_ERROR(synced);
  std::vector<Tensor> out;
  for (size_t i = 0; i < shapes.size(); ++i) {
    ASSIGN_OR_RETURN(Tensor t, Tensor::Create(dtypes[i], shapes[i]));
    if (t.byte_size() > 0) std::memcpy(t.raw_data(), host[i], t.byte_size());
    out.push_back(std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::Run(const std::vector<Tensor>& inputs) const {
  (void)cudaGetLastError();
  RETURN_IF_ERROR(device_->MakeCurrent());
  ASSIGN_OR_RETURN(std::unique_ptr<LaneState> state, TakeLane());
  const int64_t batch = inputs.empty() || inputs[0].shape().empty() ? -1 : inputs[0].shape()[0];
  bool replay = std::binary_search(captured_batches_.begin(), captured_batches_.end(), batch) &&
                !state->failed.count(batch);
  if (replay) {
    const auto shapes = BatchShapes(batch);
    for (size_t i = 0; replay && i < inputs.size(); ++i) {
      replay = shapes && inputs[i].shape() == (*shapes)[i];
    }
  }
  if (replay && !state->graphs.count(batch)) {
    if (absl::Status s = Capture(*state, batch); !s.ok()) {
      // Not on this lane: eager runs from now on (the failure is not retried per request).
      (void)cudaGetLastError();
      state->failed.insert(batch);
      replay = false;
    }
  }
  absl::StatusOr<std::vector<Tensor>> result =
      replay ? RunCaptured(*state, *state->graphs.at(batch), inputs) : RunEager(*state, inputs);
  // A lane whose stream failed is dropped rather than reused.
  const cudaError_t idle = cudaStreamQuery(state->lane->stream());
  (void)cudaGetLastError();
  if (idle == cudaSuccess) {
    ReturnLane(std::move(state));
  } else {
    state.reset();
    DropLane();
  }
  return result;
}

std::string CudaExecutor::Describe() const {
  return absl::StrCat(options_.placement.ToString(), " ", device_->Describe(), ", ",
                      PrecisionName(options_.precision),
                      absl::StrFormat(", weights %.1f MiB", weight_bytes_ / 1048576.0),
                      captured_batches_.empty()
                          ? ", no CUDA graphs"
                          : absl::StrCat(", CUDA graphs for batch ",
                                         absl::StrJoin(captured_batches_, ",")));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceExecutor>> CreateCudaExecutor(
    const Graph& graph, const std::vector<TensorInfo>& inputs,
    const std::vector<TensorInfo>& outputs, const ExecutorOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<CudaExecutor> e,
                   CudaExecutor::Create(graph, inputs, outputs, options));
  return std::unique_ptr<DeviceExecutor>(std::move(e));
}

}  // namespace inferd::models::cuda
