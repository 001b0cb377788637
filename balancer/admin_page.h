// The gateway's admin port, free of sockets: /metrics (Prometheus text), /endpoints (the replica
// table as JSON), /healthz (live) and /readyz (200 while some replica is healthy and the gateway
// is not draining). Thread-safe.
#ifndef INFERD_BALANCER_ADMIN_PAGE_H_
#define INFERD_BALANCER_ADMIN_PAGE_H_

#include <string>

#include "balancer/balancer.h"
#include "balancer/gateway_metrics.h"
#include "common/health.h"
#include "common/http_server.h"

namespace inferd::balancer {

class AdminPage {
 public:
  // All three must outlive the page.
  AdminPage(const Balancer* balancer, const GatewayMetrics* metrics, const HealthState* health)
      : balancer_(balancer), metrics_(metrics), health_(health) {}

  HttpResponse Handle(const HttpRequest& request) const;

 private:
  const Balancer* const balancer_;
  const GatewayMetrics* const metrics_;
  const HealthState* const health_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_ADMIN_PAGE_H_
