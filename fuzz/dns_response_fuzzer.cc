// Fuzz target: a DNS response, as inferd-gateway's DNS discovery reads one from its resolver.
//
// The first two bytes pick the question (A or AAAA, and one of two names); the rest is the
// packet. Properties: no crash or sanitizer report; errors are INVALID_ARGUMENT or UNAVAILABLE;
// every address returned is non-empty text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "balancer/dns_message.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  inferd::balancer::DnsQuestion question;
  question.type = (data[0] & 1) ? inferd::balancer::DnsType::kAaaa : inferd::balancer::DnsType::kA;
  question.name = (data[1] & 1) ? "inferd.default.svc.cluster.local." : "a.b";
  const absl::Span<const uint8_t> packet(data + 2, size - 2);
  // The packet's id is taken as the question's, so that the fuzzer need not guess it.
  if (packet.size() >= 2) question.id = static_cast<uint16_t>(packet[0] << 8 | packet[1]);
  absl::StatusOr<std::vector<std::string>> addresses =
      inferd::balancer::ParseDnsResponse(packet, question);
  if (!addresses.ok()) {
    FUZZ_CHECK(addresses.status().code() == absl::StatusCode::kInvalidArgument ||
               addresses.status().code() == absl::StatusCode::kUnavailable);
    return 0;
  }
  for (const std::string& address : *addresses) FUZZ_CHECK(!address.empty());
  // A query for the same question always builds.
  FUZZ_CHECK(inferd::balancer::BuildDnsQuery(question).ok());
  return 0;
}
