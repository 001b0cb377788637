#include "balancer/dns_message.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace inferd::balancer {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameOctets = 255;  // wire form, length octets and root label included
constexpr size_t kMaxNameText = 253;    // text form without the trailing dot
constexpr size_t kMaxLabel = 63;
constexpr size_t kMinRecordSize = 11;  // root name (1) + type, class, ttl, rdlength (10)
constexpr int kMaxCnameLinks = 16;

constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kRcodeNoError = 0;
constexpr uint16_t kRcodeNxDomain = 3;

constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kClassIn = 1;

uint16_t Get16(absl::Span<const uint8_t> p, size_t at) {
  return static_cast<uint16_t>((p[at] << 8) | p[at + 1]);
}

void Put16(std::vector<uint8_t>* out, uint16_t v) {
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v & 0xff));
}

const char* RcodeName(uint16_t rcode) {
  switch (rcode) {
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return "an error";
  }
}

// The query name in the form ReadName produces: lower case, no trailing dot.
std::string CanonicalName(absl::string_view name) {
  absl::ConsumeSuffix(&name, ".");
  return absl::AsciiStrToLower(name);
}

absl::Status Malformed(size_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed DNS response at byte ", offset, ": ", what));
}

// Reads the (possibly compressed) name at `*offset` into `*name` (lower case, dot separated, no
// trailing dot, octets other than letters, digits, '-' and '_' as \DDD) and moves `*offset`
// past it. Every compression pointer must point before the start of the segment that holds it,
// so targets strictly decrease and reading ends; the decoded name is capped at 255 octets.
absl::Status ReadName(absl::Span<const uint8_t> p, size_t* offset, std::string* name) {
  name->clear();
  size_t pos = *offset;
  size_t segment_start = pos;  // a pointer's target must lie before this
  size_t end = 0;              // where the name ends in the packet, once a pointer was taken
  size_t octets = 0;
  while (true) {
    if (pos >= p.size()) return Malformed(pos, "name runs past the end of the packet");
    const uint8_t len = p[pos];
    if ((len & 0xC0) == 0xC0) {
      if (pos + 1 >= p.size()) return Malformed(pos, "compression pointer cut off");
      const size_t target = (static_cast<size_t>(len & 0x3F) << 8) | p[pos + 1];
      if (target >= segment_start) {
        return Malformed(
            pos, absl::StrCat("compression pointer to byte ", target,
                              " does not point to an earlier name (loop or out of bounds)"));
      }
      if (end == 0) end = pos + 2;
      pos = segment_start = target;
      continue;
    }
    if ((len & 0xC0) != 0) {
      return Malformed(pos, absl::StrFormat("unsupported label type 0x%02x", len));
    }
    octets += 1 + len;
    if (octets > kMaxNameOctets) return Malformed(pos, "name longer than 255 octets");
    if (len == 0) break;
    if (pos + 1 + len > p.size()) return Malformed(pos, "label runs past the end of the packet");
    if (!name->empty()) name->push_back('.');
    for (size_t i = pos + 1; i <= pos + len; ++i) {
      const char c = static_cast<char>(p[i]);
      if (absl::ascii_isalnum(c) || c == '-' || c == '_') {
        name->push_back(absl::ascii_tolower(c));
      } else {
        absl::StrAppendFormat(name, "\\%03d", p[i]);
      }
    }
    pos += 1 + len;
  }
  *offset = end != 0 ? end : pos + 1;
  return absl::OkStatus();
}

struct Record {
  std::string owner;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t rdata = 0;  // offset of the rdata in the packet
  uint16_t rdlength = 0;
};

absl::Status ReadRecord(absl::Span<const uint8_t> p, size_t* offset, Record* r) {
  if (absl::Status s = ReadName(p, offset, &r->owner); !s.ok()) return s;
  size_t pos = *offset;
  if (pos + 10 > p.size()) return Malformed(pos, "record header runs past the end of the packet");
  r->type = Get16(p, pos);
  r->klass = Get16(p, pos + 2);
  r->ttl = (static_cast<uint32_t>(Get16(p, pos + 4)) << 16) | Get16(p, pos + 6);
  r->rdlength = Get16(p, pos + 8);
  r->rdata = pos + 10;
  if (r->rdata + r->rdlength > p.size()) {
    return Malformed(pos + 8, absl::StrCat("rdlength ", r->rdlength, " runs past the end of the ",
                                           p.size(), "-byte packet"));
  }
  *offset = r->rdata + r->rdlength;
  return absl::OkStatus();
}

std::string AddressText(absl::Span<const uint8_t> p, const Record& r) {
  char text[INET6_ADDRSTRLEN] = {};
  const int family = r.type == static_cast<uint16_t>(DnsType::kA) ? AF_INET : AF_INET6;
  inet_ntop(family, p.data() + r.rdata, text, sizeof(text));
  return text;
}

}  // namespace

absl::Status ValidateDnsName(absl::string_view name) {
  absl::string_view bare = name;
  absl::ConsumeSuffix(&bare, ".");
  if (bare.empty()) return absl::InvalidArgumentError("DNS name is empty");
  if (bare.size() > kMaxNameText) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS name \"", name, "\" is longer than ", kMaxNameText, " characters"));
  }
  for (absl::string_view label : absl::StrSplit(bare, '.')) {
    if (label.empty() || label.size() > kMaxLabel) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DNS name \"", name, "\": every label must have 1 to ", kMaxLabel, " characters"));
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-' && c != '_') {
        return absl::InvalidArgumentError(absl::StrCat("DNS name \"", name, "\": character '",
                                                       absl::string_view(&c, 1),
                                                       "' is not a letter, digit, '-' or '_'"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> BuildDnsQuery(const DnsQuestion& question) {
  if (absl::Status s = ValidateDnsName(question.name); !s.ok()) return s;
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + question.name.size() + 2 + 4 + 11);
  Put16(&out, question.id);
  Put16(&out, kFlagRd);
  Put16(&out, 1);  // QDCOUNT
  Put16(&out, 0);  // ANCOUNT
  Put16(&out, 0);  // NSCOUNT
  Put16(&out, 1);  // ARCOUNT: the OPT record
  absl::string_view bare = question.name;
  absl::ConsumeSuffix(&bare, ".");
  for (absl::string_view label : absl::StrSplit(bare, '.')) {
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
  }
  out.push_back(0);
  Put16(&out, static_cast<uint16_t>(question.type));
  Put16(&out, kClassIn);
  // OPT (RFC 6891): root owner, type 41, class = UDP payload size, TTL = extended RCODE,
  // version 0 and flags, no options.
  out.push_back(0);
  Put16(&out, kTypeOpt);
  Put16(&out, kDnsUdpPayloadSize);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, 0);
  return out;
}

absl::StatusOr<std::vector<std::string>> ParseDnsResponse(absl::Span<const uint8_t> p,
                                                          const DnsQuestion& question) {
  if (p.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS response of ", p.size(), " bytes is shorter than its 12-byte header"));
  }
  const uint16_t id = Get16(p, 0);
  const uint16_t flags = Get16(p, 2);
  if (id != question.id) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS response id ", id, " does not match query id ", question.id));
  }
  if ((flags & kFlagQr) == 0) {
    return absl::InvalidArgumentError("DNS packet is a query, not a response (QR bit clear)");
  }
  if (const int opcode = (flags >> 11) & 0xF; opcode != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS response has opcode ", opcode, ", expected 0 (QUERY)"));
  }
  if ((flags & kFlagTc) != 0) {
    return absl::UnavailableError(
        absl::StrCat("DNS answer for ", question.name, " was truncated (TC bit): more than ",
                     kDnsUdpPayloadSize, " bytes, and TCP fallback is not supported"));
  }
  const uint16_t rcode = flags & 0xF;
  if (rcode != kRcodeNoError && rcode != kRcodeNxDomain) {
    return absl::UnavailableError(absl::StrCat("DNS server answered ", RcodeName(rcode), " (RCODE ",
                                               rcode, ") for ", question.name));
  }
  const uint16_t qdcount = Get16(p, 4);
  const size_t ancount = Get16(p, 6);
  const size_t record_count = ancount + Get16(p, 8) + Get16(p, 10);
  if (qdcount != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS response has ", qdcount, " questions, expected 1"));
  }

  size_t offset = kHeaderSize;
  std::string qname;
  if (absl::Status s = ReadName(p, &offset, &qname); !s.ok()) return s;
  if (offset + 4 > p.size()) return Malformed(offset, "question runs past the end of the packet");
  const std::string expected_name = CanonicalName(question.name);
  if (qname != expected_name || Get16(p, offset) != static_cast<uint16_t>(question.type) ||
      Get16(p, offset + 2) != kClassIn) {
    return absl::InvalidArgumentError(
        absl::StrCat("DNS response answers another question (", qname, " type ", Get16(p, offset),
                     ") than ", expected_name, " type ", static_cast<int>(question.type)));
  }
  offset += 4;
  if (record_count * kMinRecordSize > p.size() - offset) {
    return Malformed(offset, absl::StrCat("record counts promise ", record_count,
                                          " records, more than the remaining ", p.size() - offset,
                                          " bytes can hold"));
  }

  std::vector<Record> answers;
  std::vector<std::pair<std::string, std::string>> cnames;  // owner -> target
  for (size_t i = 0; i < record_count; ++i) {
    Record r;
    if (absl::Status s = ReadRecord(p, &offset, &r); !s.ok()) return s;
    if (r.type == kTypeOpt) {
      // The extended RCODE lives in the upper 8 bits of the OPT "TTL".
      if (const uint32_t extended = r.ttl >> 24; extended != 0) {
        return absl::UnavailableError(absl::StrCat("DNS server answered extended RCODE ",
                                                   (extended << 4) | rcode, " for ",
                                                   question.name));
      }
      continue;
    }
    if (r.klass != kClassIn) continue;
    const bool is_a = r.type == static_cast<uint16_t>(DnsType::kA);
    const bool is_aaaa = r.type == static_cast<uint16_t>(DnsType::kAaaa);
    if ((is_a && r.rdlength != 4) || (is_aaaa && r.rdlength != 16)) {
      return Malformed(r.rdata - 2, absl::StrCat(is_a ? "A" : "AAAA", " record with rdlength ",
                                                 r.rdlength, ", expected ", is_a ? 4 : 16));
    }
    if (i >= ancount) continue;  // authority and additional sections: checked, not used
    if (r.type == static_cast<uint16_t>(question.type)) {
      answers.push_back(std::move(r));
    } else if (r.type == kTypeCname) {
      size_t target_end = r.rdata;
      std::string target;
      if (absl::Status s = ReadName(p.subspan(0, r.rdata + r.rdlength), &target_end, &target);
          !s.ok()) {
        return s;
      }
      if (target_end != r.rdata + r.rdlength) {
        return Malformed(r.rdata, "CNAME target does not fill its rdata");
      }
      cnames.emplace_back(std::move(r.owner), std::move(target));
    }
  }
  if (rcode == kRcodeNxDomain) return std::vector<std::string>();

  // The names that hold the answer: the queried one and those its CNAME chain leads to.
  std::set<std::string> names = {expected_name};
  std::string current = expected_name;
  for (int link = 0; link < kMaxCnameLinks; ++link) {
    auto it = std::find_if(cnames.begin(), cnames.end(),
                           [&](const auto& c) { return c.first == current; });
    if (it == cnames.end() || !names.insert(it->second).second) break;
    current = it->second;
  }
  std::vector<std::string> out;
  for (const Record& r : answers) {
    if (names.count(r.owner)) out.push_back(AddressText(p, r));
  }
  return out;
}

}  // namespace inferd::balancer
