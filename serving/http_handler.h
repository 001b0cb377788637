// The REST adapter, free of sockets: method + target + Content-Type + body in, status + body out.
// Speaks TF Serving's REST API (/v1/models/...: predict, status, metadata; versions and labels),
// plus /healthz, /readyz and the Prometheus metrics page. Thread-safe.
#ifndef INFERD_SERVING_HTTP_HANDLER_H_
#define INFERD_SERVING_HTTP_HANDLER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/health.h"
#include "common/http_server.h"
#include "serving/inference_service.h"

namespace inferd::serving {

struct HttpHandlerOptions {
  // --rest_api_timeout_in_ms: the deadline of a REST predict.
  absl::Duration predict_timeout = absl::Milliseconds(30000);
  // From --monitoring_config_file; empty disables the metrics page.
  std::string metrics_path = "/monitoring/prometheus/metrics";
  // --rest_api_enable_cors_support.
  bool enable_cors = false;
};

// TF Serving's mapping from status codes to HTTP status.
int HttpStatusFor(absl::StatusCode code);

class HttpHandler {
 public:
  HttpHandler(InferenceService* service, HealthState* health, HttpHandlerOptions options)
      : service_(service), health_(health), options_(std::move(options)) {}

  // `done` is called exactly once, inline or on a batch thread.
  void Handle(HttpRequest request, std::function<void(HttpResponse)> done) const;

 private:
  void Predict(const std::string& model, std::optional<int64_t> version,
               std::optional<std::string> label, const HttpRequest& request,
               std::function<void(HttpResponse)> done) const;

  InferenceService* const service_;
  HealthState* const health_;
  const HttpHandlerOptions options_;
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_HTTP_HANDLER_H_
