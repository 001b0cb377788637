// inferd-server: a TensorFlow Serving compatible model server for ONNX models.
// Flags keep TF Serving's names and defaults (except --rest_api_port, 8501 here).

#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/flags.h"
#include "common/logging.h"
#include "serving/config_files.h"
#include "serving/server.h"
#include "tensorflow_serving/config/monitoring_config.pb.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "inferd-server: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace inferd;
  using namespace inferd::serving;
  // Debian's Abseil is built with Mutex deadlock detection on, which records every lock
  // acquisition in a global graph: a cost on every request path. It is a debugging aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int cores = std::max(1u, std::thread::hardware_concurrency());

  int32_t port = 8500;
  int32_t rest_api_port = 8501;
  std::string bind_address = "0.0.0.0";
  int32_t rest_api_num_threads = std::max(2, cores);
  int32_t rest_api_timeout_in_ms = 30000;
  int32_t rest_api_read_timeout_ms = 30000;
  int32_t rest_api_idle_timeout_ms = 120000;
  bool rest_api_enable_cors_support = false;
  std::string model_name = "default";
  std::string model_base_path;
  std::string model_config_file;
  int32_t model_config_file_poll_wait_seconds = 0;
  int32_t file_system_poll_wait_seconds = 1;
  bool enable_batching = false;
  std::string batching_parameters_file;
  bool allow_version_labels_for_unavailable_models = false;
  bool enable_model_warmup = true;
  std::string monitoring_config_file;
  std::string grpc_channel_arguments;
  int32_t grpc_max_threads = 4 * cores;
  int64_t grpc_max_connection_age_ms = 0;
  int64_t grpc_max_connection_age_grace_ms = 0;
  bool enable_grpc_healthcheck_service = true;
  bool enable_serialization_as_tensor_content = false;
  int32_t tensorflow_intra_op_parallelism = 0;
  int32_t intra_op_threads = 0;
  int32_t num_batch_threads = 0;
  int64_t inline_run_limit_us = 200;
  int32_t drain_timeout_seconds = 30;
  int64_t max_request_bytes = int64_t{64} << 20;
  std::string device = "cpu";
  std::string precision = "fp32";
  std::string ssl_config_file;
  bool use_alts_credentials = false;
  bool version = false;

  FlagSet flags("inferd-server",
                "Serves ONNX models from <base_path>/<version>/model.onnx over TensorFlow "
                "Serving's gRPC and REST APIs.");
  flags.Int32("port", &port, "gRPC port (tensorflow.serving.PredictionService, ModelService, "
              "grpc.health.v1, reflection); 0 picks a free port");
  flags.Int32("rest_api_port", &rest_api_port,
              "HTTP/REST port (/v1/models/..., /healthz, /readyz, metrics); 0 picks a free port, "
              "negative disables REST");
  flags.String("bind_address", &bind_address, "address both APIs listen on");
  flags.Int32("rest_api_num_threads", &rest_api_num_threads,
              "HTTP I/O threads, each running its own event loop; a new connection goes to "
              "the one with the fewest open connections");
  flags.Int32("rest_api_timeout_in_ms", &rest_api_timeout_in_ms,
              "deadline of a REST predict, from the time its body has arrived");
  flags.Int32("rest_api_read_timeout_ms", &rest_api_read_timeout_ms,
              "time allowed to receive one HTTP request once it has started");
  flags.Int32("rest_api_idle_timeout_ms", &rest_api_idle_timeout_ms,
              "idle keep-alive HTTP connections are closed after this long");
  flags.Bool("rest_api_enable_cors_support", &rest_api_enable_cors_support,
             "answer CORS preflights and add Access-Control-Allow-Origin: *");
  flags.String("model_name", &model_name, "name of the model (ignored with --model_config_file)");
  flags.String("model_base_path", &model_base_path,
               "directory holding the model's version directories <version>/model.onnx "
               "(ignored with --model_config_file)");
  flags.String("model_config_file", &model_config_file,
               "ModelServerConfig in text format: several models, version policies, labels");
  flags.Int32("model_config_file_poll_wait_seconds", &model_config_file_poll_wait_seconds,
              "re-read --model_config_file this often and apply changes; 0 reads it once");
  flags.Int32("file_system_poll_wait_seconds", &file_system_poll_wait_seconds,
              "scan base paths for new and removed versions this often; 0 or negative scans "
              "only at startup and on config changes");
  flags.Bool("enable_batching", &enable_batching, "merge concurrent requests into batches");
  flags.String("batching_parameters_file", &batching_parameters_file,
               "BatchingParameters in text format (max_batch_size, batch_timeout_micros, "
               "max_enqueued_batches, num_batch_threads, allowed_batch_sizes); needs "
               "--enable_batching");
  flags.Bool("allow_version_labels_for_unavailable_models",
             &allow_version_labels_for_unavailable_models,
             "allow new labels to point at versions that are not AVAILABLE yet");
  flags.Bool("enable_model_warmup", &enable_model_warmup,
             "replay <version>/assets.extra/tf_serving_warmup_requests before a version is "
             "AVAILABLE");
  flags.String("monitoring_config_file", &monitoring_config_file,
               "MonitoringConfig in text format; inferd serves Prometheus metrics at "
               "/monitoring/prometheus/metrics on the REST port unless this disables them or "
               "changes the path");
  flags.String("grpc_channel_arguments", &grpc_channel_arguments,
               "extra gRPC server arguments, key=value,key=value (integers passed as ints); "
               "grpc.so_reuseport=1 lets several servers share --port (off: a taken port fails "
               "the start)");
  flags.Int32("grpc_max_threads", &grpc_max_threads, "gRPC resource-quota thread cap");
  flags.Int64("grpc_max_connection_age_ms", &grpc_max_connection_age_ms,
              "close gRPC connections after this age so L4 load balancers rebalance; 0: never");
  flags.Int64("grpc_max_connection_age_grace_ms", &grpc_max_connection_age_grace_ms,
              "time calls may take to finish after a connection reached its maximum age");
  flags.Bool("enable_grpc_healthcheck_service", &enable_grpc_healthcheck_service,
             "grpc.health.v1 is always served by inferd; accepted for compatibility");
  flags.Bool("enable_serialization_as_tensor_content", &enable_serialization_as_tensor_content,
             "responses carry tensor_content instead of typed *_val fields");
  flags.Int32("tensorflow_intra_op_parallelism", &tensorflow_intra_op_parallelism,
              "same as --intra_op_threads (TF Serving's name)");
  flags.Int32("intra_op_threads", &intra_op_threads,
              "threads kernels use within one model run, shared by all models; 0: one per core");
  flags.Int32("num_batch_threads", &num_batch_threads,
              "threads that run model batches when the batching file does not say; 0: 1 with "
              "batching (each run uses all intra-op threads), one per core without");
  flags.Int64("inline_run_limit_us", &inline_run_limit_us,
              "a request to an unbatched model version runs on the thread that received it, "
              "single-threaded, when the version's one-row run time (measured at load) times "
              "the request's rows is at most this; others go to the batch threads. With "
              "batching and batch_timeout_micros 0, a version whose max_batch_size-row run "
              "takes at most this has its batches run by the request threads instead of the "
              "batch threads (each HTTP thread batches the requests it read itself, once it "
              "has read those that came together). 0: all go to the batch threads");
  flags.Int32("drain_timeout_seconds", &drain_timeout_seconds,
              "on SIGTERM/SIGINT, how long to wait for requests in flight before exiting");
  flags.Int64("max_request_bytes", &max_request_bytes,
              "largest REST request body (413 beyond it)");
  flags.String("device", &device,
               "where models run: cpu, or cuda / cuda:N (the N-th GPU) in builds with CUDA");
  flags.String("precision", &precision,
               "GPU precision: fp32, tf32 (TF32 tensor cores for matrix products) or fp16 "
               "(weights converted to half at load); CUDA graphs are captured at load for each "
               "allowed_batch_sizes entry of the batching file (batch 1 without one)");
  flags.String("ssl_config_file", &ssl_config_file, "not supported by inferd; must be empty");
  flags.Bool("use_alts_credentials", &use_alts_credentials, "not supported by inferd");
  flags.Bool("version", &version, "print the version and exit");
  for (const char* ignored :
       {"grpc_socket_path", "enable_per_model_batching_parameters", "num_load_threads",
        "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
        "flush_filesystem_caches", "tensorflow_session_parallelism",
        "tensorflow_inter_op_parallelism", "tensorflow_session_config_file",
        "platform_config_file", "per_process_gpu_memory_fraction", "saved_model_tags",
        "num_request_iterations_for_warmup", "remove_unused_fields_from_bundle_metagraph",
        "enable_signature_method_name_check", "prefer_tflite_model", "num_tflite_pools",
        "num_tflite_interpreters_per_pool", "xla_cpu_compilation_enabled",
        "xla_gpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file",
        "mixed_precision", "skip_initialize_tpu", "enable_cors_support"}) {
    flags.Ignored(ignored, "TF Serving flag without meaning in inferd");
  }
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(std::string(s.message()));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (version) {
    std::puts("inferd-server 0.3.0");
    return 0;
  }
  for (const std::string& w : flags.warnings()) INFERD_LOG(WARNING) << w;
  if (!ssl_config_file.empty() || use_alts_credentials) {
    return Fail("TLS (--ssl_config_file, --use_alts_credentials) is not supported; terminate TLS "
                "in front of inferd (e.g. at inferd-gateway's load balancer)");
  }
  auto placement = models::ParsePlacement(device);
  if (!placement.ok()) return Fail(absl::StrCat("--device: ", placement.status().message()));
  auto parsed_precision = models::ParsePrecision(precision);
  if (!parsed_precision.ok()) {
    return Fail(absl::StrCat("--precision: ", parsed_precision.status().message()));
  }
  if (!placement->is_cpu() && models::BuiltInExecutors().Find(placement->kind) == nullptr) {
    return Fail(absl::StrCat("--device=", device, " is not available: this inferd-server was ",
                             "built without ", placement->kind, " support"));
  }
  if (port == rest_api_port && port > 0) {
    return Fail("--port and --rest_api_port must differ");
  }

  ServerOptions o;
  o.grpc_address = bind_address;
  o.grpc_port = port;
  o.http.address = bind_address;
  o.http.port = rest_api_port;
  o.http.num_threads = rest_api_num_threads;
  o.http.max_body_bytes = static_cast<size_t>(std::max<int64_t>(1, max_request_bytes));
  o.http.read_timeout = absl::Milliseconds(rest_api_read_timeout_ms);
  o.http.idle_timeout = absl::Milliseconds(rest_api_idle_timeout_ms);
  o.http_handler.predict_timeout = absl::Milliseconds(rest_api_timeout_in_ms);
  o.http_handler.enable_cors = rest_api_enable_cors_support;
  o.file_system_poll_wait = absl::Seconds(file_system_poll_wait_seconds);
  o.allow_version_labels_for_unavailable_models = allow_version_labels_for_unavailable_models;
  o.grpc_max_threads = grpc_max_threads;
  o.grpc_max_connection_age_ms = grpc_max_connection_age_ms;
  o.grpc_max_connection_age_grace_ms = grpc_max_connection_age_grace_ms;
  o.drain_timeout = absl::Seconds(drain_timeout_seconds);
  for (absl::string_view kv : absl::StrSplit(grpc_channel_arguments, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty()) return Fail(absl::StrCat("bad --grpc_channel_arguments entry \"", kv, "\""));
    o.grpc_channel_arguments.push_back(p);
  }

  if (!monitoring_config_file.empty()) {
    tensorflow::serving::MonitoringConfig monitoring;
    if (absl::Status s = ReadTextProtoFile(monitoring_config_file, &monitoring); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    o.http_handler.metrics_path =
        !monitoring.prometheus_config().enable() ? std::string()
        : monitoring.prometheus_config().path().empty()
            ? std::string("/monitoring/prometheus/metrics")
            : monitoring.prometheus_config().path();
  }

  const int intra = intra_op_threads > 0 ? intra_op_threads : tensorflow_intra_op_parallelism;
  o.serving.device = std::make_shared<models::CpuDevice>(intra);
  o.serving.enable_model_warmup = enable_model_warmup;
  o.serving.tensor_content_output = enable_serialization_as_tensor_content;
  o.serving.enable_batching = enable_batching;
  o.serving.inline_run_limit = absl::Microseconds(std::max<int64_t>(0, inline_run_limit_us));
  o.serving.num_batch_threads =
      num_batch_threads > 0 ? num_batch_threads : (enable_batching ? 1 : cores);
  if (!batching_parameters_file.empty() && !enable_batching) {
    return Fail("--batching_parameters_file needs --enable_batching");
  }
  if (enable_batching) {
    tensorflow::serving::BatchingParameters params;
    if (!batching_parameters_file.empty()) {
      if (absl::Status s = ReadTextProtoFile(batching_parameters_file, &params); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
    auto batching = ToBatchingConfig(params);
    if (!batching.ok()) return Fail(std::string(batching.status().message()));
    o.serving.batching = batching->queue;
    if (batching->num_batch_threads > 0) o.serving.num_batch_threads = batching->num_batch_threads;
  }
  o.serving.executor.placement = *placement;
  o.serving.executor.precision = *parsed_precision;
  o.serving.executor.graph_batch_sizes = o.serving.batching.allowed_batch_sizes;
  if (o.serving.executor.graph_batch_sizes.empty()) o.serving.executor.graph_batch_sizes = {1};

  if (!model_config_file.empty()) {
    if (absl::Status s = ReadTextProtoFile(model_config_file, &o.model_config); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    o.model_config_file = model_config_file;
    o.model_config_file_poll_wait = absl::Seconds(model_config_file_poll_wait_seconds);
  } else if (!model_base_path.empty()) {
    auto* config = o.model_config.mutable_model_config_list()->add_config();
    config->set_name(model_name);
    std::error_code ec;
    auto absolute = std::filesystem::absolute(model_base_path, ec);
    config->set_base_path(ec ? model_base_path : absolute.string());
    config->set_model_platform("onnx");
  } else {
    return Fail("give --model_base_path (with --model_name) or --model_config_file");
  }

  // SIGTERM/SIGINT are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = Server::Start(std::move(o));
  if (!server.ok()) return Fail(std::string(server.status().message()));
  int received = 0;
  sigwait(&signals, &received);
  INFERD_LOG(INFO) << "received " << (received == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Drain();
  server->reset();
  INFERD_LOG(INFO) << "exiting";
  return 0;
}
