// Version-aware routing: what a request asks for (a model, and maybe an explicit version or
// label) and which replicas have it. During a rolling model update replicas publish a new
// version at different times; a request for that version goes only to replicas known to have
// it AVAILABLE (learned by VersionTracker), and a replica answering NOT_FOUND for it is not the
// end of the request (GrpcProxy tries another).
//
// The model spec is read from a gRPC request's bytes without decoding the rest: it is field 1
// of PredictRequest, ClassificationRequest, RegressionRequest, GetModelMetadataRequest and
// GetModelStatusRequest, and serializers write it first. Malformed bytes give no requirement
// (the replica will say what is wrong).
#ifndef INFERD_BALANCER_MODEL_ROUTING_H_
#define INFERD_BALANCER_MODEL_ROUTING_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace inferd::balancer {

struct ModelRequirement {
  std::string model;
  std::optional<int64_t> version;
  std::optional<std::string> label;
  // Whether only some replicas may serve it (an explicit version or label).
  bool specific() const { return version.has_value() || label.has_value(); }
};

// From the serialized request of a gRPC method that has a ModelSpec in field 1 (full method
// name, "/tensorflow.serving.PredictionService/Predict"); nullopt for other methods.
std::optional<ModelRequirement> RequirementFromGrpc(absl::string_view method,
                                                    absl::string_view request_bytes);
// The ModelSpec at field 1 of any serialized message, or of a prefix of one that holds it.
std::optional<ModelRequirement> RequirementFromBytes(absl::string_view bytes);
// From a REST target: /v1/models/NAME[/versions/N | /labels/L][:verb | /metadata].
std::optional<ModelRequirement> RequirementFromRestTarget(absl::string_view target);

// What one replica has AVAILABLE, as far as the last poll saw.
struct ModelAvailability {
  std::map<std::string, std::set<int64_t>> versions;
  std::set<std::pair<std::string, std::string>> labels;  // (model, label)
};

bool Satisfies(const ModelAvailability& have, const ModelRequirement& need);

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_MODEL_ROUTING_H_
