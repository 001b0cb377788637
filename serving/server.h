// inferd-server, assembled: model manager, inference service, gRPC and HTTP front ends, config
// file polling, and the SIGTERM drain. Used by the binary and by in-process tests.
#ifndef INFERD_SERVING_SERVER_H_
#define INFERD_SERVING_SERVER_H_

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "serving/http_handler.h"
#include "common/http_server.h"
#include "serving/inference_service.h"
#include "tensorflow_serving/config/model_server_config.pb.h"

namespace grpc {
class Server;
}

namespace inferd::serving {

struct ServerOptions {
  std::string grpc_address = "0.0.0.0";
  int grpc_port = 8500;  // 0 picks a free port; negative disables gRPC
  HttpServerOptions http;  // http.port negative disables REST
  HttpHandlerOptions http_handler;
  ServingOptions serving;

  // The models to serve (from --model_name/--model_base_path or --model_config_file).
  tensorflow::serving::ModelServerConfig model_config;
  // When set, re-read every model_config_file_poll_wait (if positive) and applied on change.
  std::string model_config_file;
  absl::Duration model_config_file_poll_wait = absl::ZeroDuration();
  absl::Duration file_system_poll_wait = absl::Seconds(1);
  bool allow_version_labels_for_unavailable_models = false;

  // gRPC: thread cap (0: gRPC's default), extra channel arguments, connection age.
  int grpc_max_threads = 0;
  std::vector<std::pair<std::string, std::string>> grpc_channel_arguments;
  int64_t grpc_max_connection_age_ms = 0;        // 0: unlimited
  int64_t grpc_max_connection_age_grace_ms = 0;  // 0: unlimited

  absl::Duration drain_timeout = absl::Seconds(30);
};

class Server {
 public:
  // Starts the front ends at once; models load in the background (health is NOT_SERVING and
  // /readyz answers 503 until every model has an AVAILABLE version).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  int grpc_port() const { return grpc_port_; }
  int rest_port() const { return http_ ? http_->port() : -1; }
  loader::ModelManager& manager() { return *manager_; }
  HealthState& health() { return *health_; }

  // SIGTERM: report NOT_SERVING, stop accepting, finish requests in flight within the drain
  // timeout, stop. Returns true if nothing was cut off.
  bool Drain();

 private:
  Server() = default;
  void PollConfigFile();

  ServerOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<loader::ModelManager> manager_;
  std::unique_ptr<HealthState> health_;
  std::unique_ptr<HttpHandler> handler_;
  std::unique_ptr<HttpServer> http_;
  struct GrpcParts;
  std::unique_ptr<GrpcParts> grpc_;
  int grpc_port_ = -1;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread config_poller_;
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_SERVER_H_
