#include "serving/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <climits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_health.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "serving/config_files.h"
#include "serving/grpc_service.h"

namespace inferd::serving {

struct Server::GrpcParts {
  std::unique_ptr<PredictionServiceImpl> prediction;
  std::unique_ptr<ModelServiceImpl> model;
  std::unique_ptr<HealthServiceImpl> health;
  std::unique_ptr<grpc::Server> server;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  const absl::Time start = absl::Now();
  std::unique_ptr<Server> s(new Server());
  s->options_ = std::move(options);
  const ServerOptions& o = s->options_;
  s->metrics_ = std::make_unique<Metrics>();
  s->service_ = std::make_unique<InferenceService>(o.serving, s->metrics_.get());

  loader::ModelManagerOptions manager_options;
  manager_options.poll_interval = o.file_system_poll_wait;
  manager_options.allow_version_labels_for_unavailable_models =
      o.allow_version_labels_for_unavailable_models;
  Server* raw = s.get();
  manager_options.on_event = [raw](const loader::VersionEvent& e) {
    raw->metrics_->SetVersionState(e.model, e.version, loader::VersionStateName(e.state));
    raw->health_->Update();
  };
  s->health_ = std::make_unique<HealthState>(
      [raw] { return raw->manager_ != nullptr && raw->manager_->AllModelsAvailable(); });
  ASSIGN_OR_RETURN(s->manager_,
                   loader::ModelManager::Create(manager_options, s->service_->MakeLoadFn()));
  s->service_->set_manager(s->manager_.get());
  RETURN_IF_ERROR(s->manager_->ApplyConfig(o.model_config, absl::ZeroDuration()));

  if (o.http.port >= 0) {
    s->handler_ = std::make_unique<HttpHandler>(s->service_.get(), s->health_.get(), o.http_handler);
    ASSIGN_OR_RETURN(s->http_, HttpServer::Start(o.http, [handler = s->handler_.get()](
                                                             HttpRequest request, auto done) {
                       handler->Handle(std::move(request), std::move(done));
                     }));
    INFERD_LOG(INFO) << "REST API listening on " << o.http.address << ":" << s->http_->port();
  }
  if (o.grpc_port >= 0) {
    auto parts = std::make_unique<GrpcParts>();
    parts->prediction = std::make_unique<PredictionServiceImpl>(
        s->service_.get(), o.serving.tensor_content_output);
    parts->model = std::make_unique<ModelServiceImpl>(s->service_.get());
    parts->health = std::make_unique<HealthServiceImpl>(s->health_.get(), IsTfServingHealthService);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat(o.grpc_address, ":", o.grpc_port),
                             grpc::InsecureServerCredentials(), &s->grpc_port_);
    builder.SetMaxReceiveMessageSize(INT_MAX);
    builder.SetMaxSendMessageSize(INT_MAX);
    // gRPC sets SO_REUSEPORT by default, so a second server (a stale one, another test's) could
    // bind the same port without an error and take a share of its connections. The port is ours
    // alone unless --grpc_channel_arguments asks for grpc.so_reuseport: a taken port fails the
    // start.
    if (std::none_of(o.grpc_channel_arguments.begin(), o.grpc_channel_arguments.end(),
                     [](const auto& kv) { return kv.first == GRPC_ARG_ALLOW_REUSEPORT; })) {
      builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    }
    if (o.grpc_max_threads > 0) {
      grpc::ResourceQuota quota("inferd");
      quota.SetMaxThreads(o.grpc_max_threads);
      builder.SetResourceQuota(quota);
    }
    if (o.grpc_max_connection_age_ms > 0) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                                 static_cast<int>(o.grpc_max_connection_age_ms));
    }
    if (o.grpc_max_connection_age_grace_ms > 0) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                                 static_cast<int>(o.grpc_max_connection_age_grace_ms));
    }
    for (const auto& [key, value] : o.grpc_channel_arguments) {
      int number;
      if (absl::SimpleAtoi(value, &number)) {
        builder.AddChannelArgument(key, number);
      } else {
        builder.AddChannelArgument(key, value);
      }
    }
    builder.RegisterService(parts->prediction.get());
    builder.RegisterService(parts->model.get());
    builder.RegisterService(parts->health.get());
    parts->server = builder.BuildAndStart();
    if (!parts->server || s->grpc_port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for gRPC on ", o.grpc_address, ":", o.grpc_port));
    }
    s->grpc_ = std::move(parts);
    INFERD_LOG(INFO) << "gRPC API listening on " << o.grpc_address << ":" << s->grpc_port_;
  }
  if (!o.model_config_file.empty() && o.model_config_file_poll_wait > absl::ZeroDuration()) {
    s->config_poller_ = std::thread([raw] { raw->PollConfigFile(); });
  }
  s->health_->Update();
  INFERD_LOG(INFO) << "server started in " << absl::FormatDuration(absl::Now() - start)
                   << "; models load in the background";
  return s;
}

void Server::PollConfigFile() {
  tensorflow::serving::ModelServerConfig last = options_.model_config;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.model_config_file_poll_wait)) {
        return;
      }
    }
    tensorflow::serving::ModelServerConfig config;
    if (absl::Status s = ReadTextProtoFile(options_.model_config_file, &config); !s.ok()) {
      INFERD_LOG(WARNING) << "model config file: " << s.message() << " (keeping the current one)";
      continue;
    }
    if (google::protobuf::util::MessageDifferencer::Equals(config, last)) continue;
    INFERD_LOG(INFO) << "model config file changed; applying it";
    absl::Status s = manager_->ApplyConfig(config, absl::Minutes(10));
    if (!s.ok()) INFERD_LOG(WARNING) << "applying " << options_.model_config_file << ": " << s;
    last = config;
    health_->Update();
  }
}

bool Server::Drain() {
  const absl::Time start = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return true;
    stopping_ = true;
  }
  if (config_poller_.joinable()) config_poller_.join();
  INFERD_LOG(INFO) << "draining: health NOT_SERVING, no new connections, waiting up to "
                   << absl::FormatDuration(options_.drain_timeout) << " for "
                   << service_->inflight() << " requests in flight";
  health_->SetDraining();
  const absl::Time deadline = start + options_.drain_timeout;
  bool clean = true;
  if (http_) clean = http_->Drain(deadline - absl::Now()) && clean;
  if (grpc_) grpc_->server->Shutdown(absl::ToChronoTime(deadline));
  while (service_->inflight() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  clean = clean && service_->inflight() == 0;
  INFERD_LOG(INFO) << "drained in " << absl::FormatDuration(absl::Now() - start)
                   << (clean ? "; every accepted request was answered"
                             : "; the drain timeout cut off requests in flight");
  return clean;
}

Server::~Server() {
  Drain();
  if (grpc_) grpc_->server->Wait();
  http_.reset();
  grpc_.reset();
  manager_.reset();
  service_.reset();
}

}  // namespace inferd::serving
