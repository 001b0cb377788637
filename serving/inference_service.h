// InferenceService: the API-independent core of the server. The gRPC and REST adapters turn
// their wire forms into PredictCalls and back; everything in between happens here once: version
// lookup, signature validation, batching, model runs, metrics, and the in-flight count that
// SIGTERM drains. Thread-safe.
#ifndef INFERD_SERVING_INFERENCE_SERVICE_H_
#define INFERD_SERVING_INFERENCE_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "loader/model_manager.h"
#include "models/cpu/cpu_device.h"
#include "models/model.h"
#include "serving/batch_scheduler.h"
#include "serving/edge_tensor.h"
#include "serving/metrics.h"
#include "serving/pipeline.h"
#include "serving/signature.h"
#include "tensorflow_serving/apis/get_model_metadata.pb.h"
#include "tensorflow_serving/apis/get_model_status.pb.h"
#include "tensorflow_serving/apis/model.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace inferd::serving {

struct ServingOptions {
  // Merge concurrent requests into batches (--enable_batching) with these queue options.
  bool enable_batching = false;
  BatchQueueOptions batching;
  // Threads that run batches (with batching off: that many requests run at once).
  int num_batch_threads = 1;
  // Replay <version>/assets.extra/tf_serving_warmup_requests before a version is AVAILABLE.
  bool enable_model_warmup = true;
  // Responses carry tensor_content instead of *_val (--enable_serialization_as_tensor_content).
  bool tensor_content_output = false;
  // A request to an unbatched version whose cost (its rows times the version's one-row run time,
  // measured single-threaded at load) is at most this runs on the thread that received it, on
  // that thread alone, instead of being handed to a batch thread: for small models the handoff
  // (a wake-up on each side) and splitting kernels over the pool cost more than the model.
  // Concurrency then comes from the request threads. Zero: every request is handed off.
  absl::Duration inline_run_limit = absl::Microseconds(200);
  // Shared by all models; null makes one with a thread per core.
  std::shared_ptr<models::CpuDevice> device;
  // Where models run (--device, --precision) and the batch sizes to capture CUDA graphs for.
  models::ExecutorOptions executor;
};

// One loaded model version: the planned model, its served signature, its pre/postprocessing
// (inferd.json; null when it has none) and its batch queue.
class ServableModel : public loader::Servable {
 public:
  // `row_cost`: one-row run time measured at load (InfiniteDuration: unknown). `queue_depth`:
  // the version's queue-depth gauge.
  ServableModel(std::unique_ptr<models::Model> model, Signature signature,
                std::shared_ptr<const ModelPipeline> pipeline, BatchScheduler* scheduler,
                std::shared_ptr<BatchQueue> queue, bool batched, absl::Duration row_cost,
                prometheus::Gauge* queue_depth);
  ~ServableModel() override;

  const models::Model& model() const { return *model_; }
  // What clients see: the model's own signature, or the pipeline's when there is one.
  const Signature& signature() const { return pipeline_ ? pipeline_->signature() : signature_; }
  const ModelPipeline* pipeline() const { return pipeline_.get(); }
  BatchQueue& queue() const { return *queue_; }
  // True when requests are merged into batches (batching on and the model is batchable).
  bool batched() const { return batched_; }
  // Whether a request of `rows` rows runs on its request thread (see inline_run_limit).
  bool RunsInline(int64_t rows, absl::Duration limit) const {
    return !batched_ && row_cost_ * static_cast<double>(rows) <= limit;
  }
  // Sets the queue-depth gauge to the tasks now waiting.
  void PublishQueueDepth() const {
    queue_depth_->Set(static_cast<double>(queue_->queued_tasks()));
  }

 private:
  std::unique_ptr<models::Model> model_;
  Signature signature_;
  std::shared_ptr<const ModelPipeline> pipeline_;
  BatchScheduler* scheduler_;
  std::shared_ptr<BatchQueue> queue_;
  bool batched_;
  absl::Duration row_cost_;
  prometheus::Gauge* queue_depth_;
};

struct PredictCall {
  loader::ServableHandle handle;  // from Resolve()
  std::string signature_name;
  NamedTensors inputs;
  std::vector<std::string> output_filter;  // empty: all outputs
  absl::Time deadline = absl::InfiniteFuture();
  // For a caller whose thread runs an event loop that must not wait for other requests' batches
  // (an HTTP I/O thread, whose connections wait for it): the loop (HttpServer::DeferOnIoThread).
  // A small model whose batches run on request threads then runs this request's batch on that
  // loop after the requests that arrived with it, batched together
  // (BatchQueue::ScheduleDeferred). Null: the request joins the queue as any other.
  DeferFn defer = nullptr;
};

struct PredictResult {
  std::string model;
  int64_t version = 0;
  NamedTensors outputs;  // in signature order, filtered
};

// What a request is, for metrics: API name ("Predict", ...) and entrypoint ("GRPC", "REST").
struct RequestInfo {
  std::string model;
  std::string api;
  std::string entrypoint;
  absl::Time start = absl::Now();
};

class InferenceService {
 public:
  InferenceService(ServingOptions options, Metrics* metrics);
  ~InferenceService();

  // Builds the LoadFn the ModelManager calls: load, plan, create the queue, warm up.
  loader::LoadFn MakeLoadFn();
  // Call once, before serving; the manager must outlive this service's use.
  void set_manager(loader::ModelManager* manager) { manager_ = manager; }
  loader::ModelManager& manager() const { return *manager_; }

  absl::StatusOr<loader::ServableHandle> Resolve(const loader::ServableRequest& request) const;
  // TF Serving's ModelSpec -> ServableRequest.
  static loader::ServableRequest FromModelSpec(const tensorflow::serving::ModelSpec& spec);

  // Validates the call against the version's signature and queues it. `done` is called exactly
  // once: inline for validation errors and a full queue, else on a batch thread.
  void Predict(PredictCall call, std::function<void(absl::StatusOr<PredictResult>)> done);

  absl::StatusOr<tensorflow::serving::GetModelMetadataResponse> GetModelMetadata(
      const tensorflow::serving::GetModelMetadataRequest& request) const;
  absl::StatusOr<tensorflow::serving::GetModelStatusResponse> GetModelStatus(
      const tensorflow::serving::GetModelStatusRequest& request) const;

  // Records a finished request in the metrics (every API, every outcome).
  void Finish(const RequestInfo& info, int64_t version, const absl::Status& status,
              int64_t examples = 0);

  // Predict calls accepted and not yet answered.
  int64_t inflight() const { return inflight_.load(); }
  Metrics& metrics() const { return *metrics_; }
  const ServingOptions& options() const { return options_; }

 private:
  using PredictDone = std::function<void(absl::StatusOr<PredictResult>)>;

  absl::Status Warmup(const ServableModel& servable, const std::string& name, int64_t version,
                      const std::filesystem::path& dir);
  // Runs the model and records its runtime metric.
  absl::StatusOr<std::vector<models::Tensor>> RunModel(const models::Model& model,
                                                       const std::string& name,
                                                       const std::vector<models::Tensor>& inputs,
                                                       bool single_threaded) const;
  // Answers an accepted call with the model's outputs (those `selected`) or its error.
  void Complete(const loader::ServableHandle& handle, const std::vector<int>& selected,
                absl::StatusOr<std::vector<models::Tensor>> outputs, const PredictDone& done);

  const ServingOptions options_;
  Metrics* const metrics_;
  std::shared_ptr<models::CpuDevice> device_;
  std::unique_ptr<BatchScheduler> scheduler_;
  loader::ModelManager* manager_ = nullptr;
  std::atomic<int64_t> inflight_{0};
};

// Rows a request carries, for the example-count metrics: dimension 0 of its first input (1 for
// a scalar or no input).
int64_t ExampleCount(const NamedTensors& inputs);

// Signature of a servable as TF Serving's SignatureDef.
tensorflow::SignatureDef ToSignatureDef(const Signature& signature);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_INFERENCE_SERVICE_H_
