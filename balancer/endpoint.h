// Replica endpoints as discovery reports them: where a replica's gRPC and HTTP ports are, and
// whether it takes new requests. Every EndpointSource (Kubernetes, DNS, static) delivers the
// full current list on each change.
#ifndef INFERD_BALANCER_ENDPOINT_H_
#define INFERD_BALANCER_ENDPOINT_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd::balancer {

enum class EndpointState {
  kReady,     // takes new requests
  kDraining,  // terminating but still serving: new requests only when nothing else is left
};

struct Endpoint {
  std::string host;  // IPv4, IPv6 (without brackets) or a name
  int grpc_port = 0;
  int http_port = 0;
  EndpointState state = EndpointState::kReady;

  // Identity across updates: host and both ports (not the state).
  std::string Key() const;
  // "host:port" for gRPC channels ("[v6]:port" for IPv6).
  std::string GrpcTarget() const;
};

using EndpointList = std::vector<Endpoint>;

const char* EndpointStateName(EndpointState state);

// "HOST:GRPC_PORT:HTTP_PORT[,...]" (--static_backends); IPv6 hosts in brackets
// ("[::1]:8500:8501"). Duplicates are merged. An empty list is an error.
absl::StatusOr<EndpointList> ParseStaticBackends(absl::string_view spec);

// Where replicas come from. Start() calls `on_change` with the full current list, then again
// after every change, from a thread of the source's own (never concurrently). The source stops
// in its destructor; no call is made after it returns.
class EndpointSource {
 public:
  virtual ~EndpointSource() = default;
  virtual void Start(std::function<void(EndpointList)> on_change) = 0;
};

// A fixed list, delivered once from Start().
class StaticSource : public EndpointSource {
 public:
  explicit StaticSource(EndpointList endpoints) : endpoints_(std::move(endpoints)) {}
  void Start(std::function<void(EndpointList)> on_change) override { on_change(endpoints_); }

 private:
  const EndpointList endpoints_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_ENDPOINT_H_
