// inferd-gateway: the front door in front of inferd-server replicas. Clients talk to it as to a
// server (gRPC on --port); it picks a replica for every call, retries what provably never
// reached one (and UNAVAILABLE for idempotent methods), ejects failing replicas, checks their
// health actively, and answers grpc.health.v1 itself: SERVING while some replica is healthy.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "balancer/admin_page.h"
#include "balancer/balancer.h"
#include "balancer/dns_source.h"
#include "balancer/endpoint.h"
#include "balancer/gateway_metrics.h"
#include "balancer/grpc_proxy.h"
#include "balancer/health_checker.h"
#include "balancer/http_proxy.h"
#include "balancer/k8s_source.h"
#include "common/flags.h"
#include "common/grpc_health.h"
#include "common/health.h"
#include "common/logging.h"
#include "common/http_server.h"

namespace {

using inferd::balancer::Balancer;
using inferd::balancer::Endpoint;
using inferd::balancer::EndpointList;

int Fail(const std::string& message) {
  std::fprintf(stderr, "inferd-gateway: %s\n", message.c_str());
  return 2;
}

uint64_t Random() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

std::shared_ptr<grpc::Channel> OpenChannel(const Endpoint& e) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  // Its own connection per replica, kept alive and re-dialled quickly after a restart.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // gRPC's own retries stay on although they cost about 10% of the gateway's CPU per call:
  // they include its transparent retries of streams a replica refused (REFUSED_STREAM, or above
  // the last stream id of its GOAWAY while it shuts down), which never reached the application
  // and are safe for every method, idempotent or not.
  auto channel =
      grpc::CreateCustomChannel(e.GrpcTarget(), grpc::InsecureChannelCredentials(), args);
  channel->GetState(/*try_to_connect=*/true);
  return channel;
}

}  // namespace

int main(int argc, char** argv) {
  // As in inferd-server: Debian's Abseil checks every lock acquisition for deadlock cycles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  int32_t port = 8500;
  int32_t rest_api_port = 8501;
  int32_t rest_api_num_threads = 2;
  int32_t rest_api_timeout_in_ms = 30000;
  std::string bind_address = "0.0.0.0";
  int32_t monitoring_port = 8502;
  std::string static_backends;
  std::string k8s_service;
  std::string k8s_grpc_port_name = "grpc";
  std::string k8s_http_port_name = "http";
  std::string k8s_api_server;
  std::string k8s_token_file;
  std::string k8s_ca_file;
  std::string dns_name;
  std::string dns_server;
  int32_t dns_refresh_seconds = 5;
  std::string lb_policy = "peak_ewma";
  int32_t slow_start_seconds = 30;
  int32_t max_attempts = 3;
  std::string idempotent_methods;
  int32_t ejection_failures = 5;
  int32_t ejection_seconds = 30;
  int32_t drain_timeout_seconds = 30;
  int32_t health_check_interval_ms = 1000;
  int32_t health_check_timeout_ms = 1000;
  int32_t health_check_unhealthy_threshold = 2;
  int32_t model_status_interval_ms = 1000;
  int32_t discovery_wait_seconds = 10;
  bool version = false;

  inferd::FlagSet flags("inferd-gateway",
                        "Balances TF Serving gRPC calls over inferd-server replicas, per call.");
  flags.Int32("port", &port, "gRPC port clients call (every method is forwarded); 0: a free port");
  flags.Int32("rest_api_port", &rest_api_port,
              "HTTP port; every request is forwarded to a replica's HTTP port; 0: a free port, "
              "negative: off");
  flags.Int32("rest_api_num_threads", &rest_api_num_threads,
              "threads for HTTP, each for client connections and for replica connections");
  flags.Int32("rest_api_timeout_in_ms", &rest_api_timeout_in_ms,
              "time one forwarded HTTP request may take on a replica (504 beyond it)");
  flags.String("bind_address", &bind_address, "address the gateway listens on");
  flags.Int32("monitoring_port", &monitoring_port,
              "admin HTTP port: /metrics (Prometheus), /endpoints (the replica table, JSON), "
              "/healthz, /readyz; 0: a free port, negative: off");
  flags.String("k8s_service", &k8s_service,
               "discover replicas from the EndpointSlices of this Service, NAMESPACE/NAME (NAME "
               "alone: the pod's namespace), by list and watch");
  flags.String("k8s_grpc_port_name", &k8s_grpc_port_name,
               "the Service port carrying gRPC (EndpointSlice port name)");
  flags.String("k8s_http_port_name", &k8s_http_port_name,
               "the Service port carrying HTTP (EndpointSlice port name)");
  flags.String("k8s_api_server", &k8s_api_server,
               "https://HOST:PORT (or http:// for kubectl proxy); empty: in-cluster "
               "(KUBERNETES_SERVICE_HOST/PORT)");
  flags.String("k8s_token_file", &k8s_token_file,
               "bearer token file, re-read every minute; empty: the pod's service account token");
  flags.String("k8s_ca_file", &k8s_ca_file,
               "CA bundle for the API server's certificate; empty: the service account's ca.crt");
  flags.String("dns_name", &dns_name,
               "discover replicas as every A/AAAA record of a (headless Service) name, "
               "HOST:GRPC_PORT:HTTP_PORT");
  flags.String("dns_server", &dns_server,
               "DNS server for --dns_name, IP[:PORT]; empty: the first nameserver in "
               "/etc/resolv.conf");
  flags.Int32("dns_refresh_seconds", &dns_refresh_seconds, "resolve --dns_name this often");
  flags.String("static_backends", &static_backends,
               "a fixed replica list, HOST:GRPC_PORT:HTTP_PORT,... (IPv6 hosts in brackets)");
  flags.String("lb_policy", &lb_policy,
               "peak_ewma (power of two choices on latency x outstanding), least_request (power "
               "of two choices on outstanding requests) or round_robin");
  flags.Int32("slow_start_seconds", &slow_start_seconds,
              "replicas added after start-up ramp from 10% to full weight over this long");
  flags.Int32("max_attempts", &max_attempts, "attempts per call, the first included (1-5)");
  flags.String("idempotent_methods", &idempotent_methods,
               "full method names retried on UNAVAILABLE (comma-separated); empty: Predict, "
               "GetModelMetadata and GetModelStatus");
  flags.Int32("ejection_failures", &ejection_failures,
              "consecutive failures (unreachable or UNAVAILABLE) that eject a replica");
  flags.Int32("ejection_seconds", &ejection_seconds,
              "first ejection length; the n-th lasts n times as long (at most 10x)");
  flags.Int32("health_check_interval_ms", &health_check_interval_ms,
              "grpc.health.v1 Check to every replica this often; 0: no active health checks");
  flags.Int32("health_check_timeout_ms", &health_check_timeout_ms,
              "a health check not answered this fast counts as failed");
  flags.Int32("health_check_unhealthy_threshold", &health_check_unhealthy_threshold,
              "consecutive failed checks (error, timeout, not SERVING) that take a replica out "
              "until it answers SERVING again");
  flags.Int32("model_status_interval_ms", &model_status_interval_ms,
              "poll every replica's GetModelStatus this often for the models (and labels) "
              "requests name, so calls for an explicit version or label go to replicas that "
              "have it; 0: off");
  flags.Int32("discovery_wait_seconds", &discovery_wait_seconds,
              "at start-up, wait this long for the first endpoint set before listening");
  flags.Int32("drain_timeout_seconds", &drain_timeout_seconds,
              "on SIGTERM/SIGINT, how long calls in flight may take before the gateway exits");
  flags.Bool("version", &version, "print the version and exit");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(std::string(s.message()));
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (version) {
    std::puts("inferd-gateway 0.1.0");
    return 0;
  }
  for (const std::string& w : flags.warnings()) INFERD_LOG(WARNING) << w;
  const int sources = !static_backends.empty() + !k8s_service.empty() + !dns_name.empty();
  if (sources != 1) {
    return Fail("give exactly one of --k8s_service, --dns_name and --static_backends");
  }
  std::unique_ptr<inferd::balancer::EndpointSource> source;
  std::string source_name;
  if (!static_backends.empty()) {
    auto endpoints = inferd::balancer::ParseStaticBackends(static_backends);
    if (!endpoints.ok()) {
      return Fail(absl::StrCat("--static_backends: ", endpoints.status().message()));
    }
    source = std::make_unique<inferd::balancer::StaticSource>(*endpoints);
    source_name = "static";
  } else if (!k8s_service.empty()) {
    auto options = inferd::balancer::MakeKubernetesOptions(
        k8s_service, k8s_api_server, k8s_token_file, k8s_ca_file,
        inferd::balancer::kServiceAccountDir);
    if (!options.ok()) return Fail(std::string(options.status().message()));
    options->ports.grpc = k8s_grpc_port_name;
    options->ports.http = k8s_http_port_name;
    source = std::make_unique<inferd::balancer::KubernetesSource>(*options);
    source_name = "kubernetes";
  } else {
    auto target = inferd::balancer::ParseDnsName(dns_name);
    if (!target.ok()) return Fail(absl::StrCat("--dns_name: ", target.status().message()));
    inferd::balancer::DnsSourceOptions options;
    options.name = target->name;
    options.grpc_port = target->grpc_port;
    options.http_port = target->http_port;
    options.server = dns_server;
    options.refresh = absl::Seconds(std::max(1, dns_refresh_seconds));
    auto dns = inferd::balancer::DnsSource::Create(options);
    if (!dns.ok()) return Fail(absl::StrCat("--dns_name: ", dns.status().message()));
    source = std::move(*dns);
    source_name = "dns";
  }
  auto policy = inferd::balancer::ParsePolicy(lb_policy);
  if (!policy.ok()) return Fail(std::string(policy.status().message()));
  if (max_attempts < 1 || max_attempts > 5) return Fail("--max_attempts must be in [1, 5]");

  inferd::balancer::BalancerOptions balancer_options;
  balancer_options.policy = *policy;
  balancer_options.replica.slow_start = absl::Seconds(std::max(0, slow_start_seconds));
  balancer_options.ejection_failures = std::max(1, ejection_failures);
  balancer_options.base_ejection = absl::Seconds(std::max(1, ejection_seconds));
  inferd::balancer::ProxyOptions proxy_options;
  proxy_options.max_attempts = max_attempts;
  if (!idempotent_methods.empty()) {
    proxy_options.idempotent_methods.clear();
    for (absl::string_view m : absl::StrSplit(idempotent_methods, ',', absl::SkipWhitespace())) {
      proxy_options.idempotent_methods.insert(std::string(m));
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const absl::Time start = absl::Now();
  Balancer balancer(balancer_options, Random, OpenChannel);
  inferd::balancer::GatewayMetrics metrics;
  inferd::HealthState health([&balancer] { return balancer.HasHealthy(absl::Now()); });
  inferd::HealthServiceImpl health_service(&health, inferd::IsTfServingHealthService);
  inferd::balancer::RetryBudget retry_budget;
  std::unique_ptr<inferd::balancer::VersionTracker> versions;
  if (model_status_interval_ms > 0) {
    inferd::balancer::VersionTrackerOptions version_options;
    version_options.interval = absl::Milliseconds(model_status_interval_ms);
    versions = std::make_unique<inferd::balancer::VersionTracker>(&balancer, version_options);
  }
  inferd::balancer::GrpcProxy proxy(&balancer, &metrics, &retry_budget, versions.get(),
                                    proxy_options, Random);

  // Discovery first: listeners open once the first endpoint set is in (or after a bounded
  // wait), so that the first calls do not find an empty set.
  absl::Notification first_endpoints;
  source->Start([&](EndpointList list) {
    balancer.Update(list, absl::Now());
    metrics.RecordDiscoveryUpdate(source_name);
    INFERD_LOG(INFO) << "endpoints: " << list.size() << " from " << source_name;
    health.Update();
    if (!first_endpoints.HasBeenNotified()) first_endpoints.Notify();
  });
  // The source calls into the objects above from its own thread: stop it first on every way out.
  absl::Cleanup stop_source = [&source] { source.reset(); };
  if (!first_endpoints.WaitForNotificationWithTimeout(
          absl::Seconds(std::max(0, discovery_wait_seconds)))) {
    INFERD_LOG(WARNING) << "no endpoints from " << source_name << " after "
                        << discovery_wait_seconds << "s; serving anyway (UNAVAILABLE until some "
                        << "arrive)";
  }

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(bind_address, ":", port), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.SetMaxReceiveMessageSize(INT_MAX);
  builder.SetMaxSendMessageSize(INT_MAX);
  // No SO_REUSEPORT (gRPC's default): a port another process holds fails the start instead of
  // splitting the clients' connections between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&health_service);
  builder.RegisterCallbackGenericService(&proxy);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return Fail(absl::StrCat("cannot listen for gRPC on ", bind_address, ":", port));
  }
  INFERD_LOG(INFO) << "gRPC listening on " << bind_address << ":" << bound_port;

  inferd::balancer::HttpProxyOptions http_options;
  http_options.num_threads = std::max(1, rest_api_num_threads);
  http_options.timeout = absl::Milliseconds(std::max(1, rest_api_timeout_in_ms));
  http_options.max_attempts = max_attempts;
  inferd::balancer::HttpProxy http_proxy(&balancer, &metrics, &retry_budget, versions.get(),
                                         http_options);
  std::unique_ptr<inferd::HttpServer> rest;
  if (rest_api_port >= 0) {
    inferd::HttpServerOptions o;
    o.address = bind_address;
    o.port = rest_api_port;
    o.num_threads = std::max(1, rest_api_num_threads);
    o.keep_headers = true;
    auto started = inferd::HttpServer::Start(o, [&http_proxy](inferd::HttpRequest r, auto done) {
      http_proxy.Handle(std::move(r), std::move(done));
    });
    if (!started.ok()) return Fail(std::string(started.status().message()));
    rest = std::move(*started);
    INFERD_LOG(INFO) << "REST listening on " << bind_address << ":" << rest->port();
  }

  inferd::balancer::AdminPage admin_page(&balancer, &metrics, &health);
  std::unique_ptr<inferd::HttpServer> admin;
  if (monitoring_port >= 0) {
    inferd::HttpServerOptions o;
    o.address = bind_address;
    o.port = monitoring_port;
    o.num_threads = 1;
    auto started = inferd::HttpServer::Start(o, [&admin_page](inferd::HttpRequest r, auto done) {
      done(admin_page.Handle(r));
    });
    if (!started.ok()) return Fail(std::string(started.status().message()));
    admin = std::move(*started);
    INFERD_LOG(INFO) << "metrics listening on " << bind_address << ":" << admin->port()
                     << "/metrics";
  }

  std::unique_ptr<inferd::balancer::HealthChecker> checker;
  if (health_check_interval_ms > 0) {
    inferd::balancer::HealthCheckOptions check_options;
    check_options.interval = absl::Milliseconds(health_check_interval_ms);
    check_options.timeout = absl::Milliseconds(std::max(1, health_check_timeout_ms));
    check_options.unhealthy_after = std::max(1, health_check_unhealthy_threshold);
    checker = std::make_unique<inferd::balancer::HealthChecker>(
        &balancer, check_options, [&health, &versions] {
          health.Update();
          if (versions) versions->PollNow();  // a replica that is back competes at once
        });
  }

  // Once a second: endpoint gauges, and health (ejections expire with time).
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop = false;
  std::thread maintenance([&] {
    std::unique_lock<std::mutex> lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stop; })) {
      metrics.SetEndpointCounts(balancer.CountStates(absl::Now()));
      health.Update();
    }
  });
  INFERD_LOG(INFO) << "gateway started in " << absl::FormatDuration(absl::Now() - start);

  int received = 0;
  sigwait(&signals, &received);
  const absl::Time drain_start = absl::Now();
  INFERD_LOG(INFO) << "received " << (received == SIGTERM ? "SIGTERM" : "SIGINT")
                   << ": health NOT_SERVING, no new calls, waiting up to "
                   << drain_timeout_seconds << "s for " << proxy.active() << " calls in flight";
  health.SetDraining();
  // Both listeners stop at once; each waits for its own calls in flight.
  std::thread grpc_drain([&] {
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(std::max(0, drain_timeout_seconds)));
  });
  if (rest != nullptr && !rest->Drain(absl::Seconds(std::max(0, drain_timeout_seconds)))) {
    INFERD_LOG(WARNING) << rest->active_requests() << " HTTP requests still in flight";
  }
  grpc_drain.join();
  rest.reset();
  {
    std::lock_guard<std::mutex> lock(stop_mu);
    stop = true;
  }
  stop_cv.notify_all();
  maintenance.join();
  checker.reset();
  INFERD_LOG(INFO) << "drained in " << absl::FormatDuration(absl::Now() - drain_start)
                   << "; exiting";
  return 0;
}
