// Kubernetes discovery: the EndpointSlices of one Service (label
// kubernetes.io/service-name=NAME), listed and then watched through the API server.
//
// Protocol: list, deliver, then watch from the list's resourceVersion with bookmarks and a
// server-side timeout; ADDED/MODIFIED/DELETED events update the slice map and deliver the merged
// set when it changed; BOOKMARK moves the resourceVersion; a watch that ends (timeout, closed
// stream) resumes from the last resourceVersion; HTTP 410 or an ERROR event with code 410 (the
// resourceVersion is too old) re-lists. Failures reconnect with jittered exponential backoff
// and keep the last good set. The bearer token is re-read from its file every minute and on
// 401 (projected service account tokens rotate). HTTPS verifies the API server's certificate
// against the CA file; http:// is accepted for tests and local proxies (kubectl proxy).
// Starts its thread in Start(), stops it in the destructor. Thread-safe.
#ifndef INFERD_BALANCER_K8S_SOURCE_H_
#define INFERD_BALANCER_K8S_SOURCE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "balancer/endpoint.h"
#include "balancer/k8s_slices.h"

namespace inferd::balancer {

struct KubernetesOptions {
  std::string namespace_name;
  std::string service;
  SlicePorts ports;
  // "https://HOST:PORT" or "http://HOST:PORT".
  std::string api_server;
  std::string token_file;  // empty: no Authorization header
  std::string ca_file;     // for https
  // Each watch asks the server to end it after this long (timeoutSeconds); a connection quiet
  // for this plus 30 s is taken as dead.
  absl::Duration watch_timeout = absl::Minutes(5);
  absl::Duration token_reread = absl::Minutes(1);
  absl::Duration backoff_initial = absl::Milliseconds(250);
  absl::Duration backoff_max = absl::Seconds(30);
};

// Where the service account's files are mounted in a pod.
inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// Options from --k8s_service ("NAMESPACE/NAME", or "NAME" with the namespace read from
// `service_account_dir`/namespace) and the overrides (empty: in-cluster defaults from
// KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT and `service_account_dir`).
absl::StatusOr<KubernetesOptions> MakeKubernetesOptions(absl::string_view service,
                                                        absl::string_view api_server,
                                                        absl::string_view token_file,
                                                        absl::string_view ca_file,
                                                        absl::string_view service_account_dir);

class KubernetesSource : public EndpointSource {
 public:
  explicit KubernetesSource(KubernetesOptions options);
  ~KubernetesSource() override;

  void Start(std::function<void(EndpointList)> on_change) override;

  // Watches (re)started and lists made, for metrics.
  int64_t watch_restarts() const { return watch_restarts_.load(); }
  int64_t lists() const { return lists_.load(); }

  class Client;

 private:
  void Run();

  const KubernetesOptions options_;
  std::function<void(EndpointList)> on_change_;
  std::unique_ptr<Client> client_;
  std::atomic<int64_t> watch_restarts_{0};
  std::atomic<int64_t> lists_{0};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_K8S_SOURCE_H_
