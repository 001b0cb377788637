#include "common/grpc_health.h"

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace inferd {
namespace {
using grpc::health::v1::HealthCheckResponse;
}  // namespace

bool IsTfServingHealthService(const std::string& name) {
  return name.empty() || name == "tensorflow.serving.PredictionService" ||
         name == "tensorflow.serving.ModelService" || name == "PredictionService" ||
         name == "ModelService";
}

grpc::ServerUnaryReactor* HealthServiceImpl::Check(
    grpc::CallbackServerContext* context, const grpc::health::v1::HealthCheckRequest* request,
    grpc::health::v1::HealthCheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!known_(request->service())) {
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
  return new WatchReactor(health_, known_(request->service()));
}

}  // namespace inferd
