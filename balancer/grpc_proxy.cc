#include "balancer/grpc_proxy.h"

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace inferd::balancer {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {
      "OK",           "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

// The method's name for metrics: TF Serving's methods by name, anything else as "other" (clients
// choose method names; they must not choose the metrics' cardinality).
std::string ApiName(const std::string& method) {
  static const char* const kKnown[] = {
      "/tensorflow.serving.PredictionService/Predict",
      "/tensorflow.serving.PredictionService/Classify",
      "/tensorflow.serving.PredictionService/Regress",
      "/tensorflow.serving.PredictionService/MultiInference",
      "/tensorflow.serving.PredictionService/GetModelMetadata",
      "/tensorflow.serving.ModelService/GetModelStatus",
      "/tensorflow.serving.ModelService/HandleReloadConfigRequest"};
  for (const char* known : kKnown) {
    if (method == known) return method.substr(method.rfind('/') + 1);
  }
  return "other";
}

// Request metadata that describes the client's own HTTP/2 stream rather than the call.
bool Forwardable(grpc::string_ref key) {
  const absl::string_view k(key.data(), key.size());
  return !k.empty() && k[0] != ':' && !absl::StartsWith(k, "grpc-") && k != "te" &&
         k != "content-type" && k != "user-agent";
}

}  // namespace

// One client call: read its request, try replicas until one answers or retrying stops, then
// answer. The upstream completion and the backoff alarm never run at the same time, so the
// attempt state is touched by one thread at a time; mu_ guards only what OnCancel shares.
class GrpcProxy::Call : public grpc::ServerGenericBidiReactor {
 public:
  Call(GrpcProxy* proxy, grpc::GenericCallbackServerContext* ctx)
      : proxy_(proxy),
        ctx_(ctx),
        api_(ApiName(ctx->method())),
        idempotent_(proxy->options_.idempotent_methods.count(ctx->method()) > 0),
        start_(absl::Now()) {
    proxy_->active_.fetch_add(1);
    proxy_->budget_->RequestStarted();
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Reply(grpc::Status(grpc::StatusCode::CANCELLED, "no request message"));
    if (proxy_->versions_ != nullptr) {
      need_ = RequirementFromGrpc(ctx_->method(), RequestPrefix());
      if (need_) proxy_->versions_->Note(*need_);
    }
    Attempt();
  }

  void OnCancel() override {
    grpc::ClientContext* upstream = nullptr;
    bool backing_off;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (!upstreams_.empty()) upstream = upstreams_.back().get();
      backing_off = backing_off_;
    }
    // Outside mu_: either may complete the attempt on this thread. Contexts live until the call
    // ends, so a completed one is harmless to cancel.
    if (upstream != nullptr) upstream->TryCancel();
    if (backing_off) alarm_.Cancel();
  }

  void OnWriteDone(bool) override {}

  void OnDone() override {
    proxy_->budget_->RequestEnded();
    proxy_->active_.fetch_sub(1);
    delete this;
  }

 private:
  bool cancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  // The request's first bytes (the model spec comes first), without copying a large tensor.
  std::string RequestPrefix() {
    constexpr size_t kPrefix = 4096;
    std::vector<grpc::Slice> slices;
    if (!request_.Dump(&slices).ok()) return std::string();
    std::string out;
    for (const grpc::Slice& slice : slices) {
      out.append(reinterpret_cast<const char*>(slice.begin()),
                 std::min(slice.size(), kPrefix - out.size()));
      if (out.size() >= kPrefix) break;
    }
    return out;
  }

  void Attempt() {
    const absl::Time now = absl::Now();
    {
      absl::MutexLock lock(&mu_);
      backing_off_ = false;
    }
    if (cancelled()) return Reply(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    std::shared_ptr<Replica> replica =
        proxy_->balancer_->Pick(tried_, now, need_ ? &*need_ : nullptr);
    if (replica == nullptr) {
      if (!tried_.empty()) return Reply(last_);  // every usable replica failed
      proxy_->metrics_->RecordAttempt("none", api_, "NO_REPLICA", absl::ZeroDuration());
      return Reply(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "inferd-gateway: no replica is available"));
    }
    tried_.push_back(replica.get());
    replica_ = std::move(replica);
    kept_.push_back(replica_);
    grpc::Channel* channel = replica_->channel();
    was_connected_ = channel != nullptr && channel->GetState(false) == GRPC_CHANNEL_READY;
    auto upstream = std::make_unique<grpc::ClientContext>();
    if (ctx_->deadline() != std::chrono::system_clock::time_point::max()) {
      upstream->set_deadline(ctx_->deadline());
    }
    for (const auto& [key, value] : ctx_->client_metadata()) {
      if (Forwardable(key)) {
        upstream->AddMetadata(std::string(key.data(), key.size()),
                              std::string(value.data(), value.size()));
      }
    }
    grpc::ClientContext* raw = upstream.get();
    bool cancel_now;
    {
      absl::MutexLock lock(&mu_);
      upstreams_.push_back(std::move(upstream));
      cancel_now = cancelled_;
    }
    if (cancel_now) raw->TryCancel();
    response_.Clear();
    attempt_start_ = now;
    ++attempts_;
    replica_->stub().UnaryCall(raw, ctx_->method(), grpc::StubOptions(), &request_, &response_,
                               [this, raw](grpc::Status s) { OnUpstreamDone(raw, std::move(s)); });
  }

  void OnUpstreamDone(grpc::ClientContext* upstream, grpc::Status status) {
    const absl::Time now = absl::Now();
    // CANCELLED that this gateway did not ask for: the replica gave the call up (it is shutting
    // down); like UNAVAILABLE, a failure of the replica, retried for idempotent methods.
    const bool unavailable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                             (status.error_code() == grpc::StatusCode::CANCELLED && !cancelled());
    proxy_->balancer_->Report(*replica_, unavailable, now - attempt_start_, now);
    proxy_->metrics_->RecordAttempt(replica_->key(), api_, CodeName(status.error_code()),
                                    now - attempt_start_);
    const bool unreached = unavailable && !was_connected_;
    // A replica without the model, version or label asked for did nothing: another may have
    // it (a restarted replica still loading its models answers NOT_FOUND until it has them).
    const bool missing = status.error_code() == grpc::StatusCode::NOT_FOUND && need_ &&
                         proxy_->balancer_->RetryNotFound(tried_, now, *need_);
    if (missing && attempts_ < proxy_->options_.max_attempts && !cancelled()) {
      last_ = std::move(status);
      return Attempt();
    }
    const auto deadline = ctx_->deadline();
    const bool time_left = deadline == std::chrono::system_clock::time_point::max() ||
                           absl::FromChrono(deadline) > now + absl::Milliseconds(1);
    if (unavailable && (unreached || idempotent_) && attempts_ < proxy_->options_.max_attempts &&
        time_left && !cancelled()) {
      // A call that never reached a replica adds load to none when retried: only retries of
      // calls that did count against the budget.
      if (unreached || in_retry_budget_ || proxy_->budget_->TryAcquire()) {
        in_retry_budget_ = in_retry_budget_ || !unreached;
        proxy_->metrics_->RecordRetry();
        last_ = std::move(status);
        if (attempts_ == 1) return Attempt();  // the first retry goes at once, elsewhere
        return Backoff(now);
      }
      proxy_->metrics_->RecordBudgetExhausted();
    }
    for (const auto& [key, value] : upstream->GetServerInitialMetadata()) {
      ctx_->AddInitialMetadata(std::string(key.data(), key.size()),
                               std::string(value.data(), value.size()));
    }
    for (const auto& [key, value] : upstream->GetServerTrailingMetadata()) {
      ctx_->AddTrailingMetadata(std::string(key.data(), key.size()),
                                std::string(value.data(), value.size()));
    }
    if (!status.ok()) return Reply(status);
    ReleaseRetrySlot();
    proxy_->metrics_->RecordRequest(api_, "OK", absl::Now() - start_);
    StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
  }

  // Full jitter: uniform in [0, min(max, base * (2^(n-1) - 1))) before the n-th retry.
  void Backoff(absl::Time now) {
    const ProxyOptions& o = proxy_->options_;
    const double cap = std::min(absl::ToDoubleNanoseconds(o.backoff_max),
                                absl::ToDoubleNanoseconds(o.backoff_base) *
                                    static_cast<double>((int64_t{1} << (attempts_ - 1)) - 1));
    const double fraction =
        static_cast<double>(proxy_->random_() >> 11) / static_cast<double>(uint64_t{1} << 53);
    const absl::Time at = now + absl::Nanoseconds(static_cast<int64_t>(cap * fraction));
    {
      absl::MutexLock lock(&mu_);
      backing_off_ = true;
    }
    alarm_.Set(absl::ToChronoTime(at), [this](bool fired) {
      if (!fired) return Reply(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      Attempt();
    });
  }

  void ReleaseRetrySlot() {
    if (in_retry_budget_) proxy_->budget_->Release();
    in_retry_budget_ = false;
  }

  void Reply(const grpc::Status& status) {
    ReleaseRetrySlot();
    proxy_->metrics_->RecordRequest(api_, CodeName(status.error_code()), absl::Now() - start_);
    Finish(status);
  }

  GrpcProxy* const proxy_;
  grpc::GenericCallbackServerContext* const ctx_;
  const std::string api_;
  const bool idempotent_;
  const absl::Time start_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::Alarm alarm_;
  // Attempt state (one attempt at a time).
  std::vector<const Replica*> tried_;
  std::vector<std::shared_ptr<Replica>> kept_;  // keeps tried_ valid
  std::shared_ptr<Replica> replica_;
  std::optional<ModelRequirement> need_;
  bool was_connected_ = false;
  bool in_retry_budget_ = false;
  int attempts_ = 0;
  absl::Time attempt_start_;
  grpc::Status last_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool backing_off_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<grpc::ClientContext>> upstreams_ ABSL_GUARDED_BY(mu_);
};

GrpcProxy::GrpcProxy(Balancer* balancer, GatewayMetrics* metrics, RetryBudget* budget,
                     VersionTracker* versions, ProxyOptions options,
                     std::function<uint64_t()> random)
    : balancer_(balancer),
      metrics_(metrics),
      budget_(budget),
      versions_(versions),
      options_(std::move(options)),
      random_(std::move(random)) {}

grpc::ServerGenericBidiReactor* GrpcProxy::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  return new Call(this, ctx);
}


}  // namespace inferd::balancer
