// Kubernetes discovery.k8s.io/v1 EndpointSlices, as the gateway reads them: parsing of list
// responses and watch events (untrusted JSON from the API server: every malformed part is an
// error naming it, never a crash), and the merge of a Service's slices into one endpoint list.
//
// Per endpoint (EndpointConditions, GA since Kubernetes 1.26): `ready` -> routable; not ready
// but `serving` and `terminating` -> draining; anything else is left out. A missing `ready` or
// `serving` means true, a missing `terminating` false, as the API documents. The gRPC and HTTP
// ports are the slice's ports with the configured names; a slice without both is skipped with a
// warning. An address in two slices (during slice rebalancing) appears once, ready winning.
#ifndef INFERD_BALANCER_K8S_SLICES_H_
#define INFERD_BALANCER_K8S_SLICES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "balancer/endpoint.h"

namespace inferd::balancer {

struct SliceEndpoints {
  std::string name;             // metadata.name
  std::string resource_version;  // metadata.resourceVersion
  EndpointList endpoints;       // already mapped to our ports and states
  std::string skipped;          // why the slice contributes nothing (missing ports), or empty
};

struct SlicePorts {
  std::string grpc = "grpc";
  std::string http = "http";
};

// One EndpointSlice object.
absl::StatusOr<SliceEndpoints> ParseEndpointSlice(absl::string_view json, const SlicePorts& ports);

struct SliceList {
  std::string resource_version;  // the list's metadata.resourceVersion (where to watch from)
  std::vector<SliceEndpoints> slices;
};

// An EndpointSliceList (the answer to a list request).
absl::StatusOr<SliceList> ParseEndpointSliceList(absl::string_view json, const SlicePorts& ports);

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kError;
  SliceEndpoints slice;  // kAdded, kModified, kDeleted; for kBookmark only resource_version
  int error_code = 0;    // kError: the Status object's code (410: the resourceVersion is gone)
  std::string error_message;
};

// One line of a watch stream.
absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view json, const SlicePorts& ports);

// Every slice's endpoints, merged and de-duplicated, sorted by key.
EndpointList MergeSlices(const std::map<std::string, SliceEndpoints>& slices);

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_K8S_SLICES_H_
