#include "balancer/admin_page.h"

#include <gtest/gtest.h>

namespace inferd::balancer {
namespace {

HttpRequest Get(const std::string& target, const std::string& method = "GET") {
  HttpRequest r;
  r.method = method;
  r.target = target;
  return r;
}

TEST(AdminPageTest, ServesMetricsEndpointsAndProbes) {
  Balancer balancer(BalancerOptions{}, [] { return uint64_t{4}; }, nullptr);
  GatewayMetrics metrics;
  HealthState health([&] { return balancer.HasHealthy(absl::Now()); });
  AdminPage page(&balancer, &metrics, &health);

  EXPECT_EQ(page.Handle(Get("/healthz")).status, 200);
  HttpResponse ready = page.Handle(Get("/readyz"));
  EXPECT_EQ(ready.status, 503);  // no replica yet
  EXPECT_EQ(ready.body, "no healthy replica\n");

  balancer.Update(*ParseStaticBackends("127.0.0.1:9000:9001"), absl::Now());
  EXPECT_EQ(page.Handle(Get("/readyz")).status, 200);
  HttpResponse table = page.Handle(Get("/endpoints?pretty=1"));
  EXPECT_EQ(table.status, 200);
  EXPECT_EQ(table.content_type, "application/json");
  EXPECT_NE(table.body.find("\"grpc_port\":9000"), std::string::npos) << table.body;

  metrics.RecordRetry();
  HttpResponse m = page.Handle(Get("/metrics"));
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("inferd_gateway_retries_total 1"), std::string::npos) << m.body;

  health.SetDraining();
  HttpResponse draining = page.Handle(Get("/readyz"));
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "draining\n");
}

TEST(AdminPageTest, UnknownPathsAndMethodsAreClearErrors) {
  Balancer balancer(BalancerOptions{}, [] { return uint64_t{4}; }, nullptr);
  GatewayMetrics metrics;
  HealthState health([] { return true; });
  AdminPage page(&balancer, &metrics, &health);
  HttpResponse missing = page.Handle(Get("/v1/models/digits"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("not found: /v1/models/digits"), std::string::npos);
  HttpResponse post = page.Handle(Get("/metrics", "POST"));
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.body.find("use GET"), std::string::npos);
}

}  // namespace
}  // namespace inferd::balancer
