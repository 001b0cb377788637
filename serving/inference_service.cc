#include "serving/inference_service.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_escape.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "loader/warmup.h"
#include "serving/tensor_proto.h"

namespace inferd::serving {
namespace {
using tensorflow::serving::GetModelMetadataRequest;
using tensorflow::serving::GetModelMetadataResponse;
using tensorflow::serving::GetModelStatusRequest;
using tensorflow::serving::GetModelStatusResponse;

std::string Braced(const std::set<std::string>& names) {
  return absl::StrCat("{", absl::StrJoin(names, ","), "}");
}

std::string DTypeDescription(models::DType dtype) {
  return absl::StrCat(models::DTypeName(dtype), " (", DataTypeName(ToDataType(dtype)), ")");
}

// The error for inputs whose names are not exactly the signature's: a name given twice, or
// TF Serving's message listing the extra and missing ones.
absl::Status InputNamesError(const Signature& sig, const NamedTensors& inputs) {
  std::set<std::string> sent, expected;
  for (const auto& [name, t] : inputs) {
    if (!sent.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("input \"", name, "\" is given twice"));
    }
  }
  for (const TensorSpec& spec : sig.inputs) expected.insert(spec.name);
  std::set<std::string> extra, missing;
  std::set_difference(sent.begin(), sent.end(), expected.begin(), expected.end(),
                      std::inserter(extra, extra.end()));
  std::set_difference(expected.begin(), expected.end(), sent.begin(), sent.end(),
                      std::inserter(missing, missing.end()));
  return absl::InvalidArgumentError(absl::StrCat(
      "input size does not match signature: ", sent.size(), "!=", expected.size(), " len(",
      Braced(sent), ") != len(", Braced(expected), "). Sent extra: ", Braced(extra),
      ". Missing but required: ", Braced(missing), "."));
}

// Checks names, dtypes and shapes against the servable's signature; returns the model's input
// tensors in signature order. Encoded images are decoded and preprocessed here, on the request's
// thread, once everything else checked out; their cost goes to `metrics` when given.
absl::StatusOr<std::vector<models::Tensor>> ValidateInputs(const ServableModel& servable,
                                                           const std::string& model_name,
                                                           NamedTensors& inputs, bool same_batch,
                                                           Metrics* metrics) {
  const Signature& sig = servable.signature();
  bool names_match = inputs.size() == sig.inputs.size();
  std::vector<bool> given(sig.inputs.size(), false);
  std::vector<int> index(inputs.size(), -1);  // each given input's position in the signature
  for (size_t i = 0; names_match && i < inputs.size(); ++i) {
    index[i] = sig.InputIndex(inputs[i].first);
    names_match = index[i] >= 0 && !given[index[i]];
    if (names_match) given[index[i]] = true;
  }
  if (!names_match) return InputNamesError(sig, inputs);
  std::vector<models::Tensor> ordered(sig.inputs.size());
  int64_t batch = -1;
  std::string batch_input;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& name = inputs[i].first;
    const EdgeTensor& t = inputs[i].second;
    const TensorSpec& spec = sig.inputs[index[i]];
    if (t.dtype != spec.dtype) {
      return absl::InvalidArgumentError(absl::StrCat("input \"", name, "\": expected dtype ",
                                                     DTypeDescription(spec.dtype), ", got ",
                                                     DTypeDescription(t.dtype)));
    }
    if (spec.has_shape) {
      bool match = spec.shape.size() == t.shape.size();
      for (size_t d = 0; match && d < spec.shape.size(); ++d) {
        match = spec.shape[d] < 0 || spec.shape[d] == t.shape[d];
      }
      if (!match) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input \"", name, "\": expected shape ", models::ShapeToString(spec.shape),
            " (-1: any size), got ", models::ShapeToString(t.shape)));
      }
    }
    if (!t.shape.empty() && t.shape[0] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("input \"", name, "\": empty batch (dimension 0 is 0)"));
    }
    if (same_batch && !t.shape.empty()) {
      if (batch >= 0 && t.shape[0] != batch) {
        return absl::InvalidArgumentError(absl::StrCat(
            "inputs must share dimension 0 for batching: \"", batch_input, "\" has ", batch,
            ", \"", name, "\" has ", t.shape[0]));
      }
      batch = t.shape[0];
      batch_input = name;
    }
    if (t.is_string() && (servable.pipeline() == nullptr ||
                          servable.pipeline()->image_input(index[i]) == nullptr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input \"", name, "\": DT_STRING inputs are not supported by this model"));
    }
    if (!t.is_string()) ordered[index[i]] = t.tensor;
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const EdgeTensor& t = inputs[i].second;
    if (!t.is_string()) continue;
    const absl::Time start = absl::Now();
    auto tensor = servable.pipeline()->Preprocess(index[i], t.strings);
    if (metrics != nullptr) {
      metrics->RecordImagePreprocess(model_name, tensor.status(), absl::Now() - start,
                                     static_cast<int64_t>(t.strings.size()));
    }
    if (!tensor.ok()) return tensor.status();
    ordered[index[i]] = std::move(*tensor);
  }
  return ordered;
}

// Whether requests to this model can be merged: every input and output batched along a
// dimension 0 of variable size.
bool Batchable(const Signature& sig) {
  auto batched = [](const TensorSpec& s) {
    return s.has_shape && !s.shape.empty() && s.shape[0] < 0;
  };
  return !sig.inputs.empty() && std::all_of(sig.inputs.begin(), sig.inputs.end(), batched) &&
         std::all_of(sig.outputs.begin(), sig.outputs.end(), batched);
}

// Single-threaded time of a run of `rows` rows of zeros, the least of several runs;
// InfiniteDuration when the inputs' shapes are not all known but for the batch dimension, or the
// run fails. A model is loaded while the machine may be busy with other work (serving the
// previous version, other processes starting), so one slow run says little: it runs up to 20
// times, for at most about 10 times `limit`, and stops early once a run took under a quarter of
// `limit`, or when even the best run (or the first) took over 4 times `limit`.
absl::Duration MeasureRunCost(const models::Model& model, int64_t rows, absl::Duration limit) {
  constexpr int kRuns = 20;
  std::vector<models::Tensor> inputs;
  for (const models::TensorInfo& info : model.inputs()) {
    if (!info.has_shape) return absl::InfiniteDuration();
    models::Shape shape(info.dims.begin(), info.dims.end());
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] < 0 && d > 0) return absl::InfiniteDuration();
      if (shape[d] < 0) shape[d] = rows;
    }
    auto t = models::Tensor::Create(info.dtype, shape);
    if (!t.ok()) return absl::InfiniteDuration();
    std::memset(t->raw_data(), 0, t->byte_size());
    inputs.push_back(std::move(*t));
  }
  models::RunOptions options;
  options.single_threaded = true;
  absl::Duration best = absl::InfiniteDuration();
  const absl::Time begin = absl::Now();
  // The first run (cold caches, first allocations) only counts when it is far over the limit.
  for (int i = 0; i <= kRuns && (i < 2 || best > limit / 4); ++i) {
    const absl::Time start = absl::Now();
    if (!model.Run(inputs, options).ok()) return absl::InfiniteDuration();
    const absl::Time end = absl::Now();
    if (i == 0 && end - start <= 4 * limit) continue;
    best = std::min(best, end - start);
    if (best > 4 * limit || (i >= 3 && end - begin > 10 * limit)) break;
  }
  return best;
}

}  // namespace

int64_t ExampleCount(const NamedTensors& inputs) {
  return inputs.empty() || inputs[0].second.shape.empty() ? 1 : inputs[0].second.shape[0];
}

tensorflow::SignatureDef ToSignatureDef(const Signature& signature) {
  tensorflow::SignatureDef def;
  def.set_method_name(kPredictMethodName);
  auto fill = [](const TensorSpec& spec, tensorflow::TensorInfo* info) {
    info->set_name(spec.name);
    info->set_dtype(ToDataType(spec.dtype));
    auto* shape = info->mutable_tensor_shape();
    if (!spec.has_shape) {
      shape->set_unknown_rank(true);
      return;
    }
    for (int64_t d : spec.shape) shape->add_dim()->set_size(d);
  };
  for (const TensorSpec& s : signature.inputs) fill(s, &(*def.mutable_inputs())[s.name]);
  for (const TensorSpec& s : signature.outputs) fill(s, &(*def.mutable_outputs())[s.name]);
  return def;
}

ServableModel::ServableModel(std::unique_ptr<models::Model> model, Signature signature,
                             std::shared_ptr<const ModelPipeline> pipeline,
                             BatchScheduler* scheduler, std::shared_ptr<BatchQueue> queue,
                             bool batched, absl::Duration row_cost,
                             prometheus::Gauge* queue_depth)
    : model_(std::move(model)),
      signature_(std::move(signature)),
      pipeline_(std::move(pipeline)),
      scheduler_(scheduler),
      queue_(std::move(queue)),
      batched_(batched),
      row_cost_(row_cost),
      queue_depth_(queue_depth) {}

ServableModel::~ServableModel() { scheduler_->RemoveQueue(queue_); }

InferenceService::InferenceService(ServingOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics), device_(options_.device) {
  if (!device_) device_ = std::make_shared<models::CpuDevice>();
  scheduler_ = std::make_unique<BatchScheduler>(options_.num_batch_threads);
}

InferenceService::~InferenceService() = default;

loader::ServableRequest InferenceService::FromModelSpec(const tensorflow::serving::ModelSpec& spec) {
  loader::ServableRequest r;
  r.name = spec.name();
  if (spec.has_version()) r.version = spec.version().value();
  if (spec.version_choice_case() == tensorflow::serving::ModelSpec::kVersionLabel) {
    r.label = spec.version_label();
  }
  return r;
}

absl::StatusOr<loader::ServableHandle> InferenceService::Resolve(
    const loader::ServableRequest& request) const {
  if (request.name.empty()) return absl::InvalidArgumentError("Missing model name in request.");
  return manager_->Get(request);
}

loader::LoadFn InferenceService::MakeLoadFn() {
  return [this](const std::string& name, int64_t version, const std::filesystem::path& dir)
             -> absl::StatusOr<std::shared_ptr<const loader::Servable>> {
    const std::filesystem::path file = dir / "model.onnx";
    const absl::Time start = absl::Now();
    models::LoadOptions load_options;
    load_options.device = device_;
    load_options.executor = options_.executor;
    auto model = models::Model::Load(file, load_options);
    if (!model.ok()) {
      metrics_->RecordLoad(dir.string(), model.status(), absl::Now() - start);
      return model.status();
    }
    const models::Model* raw = model->get();
    if (!options_.executor.placement.is_cpu()) {
      INFERD_LOG(INFO) << "model " << name << " version " << version << " placed on "
                       << raw->PlacementDescription();
    }
    Signature sig = SignatureFromModel(*raw);
    auto pipeline = ModelPipeline::Load(dir, sig);
    if (!pipeline.ok()) {
      metrics_->RecordLoad(dir.string(), pipeline.status(), absl::Now() - start);
      return pipeline.status();
    }
    // Batched or not by the model's own signature: images are decoded before they are queued.
    const bool batched = options_.enable_batching && Batchable(sig);
    BatchQueueOptions queue_options = options_.batching;
    if (!batched) {
      queue_options = BatchQueueOptions{};
      queue_options.merge = false;
      queue_options.max_enqueued_batches = 1 << 20;
    }
    // Small models run on request threads: unbatched requests one by one, batched ones (with a
    // zero batch timeout) as batches run by the request thread that finds the queue idle.
    absl::Duration row_cost = absl::InfiniteDuration();
    const bool may_run_inline =
        options_.inline_run_limit > absl::ZeroDuration() &&
        (!batched || queue_options.batch_timeout == absl::ZeroDuration());
    const int64_t inline_rows = batched ? std::max<int64_t>(1, queue_options.max_batch_size) : 1;
    absl::Duration run_cost = absl::InfiniteDuration();
    if (may_run_inline) {
      row_cost = MeasureRunCost(*raw, 1, options_.inline_run_limit);
      // Batches cost less per row than single rows: measure a full one unless that is hopeless
      // (and would make loading slow).
      if (inline_rows > 1 && row_cost * static_cast<double>(inline_rows) <=
                                 4 * options_.inline_run_limit) {
        run_cost = MeasureRunCost(*raw, inline_rows, options_.inline_run_limit);
      } else {
        run_cost = row_cost * static_cast<double>(inline_rows);
      }
    }
    const bool runs_inline = may_run_inline && run_cost <= options_.inline_run_limit;
    if (batched && runs_inline) {
      queue_options.caller_runs = true;
      queue_options.max_callers = std::max(1, options_.num_batch_threads);
    }
    if (may_run_inline) {
      std::string where;
      if (!batched) {
        where = absl::StrCat("requests up to ", absl::FormatDuration(options_.inline_run_limit),
                             " run on their request threads");
      } else if (runs_inline) {
        where =
            absl::StrCat("batches (up to ", inline_rows, " rows: ", absl::FormatDuration(run_cost),
                         ") run on request threads (gRPC: ", queue_options.max_callers,
                         " at most at once; REST: each HTTP thread batches its own)");
      } else {
        where = absl::StrCat("a batch of ", inline_rows, " rows takes longer than ",
                             absl::FormatDuration(options_.inline_run_limit),
                             ": batches run on the batch threads");
      }
      INFERD_LOG(INFO) << "model " << name << " version " << version << ": one row runs in "
                       << absl::FormatDuration(row_cost) << " on one thread; " << where;
    }
    Metrics* metrics = metrics_;
    const bool single_threaded = queue_options.caller_runs;
    auto queue = scheduler_->AddQueue(
        absl::StrCat(name, "/", version),
        [this, raw, name, single_threaded](const std::vector<models::Tensor>& inputs) {
          return RunModel(*raw, name, inputs, single_threaded);
        },
        queue_options,
        [metrics, name, batched](const BatchStats& stats) {
          if (batched) metrics->RecordBatch(name, stats.batch_size, stats.padding, stats.oldest_wait);
        });
    metrics_->RecordLoad(dir.string(), absl::OkStatus(), absl::Now() - start);
    auto servable = std::make_shared<ServableModel>(std::move(*model), std::move(sig),
                                                    std::move(*pipeline), scheduler_.get(),
                                                    std::move(queue), batched, row_cost,
                                                    metrics_->QueueDepthGauge(name, version));
    if (options_.enable_model_warmup) {
      RETURN_IF_ERROR(Warmup(*servable, name, version, dir));
    }
    return std::shared_ptr<const loader::Servable>(std::move(servable));
  };
}

absl::Status InferenceService::Warmup(const ServableModel& servable, const std::string& name,
                                      int64_t version, const std::filesystem::path& dir) {
  const absl::Time start = absl::Now();
  int skipped = 0;
  auto count = loader::ForEachWarmupRecord(
      dir, [&](const tensorflow::serving::PredictionLog& log) -> absl::Status {
        if (!log.has_predict_log()) {
          ++skipped;
          return absl::OkStatus();
        }
        const auto& request = log.predict_log().request();
        NamedTensors inputs;
        for (const auto& [alias, proto] : request.inputs()) {
          ASSIGN_OR_RETURN(EdgeTensor t, FromTensorProto(proto, alias));
          inputs.emplace_back(alias, std::move(t));
        }
        std::sort(inputs.begin(), inputs.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        ASSIGN_OR_RETURN(auto ordered, ValidateInputs(servable, name, inputs, false, nullptr));
        return servable.model().Run(ordered).status();
      });
  metrics_->RecordWarmup(dir.string(), count.status(), absl::Now() - start,
                         count.ok() ? *count : 0);
  if (!count.ok()) return count.status();
  if (*count > 0) {
    INFERD_LOG(INFO) << "model " << name << " version " << version << ": replayed "
                     << (*count - skipped) << " warmup requests in "
                     << absl::FormatDuration(absl::Now() - start)
                     << (skipped ? absl::StrCat(" (skipped ", skipped,
                                                " classify/regress/multi-inference records)")
                                 : "");
  }
  return absl::OkStatus();
}

void InferenceService::Predict(PredictCall call,
                               std::function<void(absl::StatusOr<PredictResult>)> done) {
  const ServableModel& servable = call.handle.get<ServableModel>();
  const Signature& sig = servable.signature();
  if (!call.signature_name.empty() && call.signature_name != kDefaultSignature) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("Serving signature key \"", call.signature_name, "\" not found.")));
  }
  // Output filter: known aliases, no duplicates.
  std::vector<int> selected;
  if (call.output_filter.empty()) {
    for (size_t i = 0; i < sig.outputs.size(); ++i) selected.push_back(static_cast<int>(i));
  } else {
    std::set<std::string> seen;
    for (const std::string& alias : call.output_filter) {
      const int index = sig.OutputIndex(alias);
      if (index < 0) {
        std::set<std::string> names;
        for (const TensorSpec& s : sig.outputs) names.insert(s.name);
        return done(absl::InvalidArgumentError(
            absl::StrCat("output tensor alias not found in signature: ", alias,
                         " Outputs expected to be in the set ", Braced(names), ".")));
      }
      if (!seen.insert(alias).second) {
        return done(absl::InvalidArgumentError(
            absl::StrCat("duplicate output tensor alias: ", alias)));
      }
      selected.push_back(index);
    }
  }
  auto ordered =
      ValidateInputs(servable, call.handle.name, call.inputs, servable.batched(), metrics_);
  if (!ordered.ok()) return done(ordered.status());
  if (call.deadline <= absl::Now()) {
    return done(absl::DeadlineExceededError("the request's deadline passed before it was queued"));
  }

  ++inflight_;
  metrics_->SetInflight(inflight_.load());
  if (servable.RunsInline(ExampleCount(call.inputs), options_.inline_run_limit)) {
    Complete(call.handle, selected,
             RunModel(servable.model(), call.handle.name, *ordered, /*single_threaded=*/true),
             done);
    return;
  }
  BatchTask task;
  task.inputs = std::move(*ordered);
  task.deadline = call.deadline;
  // call.handle stays here, keeping `servable` alive after the task has run.
  task.done = [this, handle = call.handle, selected = std::move(selected),
               done = std::move(done)](absl::StatusOr<std::vector<models::Tensor>> out) {
    Complete(handle, selected, std::move(out), done);
    handle.get<ServableModel>().PublishQueueDepth();
  };
  // A caller with an event loop does not run other requests' batches now: the loop runs them
  // later (for a queue served by batch threads, both are Schedule()).
  const absl::Status s = call.defer != nullptr
                             ? servable.queue().ScheduleDeferred(std::move(task), call.defer)
                             : servable.queue().Schedule(std::move(task));
  if (!s.ok()) {
    task.done(s);  // a task that was not queued is still here
    return;
  }
  servable.PublishQueueDepth();
}

absl::StatusOr<std::vector<models::Tensor>> InferenceService::RunModel(
    const models::Model& model, const std::string& name,
    const std::vector<models::Tensor>& inputs, bool single_threaded) const {
  models::RunOptions options;
  options.single_threaded = single_threaded;
  const absl::Time start = absl::Now();
  auto out = model.Run(inputs, options);
  metrics_->RecordRuntime(name, absl::Now() - start);
  return out;
}

void InferenceService::Complete(const loader::ServableHandle& handle,
                                const std::vector<int>& selected,
                                absl::StatusOr<std::vector<models::Tensor>> outputs,
                                const PredictDone& done) {
  const ServableModel& s = handle.get<ServableModel>();
  absl::StatusOr<std::vector<EdgeTensor>> served;
  if (!outputs.ok()) {
    served = outputs.status();
  } else if (outputs->size() != s.model().outputs().size()) {
    served = absl::InternalError("the model returned an unexpected number of outputs");
  } else if (s.pipeline() != nullptr) {
    served = s.pipeline()->Postprocess(std::move(*outputs));
  } else {
    served.emplace();
    for (models::Tensor& t : *outputs) served->push_back(EdgeTensor::FromTensor(std::move(t)));
  }
  if (!served.ok()) {
    done(served.status());
  } else {
    PredictResult result;
    result.model = handle.name;
    result.version = handle.version;
    for (int i : selected) {
      result.outputs.emplace_back(s.signature().outputs[i].name, std::move((*served)[i]));
    }
    done(std::move(result));
  }
  --inflight_;
  metrics_->SetInflight(inflight_.load());
}

absl::StatusOr<GetModelMetadataResponse> InferenceService::GetModelMetadata(
    const GetModelMetadataRequest& request) const {
  if (request.metadata_field_size() == 0) {
    return absl::InvalidArgumentError(
        "GetModelMetadataRequest must specify at least one metadata_field");
  }
  for (const std::string& field : request.metadata_field()) {
    if (field != "signature_def") {
      return absl::InvalidArgumentError(
          absl::StrCat("Metadata field ", field, " is not supported"));
    }
  }
  ASSIGN_OR_RETURN(loader::ServableHandle handle, Resolve(FromModelSpec(request.model_spec())));
  GetModelMetadataResponse response;
  auto* spec = response.mutable_model_spec();
  spec->set_name(handle.name);
  spec->mutable_version()->set_value(handle.version);
  tensorflow::serving::SignatureDefMap map;
  (*map.mutable_signature_def())[kDefaultSignature] =
      ToSignatureDef(handle.get<ServableModel>().signature());
  (*response.mutable_metadata())["signature_def"].PackFrom(map);
  return response;
}

absl::StatusOr<GetModelStatusResponse> InferenceService::GetModelStatus(
    const GetModelStatusRequest& request) const {
  const auto& spec = request.model_spec();
  if (spec.name().empty()) return absl::InvalidArgumentError("Missing model name in request.");
  std::optional<int64_t> version;
  if (spec.has_version()) version = spec.version().value();
  if (spec.version_choice_case() == tensorflow::serving::ModelSpec::kVersionLabel) {
    ASSIGN_OR_RETURN(loader::ServableHandle h, Resolve(FromModelSpec(spec)));
    version = h.version;
  }
  ASSIGN_OR_RETURN(auto statuses, manager_->GetStatus(spec.name(), version));
  GetModelStatusResponse response;
  for (const loader::VersionStatus& s : statuses) {
    auto* out = response.add_model_version_status();
    out->set_version(s.version);
    out->set_state(static_cast<tensorflow::serving::ModelVersionStatus::State>(s.state));
    out->mutable_status()->set_error_code(static_cast<tensorflow::error::Code>(s.status.code()));
    out->mutable_status()->set_error_message(ValidUtf8(s.status.message()));
  }
  return response;
}

void InferenceService::Finish(const RequestInfo& info, int64_t version, const absl::Status& status,
                              int64_t examples) {
  metrics_->RecordRequest(info.model, version, info.api, info.entrypoint, status,
                          absl::Now() - info.start, examples);
}

}  // namespace inferd::serving
