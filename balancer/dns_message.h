// DNS wire format (RFC 1035), just enough for a stub resolver that asks one server for the A or
// AAAA records of one name: build a query, parse the answer. Pure functions on byte buffers, no
// sockets; safe to call from any thread.
//
// The parser treats every packet as untrusted: it checks each length against the buffer before
// reading, accepts only backward compression pointers (so a name cannot loop) and names of at
// most 255 octets, and walks all four sections so that a packet whose counts promise more than
// it holds is rejected. Malformed packets give InvalidArgument; answers that are well formed but
// unusable (truncated, TC bit; a server error RCODE) give Unavailable.
#ifndef INFERD_BALANCER_DNS_MESSAGE_H_
#define INFERD_BALANCER_DNS_MESSAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace inferd::balancer {

// The record types a query may ask for.
enum class DnsType : uint16_t {
  kA = 1,
  kAaaa = 28,
};

// The UDP payload size the query advertises (the DNS Flag Day 2020 value: no IP fragmentation).
inline constexpr uint16_t kDnsUdpPayloadSize = 1232;

// What was asked; the answer must match it.
struct DnsQuestion {
  uint16_t id = 0;   // random per query (the caller draws it)
  std::string name;  // "svc.ns.svc.cluster.local", a trailing dot is allowed
  DnsType type = DnsType::kA;
};

// Checks that `name` is a DNS name a query can carry: labels of 1..63 octets made of letters,
// digits, '-' and '_', at most 253 characters in all (a trailing dot allowed). Error:
// InvalidArgument saying what is wrong.
absl::Status ValidateDnsName(absl::string_view name);

// A standard query (opcode QUERY, RD set, class IN) for `question`, with an EDNS(0) OPT record
// advertising kDnsUdpPayloadSize, so larger answers fit in one UDP datagram.
absl::StatusOr<std::vector<uint8_t>> BuildDnsQuery(const DnsQuestion& question);

// Parses `packet`, the answer to `question`, and returns the addresses of the question's type
// held by the queried name or by a name its CNAME chain leads to (at most 16 links), in answer
// order, as text: "10.0.0.1", "fd00::1" (RFC 5952 form). Other types (CNAME itself, SRV, OPT,
// ...) and records of other names are skipped.
//
// NXDOMAIN, and NOERROR without matching records, give an empty list. Errors: InvalidArgument
// for a malformed packet or one that does not answer `question` (id, QR bit, opcode, question
// section); Unavailable for the TC bit (the answer did not fit: no TCP fallback here) and for
// any RCODE other than NOERROR and NXDOMAIN (SERVFAIL, REFUSED, ...).
absl::StatusOr<std::vector<std::string>> ParseDnsResponse(absl::Span<const uint8_t> packet,
                                                          const DnsQuestion& question);

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_DNS_MESSAGE_H_
