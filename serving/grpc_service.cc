#include "serving/grpc_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "serving/tensor_proto.h"

namespace inferd::serving {
namespace {
using grpc::health::v1::HealthCheckResponse;

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline >= now + std::chrono::hours(24 * 365)) return absl::InfiniteFuture();
  return absl::Now() + absl::FromChrono(deadline - now);
}

bool KnownHealthService(const std::string& name) {
  return name.empty() || name == "tensorflow.serving.PredictionService" ||
         name == "tensorflow.serving.ModelService" || name == "PredictionService" ||
         name == "ModelService";
}

grpc::ServerUnaryReactor* Unimplemented(grpc::CallbackServerContext* context,
                                        InferenceService* service, const std::string& model,
                                        const char* api) {
  const absl::Status status = absl::UnimplementedError(absl::StrCat(
      api, " is not supported by inferd: it serves ONNX models through predict signatures; "
           "call Predict instead"));
  service->Finish(RequestInfo{model, api, "GRPC"}, 0, status);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Predict(
    grpc::CallbackServerContext* context, const tensorflow::serving::PredictRequest* request,
    tensorflow::serving::PredictResponse* response) {
  auto* reactor = context->DefaultReactor();
  RequestInfo info{request->model_spec().name(), "Predict", "GRPC"};
  auto fail = [&](const absl::Status& status, int64_t version) {
    service_->Finish(info, version, status);
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  };
  auto handle = service_->Resolve(InferenceService::FromModelSpec(request->model_spec()));
  if (!handle.ok()) return fail(handle.status(), 0);
  PredictCall call;
  call.handle = *handle;
  call.signature_name = request->model_spec().signature_name();
  call.deadline = DeadlineOf(context);
  for (const auto& [alias, proto] : request->inputs()) {
    auto tensor = FromTensorProto(proto, alias);
    if (!tensor.ok()) return fail(tensor.status(), handle->version);
    call.inputs.emplace_back(alias, std::move(*tensor));
  }
  call.output_filter.assign(request->output_filter().begin(), request->output_filter().end());
  const int64_t examples = ExampleCount(call.inputs);
  const std::string signature = request->model_spec().signature_name().empty()
                                    ? kDefaultSignature
                                    : request->model_spec().signature_name();
  service_->Predict(
      std::move(call), [this, reactor, response, info, examples, signature,
                        version = handle->version](absl::StatusOr<PredictResult> result) {
        if (result.ok()) {
          auto* spec = response->mutable_model_spec();
          spec->set_name(result->model);
          spec->mutable_version()->set_value(result->version);
          spec->set_signature_name(signature);
          for (const auto& [alias, tensor] : result->outputs) {
            ToTensorProto(tensor, tensor_content_output_, &(*response->mutable_outputs())[alias]);
          }
        }
        service_->Finish(info, version, result.status(), examples);
        reactor->Finish(ToGrpcStatus(result.status()));
      });
  return reactor;
}

grpc::ServerUnaryReactor* PredictionServiceImpl::GetModelMetadata(
    grpc::CallbackServerContext* context,
    const tensorflow::serving::GetModelMetadataRequest* request,
    tensorflow::serving::GetModelMetadataResponse* response) {
  RequestInfo info{request->model_spec().name(), "GetModelMetadata", "GRPC"};
  auto result = service_->GetModelMetadata(*request);
  if (result.ok()) *response = std::move(*result);
  service_->Finish(info, result.ok() ? response->model_spec().version().value() : 0,
                   result.status());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Classify(
    grpc::CallbackServerContext* context, const tensorflow::serving::ClassificationRequest* request,
    tensorflow::serving::ClassificationResponse*) {
  return Unimplemented(context, service_, request->model_spec().name(), "Classify");
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Regress(
    grpc::CallbackServerContext* context, const tensorflow::serving::RegressionRequest* request,
    tensorflow::serving::RegressionResponse*) {
  return Unimplemented(context, service_, request->model_spec().name(), "Regress");
}

grpc::ServerUnaryReactor* PredictionServiceImpl::MultiInference(
    grpc::CallbackServerContext* context, const tensorflow::serving::MultiInferenceRequest* request,
    tensorflow::serving::MultiInferenceResponse*) {
  const std::string model =
      request->tasks_size() > 0 ? request->tasks(0).model_spec().name() : std::string();
  return Unimplemented(context, service_, model, "MultiInference");
}

ModelServiceImpl::~ModelServiceImpl() {
  absl::MutexLock lock(&mu_);
  for (std::thread& t : reloads_) t.join();
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModelStatus(
    grpc::CallbackServerContext* context, const tensorflow::serving::GetModelStatusRequest* request,
    tensorflow::serving::GetModelStatusResponse* response) {
  RequestInfo info{request->model_spec().name(), "GetModelStatus", "GRPC"};
  auto result = service_->GetModelStatus(*request);
  if (result.ok()) *response = std::move(*result);
  service_->Finish(info, 0, result.status());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerUnaryReactor* ModelServiceImpl::HandleReloadConfigRequest(
    grpc::CallbackServerContext* context, const tensorflow::serving::ReloadConfigRequest* request,
    tensorflow::serving::ReloadConfigResponse* response) {
  auto* reactor = context->DefaultReactor();
  absl::MutexLock lock(&mu_);
  reloads_.emplace_back([this, reactor, request, response] {
    RequestInfo info{"", "HandleReloadConfigRequest", "GRPC"};
    const absl::Status status =
        service_->manager().ApplyConfig(request->config(), absl::Minutes(10));
    response->mutable_status()->set_error_code(
        static_cast<tensorflow::error::Code>(status.code()));
    response->mutable_status()->set_error_message(std::string(status.message()));
    service_->Finish(info, 0, status);
    reactor->Finish(ToGrpcStatus(status));
  });
  return reactor;
}

grpc::ServerUnaryReactor* HealthServiceImpl::Check(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::health::v1::HealthCheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!KnownHealthService(request->service())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown service \"", request->service(), "\"")));
    return reactor;
  }
  response->set_status(health_->serving() ? HealthCheckResponse::SERVING
                                          : HealthCheckResponse::NOT_SERVING);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {

// Streams the status now and after every change, until the client cancels or the server drains
// (then NOT_SERVING is the last message). At most one write is in flight; a change during a write
// is sent after it. gRPC calls are made without holding mu_.
class WatchReactor : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  WatchReactor(HealthState* health, bool known) : health_(health), known_(known) {
    if (known_) watch_id_ = health_->Watch([this](bool serving) { Send(serving); });
    Send(known_ && health_->serving());
  }

  void OnWriteDone(bool ok) override {
    bool start = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok || (last_sent_ && !pending_)) {
        finish = !finished_;
        finished_ = true;
      } else if (pending_ && !finished_) {
        pending_ = false;
        start = StartLocked();
      }
    }
    if (finish) Finish(ok ? grpc::Status::OK : grpc::Status::CANCELLED);
    if (start) StartWrite(&response_);
  }
  void OnCancel() override {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      finish = !finished_ && !writing_;
      finished_ = true;
    }
    if (finish) Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    // After Unwatch returns no callback runs, so deleting is safe.
    if (known_) health_->Unwatch(watch_id_);
    delete this;
  }

 private:
  void Send(bool serving) {
    bool start = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      status_ = !known_   ? HealthCheckResponse::SERVICE_UNKNOWN
                : serving ? HealthCheckResponse::SERVING
                          : HealthCheckResponse::NOT_SERVING;
      if (health_->draining()) last_sent_ = true;
      if (writing_) {
        pending_ = true;
      } else {
        start = StartLocked();
      }
    }
    if (start) StartWrite(&response_);
  }
  bool StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    response_.set_status(status_);
    writing_ = true;
    return true;
  }

  HealthState* const health_;
  const bool known_;
  int watch_id_ = -1;
  absl::Mutex mu_;
  HealthCheckResponse response_;  // written only by the one in-flight write's starter
  HealthCheckResponse::ServingStatus status_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool last_sent_ ABSL_GUARDED_BY(mu_) = false;  // draining: finish after this write
};

}  // namespace

grpc::ServerWriteReactor<HealthCheckResponse>* HealthServiceImpl::Watch(
    grpc::CallbackServerContext*, const grpc::health::v1::HealthCheckRequest* request) {
  return new WatchReactor(health_, KnownHealthService(request->service()));
}

}  // namespace inferd::serving
