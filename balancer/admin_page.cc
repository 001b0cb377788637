#include "balancer/admin_page.h"

#include "absl/strings/str_cat.h"
#include "common/json_escape.h"
#include "prometheus/text_serializer.h"

namespace inferd::balancer {

HttpResponse AdminPage::Handle(const HttpRequest& request) const {
  const std::string path = request.target.substr(0, request.target.find('?'));
  HttpResponse out;
  out.content_type = "text/plain";
  if (request.method != "GET" && request.method != "HEAD") {
    out.status = 405;
    out.content_type = "application/json";
    out.headers.emplace_back("Allow", "GET");
    out.body = JsonErrorBody(absl::StrCat("use GET for ", path));
  } else if (path == "/metrics") {
    out.content_type = "text/plain; version=0.0.4";
    out.body = prometheus::TextSerializer().Serialize(metrics_->registry()->Collect());
  } else if (path == "/endpoints") {
    out.content_type = "application/json";
    out.body = balancer_->EndpointsJson(absl::Now());
  } else if (path == "/healthz") {
    out.body = "ok\n";
  } else if (path == "/readyz") {
    const bool ready = health_->serving();
    out.status = ready ? 200 : 503;
    out.body = ready ? "ready\n" : (health_->draining() ? "draining\n" : "no healthy replica\n");
  } else {
    out.status = 404;
    out.content_type = "application/json";
    out.body = JsonErrorBody(absl::StrCat(
        "not found: ", path, " (the admin port serves /metrics, /endpoints, /healthz and /readyz)"));
  }
  return out;
}

}  // namespace inferd::balancer
