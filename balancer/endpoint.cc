#include "balancer/endpoint.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace inferd::balancer {
namespace {

absl::StatusOr<int> ParsePort(absl::string_view text, absl::string_view entry) {
  int port = 0;
  if (!absl::SimpleAtoi(text, &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("backend \"", entry, "\": port \"", text,
                                                   "\" is not a number in [1, 65535]"));
  }
  return port;
}

}  // namespace

std::string Endpoint::Key() const { return absl::StrCat(host, ":", grpc_port, ":", http_port); }

std::string Endpoint::GrpcTarget() const {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", grpc_port)
                                             : absl::StrCat(host, ":", grpc_port);
}

const char* EndpointStateName(EndpointState state) {
  return state == EndpointState::kReady ? "ready" : "draining";
}

absl::StatusOr<EndpointList> ParseStaticBackends(absl::string_view spec) {
  EndpointList out;
  std::set<std::string> seen;
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    Endpoint e;
    absl::string_view ports;
    if (absl::ConsumePrefix(&entry, "[")) {
      const size_t close = entry.find(']');
      if (close == absl::string_view::npos || close == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend \"[", entry, "\": unterminated IPv6 address"));
      }
      e.host = std::string(entry.substr(0, close));
      ports = entry.substr(close + 1);
      if (!absl::ConsumePrefix(&ports, ":")) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend \"[", entry, "\": expected [HOST]:GRPC_PORT:HTTP_PORT"));
      }
    } else {
      const size_t colon = entry.find(':');
      if (colon == absl::string_view::npos || colon == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("backend \"", entry, "\": expected HOST:GRPC_PORT:HTTP_PORT"));
      }
      e.host = std::string(entry.substr(0, colon));
      ports = entry.substr(colon + 1);
    }
    std::vector<absl::string_view> parts = absl::StrSplit(ports, ':');
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend \"", entry, "\": expected HOST:GRPC_PORT:HTTP_PORT"));
    }
    auto grpc_port = ParsePort(parts[0], entry);
    if (!grpc_port.ok()) return grpc_port.status();
    auto http_port = ParsePort(parts[1], entry);
    if (!http_port.ok()) return http_port.status();
    e.grpc_port = *grpc_port;
    e.http_port = *http_port;
    if (seen.insert(e.Key()).second) out.push_back(std::move(e));
  }
  if (out.empty()) return absl::InvalidArgumentError("no backends given");
  return out;
}

}  // namespace inferd::balancer
