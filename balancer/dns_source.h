// Discovery by DNS: the replicas are the A and AAAA records of one name, typically a headless
// Kubernetes Service ("inferd.default.svc.cluster.local", spec.clusterIP: None), which resolves
// to the addresses of its ready pods. Every endpoint gets the same gRPC and HTTP ports (the pod
// ports) and state kReady: DNS carries neither ports nor a terminating signal.
#ifndef INFERD_BALANCER_DNS_SOURCE_H_
#define INFERD_BALANCER_DNS_SOURCE_H_

#include <sys/socket.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "balancer/dns_message.h"
#include "balancer/endpoint.h"

namespace inferd::balancer {

// What --dns_name=HOST:GRPC_PORT:HTTP_PORT names.
struct DnsTarget {
  std::string name;  // a DNS name, not an IP address
  int grpc_port = 0;
  int http_port = 0;
};

// Parses "HOST:GRPC_PORT:HTTP_PORT" ("inferd.default.svc.cluster.local:8500:8501"). Error:
// InvalidArgument saying which part is wrong.
absl::StatusOr<DnsTarget> ParseDnsName(absl::string_view spec);

struct DnsSourceOptions {
  // The name to resolve. Use the fully qualified name: resolv.conf's search list is not applied.
  std::string name;
  // The ports every resolved address gets, in [1, 65535].
  int grpc_port = 0;
  int http_port = 0;
  // The DNS server: "IP:PORT", "[IPv6]:PORT", or an address alone (port 53). Empty: the first
  // `nameserver` line of `resolv_conf` with an IPv4 or IPv6 address, port 53.
  std::string server;
  // Read only when `server` is empty.
  std::string resolv_conf = "/etc/resolv.conf";
  // Time between the starts of two resolutions (CoreDNS's default TTL is 5 s).
  absl::Duration refresh = absl::Seconds(5);
  // How long to wait for the answers to one attempt before sending again.
  absl::Duration timeout = absl::Seconds(1);
  // Attempts per resolution (the first one and the retries), at least 1.
  int attempts = 3;
  // Optional: called on the source's thread after every resolution, after any on_change call
  // it caused, with its outcome. For metrics and tests.
  std::function<void(const absl::Status&)> on_resolve;
};

// An EndpointSource that resolves `name` over UDP every `refresh`. Each resolution asks for A
// and AAAA at once, resending the unanswered queries up to `attempts` times, each attempt
// waiting `timeout`. The list it delivers is the union of both answers, de-duplicated and
// sorted (IPv4 before IPv6, numerically), and it is delivered only when it differs from the
// last one delivered:
//   - The first resolution is always delivered, whatever its outcome; if it failed, as an
//     empty list (the gateway then has no replicas until a resolution succeeds).
//   - A later failure (no answer, SERVFAIL/REFUSED, a malformed or truncated answer) keeps the
//     last list and logs a warning (once per distinct error, and once on recovery).
//   - An answer without addresses (NXDOMAIN, or a name with no A/AAAA records) is delivered as
//     an empty list: the server says there are no replicas.
// Start() may be called once; the thread it starts makes every on_change call. The destructor
// stops that thread promptly (it interrupts a wait for answers) and joins it; no call is made
// after it returns. Not copyable; Start() and the destructor must not race.
class DnsSource : public EndpointSource {
 public:
  // Checks the options and finds the server (reading `resolv_conf` if needed). Errors:
  // InvalidArgument for bad options, NotFound/FailedPrecondition when no server can be found.
  static absl::StatusOr<std::unique_ptr<DnsSource>> Create(DnsSourceOptions options);
  ~DnsSource() override;
  DnsSource(const DnsSource&) = delete;
  DnsSource& operator=(const DnsSource&) = delete;

  void Start(std::function<void(EndpointList)> on_change) override;

  // The server asked, as "IP:PORT" ("[IPv6]:PORT").
  const std::string& server() const { return server_text_; }

 private:
  DnsSource(DnsSourceOptions options, const sockaddr_storage& server, socklen_t server_len,
            std::string server_text, int wake_fd);
  void Loop(std::function<void(EndpointList)> on_change);
  // One resolution: A and AAAA, with retries. Cancelled when the destructor interrupts it.
  absl::StatusOr<std::vector<std::string>> Resolve();

  const DnsSourceOptions options_;
  const sockaddr_storage server_;
  const socklen_t server_len_;
  const std::string server_text_;
  const int wake_fd_;  // an eventfd the destructor writes to, to end a wait for answers

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_DNS_SOURCE_H_
