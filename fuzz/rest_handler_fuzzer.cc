// Fuzz target: a whole REST request to inferd-server, through the socket-free HttpHandler that
// the HTTP server hands every parsed request to (routing, URL forms with versions and labels,
// Content-Type, :predict, metadata, status, health and metrics pages), with the digits model
// loaded from models/zoo/digits by a real ModelManager and InferenceService.
//
// Input: "METHOD\nTARGET\nCONTENT-TYPE\nBODY" (missing lines are empty). Properties: no crash
// or sanitizer report; an answer comes (within the predict deadline); its status is one TF
// Serving's table or inferd's endpoints give, never 500 (client input must not cause internal
// errors); a JSON answer parses as JSON.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/health.h"
#include "common/http_server.h"
#include "fuzz/fuzz_check.h"
#include "loader/model_manager.h"
#include "models/cpu/cpu_device.h"
#include "serving/http_handler.h"
#include "serving/inference_service.h"
#include "serving/json.h"
#include "serving/metrics.h"
#include "tensorflow_serving/config/model_server_config.pb.h"

namespace {

using namespace inferd;  // NOLINT: a fuzz target's wiring names many namespaces once

// The server's parts, wired as serving/server.cc wires them, minus the sockets.
struct Rig {
  std::unique_ptr<serving::Metrics> metrics;
  std::unique_ptr<serving::InferenceService> service;
  std::unique_ptr<HealthState> health;
  std::unique_ptr<loader::ModelManager> manager;
  std::unique_ptr<serving::HttpHandler> handler;
};

Rig* MakeRig() {
  auto* rig = new Rig;
  serving::ServingOptions options;
  options.device = std::make_shared<models::CpuDevice>(1);
  rig->metrics = std::make_unique<serving::Metrics>();
  rig->service = std::make_unique<serving::InferenceService>(options, rig->metrics.get());
  rig->health = std::make_unique<HealthState>(
      [rig] { return rig->manager != nullptr && rig->manager->AllModelsAvailable(); });
  loader::ModelManagerOptions manager_options;
  manager_options.poll_interval = absl::ZeroDuration();
  auto manager = loader::ModelManager::Create(manager_options, rig->service->MakeLoadFn());
  FUZZ_CHECK(manager.ok());
  rig->manager = *std::move(manager);
  rig->service->set_manager(rig->manager.get());
  tensorflow::serving::ModelServerConfig config;
  auto* model = config.mutable_model_config_list()->add_config();
  model->set_name("digits");
  model->set_base_path(INFERD_FUZZ_DIGITS_BASE_PATH);
  FUZZ_CHECK(rig->manager->ApplyConfig(config, absl::Seconds(60)).ok());
  rig->handler = std::make_unique<serving::HttpHandler>(rig->service.get(), rig->health.get(),
                                                        serving::HttpHandlerOptions{});
  return rig;
}

// The next '\n'-terminated field of `rest` (all of it when there is no '\n').
std::string NextLine(std::string_view* rest) {
  const size_t nl = rest->find('\n');
  std::string line(rest->substr(0, nl));
  rest->remove_prefix(nl == std::string_view::npos ? rest->size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Rig* const rig = MakeRig();
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  HttpRequest request;
  request.method = NextLine(&rest);
  request.target = NextLine(&rest);
  request.content_type = NextLine(&rest);
  request.body = std::string(rest);

  HttpResponse response;
  absl::Notification answered;
  rig->handler->Handle(std::move(request), [&](HttpResponse r) {
    response = std::move(r);
    answered.Notify();
  });
  FUZZ_CHECK(answered.WaitForNotificationWithTimeout(absl::Seconds(60)));
  switch (response.status) {
    case 200:
    case 204:  // CORS preflight
    case 400:
    case 404:
    case 405:
    case 406:
    case 408:
    case 409:
    case 412:
    case 413:
    case 415:
    case 429:
    case 501:
    case 503:
    case 504:
      break;
    default:
      std::fprintf(stderr, "status %d: %s\n", response.status, response.body.c_str());
      FUZZ_CHECK(false && "unexpected HTTP status");
  }
  if (response.content_type == "application/json" && !response.body.empty()) {
    FUZZ_CHECK(serving::JsonDocument::Parse(response.body).ok());
  }
  return 0;
}
