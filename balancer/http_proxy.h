// The gateway's REST reverse proxy: each HTTP request goes to one replica's HTTP port, chosen
// per request by the same Balancer as gRPC calls, over a pool of keep-alive connections per
// replica; the replica's answer comes back unchanged but for hop-by-hop headers.
//
// Retries go to another replica, within `max_attempts`, when the request never reached one
// (connect failure; a pooled connection the replica had already closed, found out before any
// answer byte: retried on a fresh connection) and, for idempotent requests (GET, and POST to
// :predict), within the shared retry budget, on a 503 answer or a connection lost mid-answer. Anything else — a replica's 4xx
// or 5xx, a timeout — is passed back to the client. As for gRPC, /versions/N and /labels/L
// requests go to replicas known to have them, and a 404 from one is tried on another. No replica: 503 with a JSON error body.
// Beast lives only in http_proxy.cc. Thread-safe.
#ifndef INFERD_BALANCER_HTTP_PROXY_H_
#define INFERD_BALANCER_HTTP_PROXY_H_

#include <cstddef>
#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "balancer/balancer.h"
#include "balancer/gateway_metrics.h"
#include "balancer/retry_budget.h"
#include "balancer/version_tracker.h"
#include "common/http_server.h"

namespace inferd::balancer {

struct HttpProxyOptions {
  // Threads for upstream connections.
  int num_threads = 2;
  // One attempt: connecting, sending the request and receiving the whole answer.
  absl::Duration timeout = absl::Seconds(30);
  // Idle keep-alive connections kept per replica.
  size_t max_idle_per_replica = 64;
  int max_attempts = 3;
  // Larger answers from a replica fail the request with 502.
  size_t max_response_bytes = size_t{1} << 30;
};

class HttpProxy {
 public:
  // `balancer`, `metrics`, `budget` and `versions` (may be null) must outlive the proxy.
  HttpProxy(Balancer* balancer, GatewayMetrics* metrics, RetryBudget* budget,
            VersionTracker* versions, HttpProxyOptions options);
  // Stops the upstream threads; requests still in flight are dropped unanswered, so stop (drain)
  // the HttpServer in front first.
  ~HttpProxy();

  // An HttpHandlerFn: forwards `request`, calls `done` once.
  void Handle(HttpRequest request, std::function<void(HttpResponse)> done);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_HTTP_PROXY_H_
