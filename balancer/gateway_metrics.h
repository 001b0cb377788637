// inferd-gateway's Prometheus metrics (prometheus-cpp): requests and latency by replica and
// status, retries and retry-budget exhaustion, endpoints by state, discovery updates.
// Thread-safe; series are resolved once per label set and cached.
#ifndef INFERD_BALANCER_GATEWAY_METRICS_H_
#define INFERD_BALANCER_GATEWAY_METRICS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "balancer/balancer.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace inferd::balancer {

class GatewayMetrics {
 public:
  GatewayMetrics();

  // One attempt on a replica, by gRPC status name ("OK", "UNAVAILABLE", ...), or "NO_REPLICA".
  void RecordAttempt(const std::string& replica, const std::string& api, const std::string& code,
                     absl::Duration latency);
  // One client request, as answered to the client.
  void RecordRequest(const std::string& api, const std::string& code, absl::Duration latency);
  void RecordRetry();
  void RecordBudgetExhausted();
  void RecordDiscoveryUpdate(const std::string& source);
  void SetEndpointCounts(const Balancer::Counts& counts);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  struct AttemptSeries {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
  };
  struct RequestSeries {
    prometheus::Counter* count;
    prometheus::Histogram* latency;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& attempts_;
  prometheus::Family<prometheus::Histogram>& attempt_latency_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_latency_;
  prometheus::Counter& retries_;
  prometheus::Counter& budget_exhausted_;
  prometheus::Family<prometheus::Counter>& discovery_updates_;
  prometheus::Family<prometheus::Gauge>& endpoints_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, AttemptSeries> attempt_series_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, RequestSeries> request_series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_GATEWAY_METRICS_H_
