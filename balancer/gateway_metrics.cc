#include "balancer/gateway_metrics.h"

#include "absl/strings/str_cat.h"
#include "common/series_cache.h"

namespace inferd::balancer {
namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *b;
}


}  // namespace

GatewayMetrics::GatewayMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      attempts_(BuildCounter()
                    .Name("inferd_gateway_upstream_requests_total")
                    .Help("Attempts sent to replicas, by replica, API and gRPC status.")
                    .Register(*registry_)),
      attempt_latency_(BuildHistogram()
                           .Name("inferd_gateway_upstream_latency_seconds")
                           .Help("Attempt latency by replica and API.")
                           .Register(*registry_)),
      requests_(BuildCounter()
                    .Name("inferd_gateway_requests_total")
                    .Help("Client requests, by API and the gRPC status returned.")
                    .Register(*registry_)),
      request_latency_(BuildHistogram()
                           .Name("inferd_gateway_request_latency_seconds")
                           .Help("Client request latency (all attempts), by API.")
                           .Register(*registry_)),
      retries_(BuildCounter()
                   .Name("inferd_gateway_retries_total")
                   .Help("Attempts that retried a request on another replica.")
                   .Register(*registry_)
                   .Add({})),
      budget_exhausted_(BuildCounter()
                            .Name("inferd_gateway_retry_budget_exhausted_total")
                            .Help("Retries not made because the retry budget was spent.")
                            .Register(*registry_)
                            .Add({})),
      discovery_updates_(BuildCounter()
                             .Name("inferd_gateway_discovery_updates_total")
                             .Help("Endpoint sets delivered by discovery, by source.")
                             .Register(*registry_)),
      endpoints_(BuildGauge()
                     .Name("inferd_gateway_endpoints")
                     .Help("Replicas by state: ready, draining, ejected.")
                     .Register(*registry_)) {}

void GatewayMetrics::RecordAttempt(const std::string& replica, const std::string& api,
                                   const std::string& code, absl::Duration latency) {
  const AttemptSeries s =
      CachedSeries(mu_, attempt_series_, absl::StrCat(replica, "\x1f", api, "\x1f", code), [&] {
        return AttemptSeries{
            &attempts_.Add({{"replica", replica}, {"api", api}, {"code", code}}),
            &attempt_latency_.Add({{"replica", replica}, {"api", api}}, LatencyBuckets())};
      });
  s.count->Increment();
  s.latency->Observe(absl::ToDoubleSeconds(latency));
}

void GatewayMetrics::RecordRequest(const std::string& api, const std::string& code,
                                   absl::Duration latency) {
  const RequestSeries s = CachedSeries(mu_, request_series_, absl::StrCat(api, "\x1f", code), [&] {
    return RequestSeries{&requests_.Add({{"api", api}, {"code", code}}),
                         &request_latency_.Add({{"api", api}}, LatencyBuckets())};
  });
  s.count->Increment();
  s.latency->Observe(absl::ToDoubleSeconds(latency));
}

void GatewayMetrics::RecordRetry() { retries_.Increment(); }
void GatewayMetrics::RecordBudgetExhausted() { budget_exhausted_.Increment(); }

void GatewayMetrics::RecordDiscoveryUpdate(const std::string& source) {
  discovery_updates_.Add({{"source", source}}).Increment();
}

void GatewayMetrics::SetEndpointCounts(const Balancer::Counts& counts) {
  endpoints_.Add({{"state", "ready"}}).Set(counts.ready);
  endpoints_.Add({{"state", "draining"}}).Set(counts.draining);
  endpoints_.Add({{"state", "ejected"}}).Set(counts.ejected);
}

}  // namespace inferd::balancer
