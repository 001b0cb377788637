// Forwards every gRPC method the gateway does not serve itself to a replica, as raw bytes
// (gRPC's callback generic API: no tensor is decoded), one replica chosen per call. The client's
// deadline, metadata and cancellation go upstream; the replica's status, message and metadata
// come back. Unary calls only, which is every TF Serving method.
//
// Retries go to a different replica, immediately the first time and with full-jitter backoff
// after that, within the client's deadline, at most `max_attempts` in all, when
//   - the replica could not be reached (UNAVAILABLE while its channel was not connected: the
//     request never left the gateway), for any method, or
//   - it answered UNAVAILABLE (draining, queue full, killed mid-call) or CANCELLED without the
//     client cancelling (shutting down), and the method is declared idempotent (Predict,
//     GetModelMetadata, GetModelStatus by default),
// and, for calls that did reach a replica, while the retry budget (shared with the REST proxy)
// allows. A call for an explicit model version or label goes to replicas known to have it
// (model_routing.h); one that a replica answers NOT_FOUND is tried on another. Thread-safe.
#ifndef INFERD_BALANCER_GRPC_PROXY_H_
#define INFERD_BALANCER_GRPC_PROXY_H_

#include <atomic>
#include <functional>
#include <set>
#include <string>

#include <grpcpp/generic/async_generic_service.h>

#include "absl/time/time.h"
#include "balancer/balancer.h"
#include "balancer/gateway_metrics.h"
#include "balancer/retry_budget.h"
#include "balancer/version_tracker.h"

namespace inferd::balancer {

struct ProxyOptions {
  // Full method names ("/package.Service/Method") retried on UNAVAILABLE.
  std::set<std::string> idempotent_methods = {
      "/tensorflow.serving.PredictionService/Predict",
      "/tensorflow.serving.PredictionService/GetModelMetadata",
      "/tensorflow.serving.ModelService/GetModelStatus",
  };
  int max_attempts = 3;
  absl::Duration backoff_base = absl::Milliseconds(25);
  absl::Duration backoff_max = absl::Milliseconds(250);
};

class GrpcProxy : public grpc::CallbackGenericService {
 public:
  // `balancer`, `metrics`, `budget` and `versions` (may be null: no version-aware routing)
  // must outlive the proxy; `random` as for Balancer.
  GrpcProxy(Balancer* balancer, GatewayMetrics* metrics, RetryBudget* budget,
            VersionTracker* versions, ProxyOptions options, std::function<uint64_t()> random);

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  // Client calls accepted and not yet finished.
  int64_t active() const { return active_.load(); }

 private:
  class Call;

  Balancer* const balancer_;
  GatewayMetrics* const metrics_;
  RetryBudget* const budget_;
  VersionTracker* const versions_;
  const ProxyOptions options_;
  const std::function<uint64_t()> random_;
  std::atomic<int64_t> active_{0};
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_GRPC_PROXY_H_
