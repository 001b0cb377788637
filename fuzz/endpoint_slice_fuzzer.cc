// Fuzz target: a Kubernetes API answer, as inferd-gateway's EndpointSlice discovery reads it.
//
// The bytes are parsed as one EndpointSlice, as an EndpointSliceList (a list answer) and as one
// line of a watch stream. Properties: no crash or sanitizer report; errors are INVALID_ARGUMENT;
// merging what parsed gives endpoints with a host and both ports in [1, 65535].
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "balancer/k8s_slices.h"
#include "fuzz/fuzz_check.h"

namespace {

void CheckError(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_CHECK(!status.message().empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  const inferd::balancer::SlicePorts ports;
  std::map<std::string, inferd::balancer::SliceEndpoints> slices;

  absl::StatusOr<inferd::balancer::SliceEndpoints> slice =
      inferd::balancer::ParseEndpointSlice(json, ports);
  if (slice.ok()) {
    slices["slice"] = *slice;
  } else {
    CheckError(slice.status());
  }
  absl::StatusOr<inferd::balancer::SliceList> list =
      inferd::balancer::ParseEndpointSliceList(json, ports);
  if (list.ok()) {
    for (size_t i = 0; i < list->slices.size(); ++i) {
      slices["list-" + std::to_string(i)] = list->slices[i];
    }
  } else {
    CheckError(list.status());
  }
  absl::StatusOr<inferd::balancer::WatchEvent> event =
      inferd::balancer::ParseWatchEvent(json, ports);
  if (event.ok()) {
    slices["event"] = event->slice;
  } else {
    CheckError(event.status());
  }
  for (const auto& endpoint : inferd::balancer::MergeSlices(slices)) {
    FUZZ_CHECK(!endpoint.host.empty());
    FUZZ_CHECK(endpoint.grpc_port >= 1 && endpoint.grpc_port <= 65535);
    FUZZ_CHECK(endpoint.http_port >= 1 && endpoint.http_port <= 65535);
  }
  return 0;
}
