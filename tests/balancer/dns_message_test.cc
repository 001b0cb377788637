#include "balancer/dns_message.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace inferd::balancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint16_t kId = 0x4a2f;
constexpr uint16_t kResponse = 0x8180;  // QR, RD, RA, NOERROR

// Hand-built DNS packets.
class Packet {
 public:
  Packet& U8(uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  Packet& U16(uint16_t v) { return U8(v >> 8).U8(v & 0xff); }
  Packet& U32(uint32_t v) { return U16(v >> 16).U16(v & 0xffff); }
  // Labels of `name`, then the root label unless `pointer` is given (then a pointer to it).
  Packet& Name(const std::string& name, int pointer = -1) {
    if (!name.empty()) {
      for (absl::string_view label : absl::StrSplit(name, '.')) {
        U8(label.size());
        bytes_.insert(bytes_.end(), label.begin(), label.end());
      }
    }
    return pointer < 0 ? U8(0) : Pointer(pointer);
  }
  Packet& Pointer(int offset) { return U16(0xC000 | offset); }
  Packet& Header(uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns = 0, uint16_t ar = 0,
                 uint16_t id = kId) {
    return U16(id).U16(flags).U16(qd).U16(an).U16(ns).U16(ar);
  }
  Packet& Question(const std::string& name, DnsType type) {
    return Name(name).U16(static_cast<uint16_t>(type)).U16(1);
  }
  // Type, class IN, TTL and rdlength of a record whose owner was just written.
  Packet& RecordTail(uint16_t type, uint16_t rdlength) {
    return U16(type).U16(1).U32(30).U16(rdlength);
  }
  Packet& A(const std::string& ip) {
    uint8_t b[4];
    inet_pton(AF_INET, ip.c_str(), b);
    RecordTail(1, 4);
    bytes_.insert(bytes_.end(), b, b + 4);
    return *this;
  }
  Packet& Aaaa(const std::string& ip) {
    uint8_t b[16];
    inet_pton(AF_INET6, ip.c_str(), b);
    RecordTail(28, 16);
    bytes_.insert(bytes_.end(), b, b + 16);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

DnsQuestion Question(const std::string& name, DnsType type) { return {kId, name, type}; }

// svc.test: CNAME -> a.svc.test (compressed), a.svc.test: two A records, plus an AAAA in the
// additional section, an NS record in the authority section and an OPT record.
std::vector<uint8_t> RichResponse() {
  Packet p;
  p.Header(kResponse, 1, 3, 1, 2).Question("svc.test", DnsType::kA);  // svc.test at 12
  p.Pointer(12).RecordTail(5, 4);
  const int target = p.size();
  p.Name("a", 12);  // the CNAME's target, a.svc.test
  p.Name("a", 12).A("10.0.0.2");
  p.Pointer(target).A("10.0.0.1");
  p.Pointer(16).RecordTail(2, 5).Name("ns", 16);  // test NS ns.test
  p.Name("ns", 16).Aaaa("fd00::53");
  p.U8(0).U16(41).U16(1232).U32(0).U16(0);  // OPT
  return p.bytes();
}

TEST(DnsMessageTest, BuildsQuery) {
  absl::StatusOr<std::vector<uint8_t>> q = BuildDnsQuery({0xbeef, "svc.NS.test.", DnsType::kAaaa});
  ASSERT_TRUE(q.ok()) << q.status();
  // clang-format off
  const std::vector<uint8_t> expected = {
      0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,                  // header, RD, ARCOUNT 1
      3, 's', 'v', 'c', 2, 'N', 'S', 4, 't', 'e', 's', 't', 0, 0, 28, 0, 1,  // question
      0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};                          // OPT, 1232 bytes
  // clang-format on
  EXPECT_EQ(*q, expected);
}

TEST(DnsMessageTest, RejectsBadNames) {
  for (const std::string& name :
       {std::string(""), std::string("."), std::string("a..b"), std::string(".a"),
        std::string("a b"), std::string("a/b"), std::string(64, 'x') + ".test",
        std::string(254, 'x'), std::string("[::1]")}) {
    absl::StatusOr<std::vector<uint8_t>> q = BuildDnsQuery({1, name, DnsType::kA});
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_TRUE(ValidateDnsName(std::string(63, 'x') + ".test").ok());
  EXPECT_TRUE(ValidateDnsName("_grpc._tcp.svc-1.ns.svc.cluster.local").ok());
}

TEST(DnsMessageTest, ParsesA) {
  Packet p;
  p.Header(kResponse, 1, 2).Question("svc.test", DnsType::kA);
  p.Pointer(12).A("10.0.0.7").Pointer(12).A("192.168.1.200");
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre("10.0.0.7", "192.168.1.200"));
}

TEST(DnsMessageTest, ParsesAaaaInCanonicalForm) {
  Packet p;
  p.Header(kResponse, 1, 2).Question("svc.test", DnsType::kAaaa);
  p.Pointer(12).Aaaa("2001:0db8:0000:0000:0008:0800:200c:417a").Name("svc.test").Aaaa("::1");
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test.", DnsType::kAaaa));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre("2001:db8::8:800:200c:417a", "::1"));
}

TEST(DnsMessageTest, FollowsCnameChainAndSkipsOtherRecords) {
  auto r = ParseDnsResponse(RichResponse(), Question("svc.test", DnsType::kA));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre("10.0.0.2", "10.0.0.1"));
}

TEST(DnsMessageTest, IgnoresRecordsOfUnrelatedNamesAndTypes) {
  Packet p;
  p.Header(kResponse, 1, 5).Question("svc.test", DnsType::kA);
  p.Pointer(12).RecordTail(5, 6).Name("b.c", 16);    // svc.test CNAME b.c.test
  p.Name("b.c", 16).RecordTail(5, 4).Name("d", 16);  // b.c.test CNAME d.test
  p.Name("D.TEST").A("10.0.0.3");                    // case does not matter
  p.Name("other.test").A("10.9.9.9");                // not on the chain
  p.Pointer(12).Aaaa("fd00::1");                     // not the type asked
  auto r = ParseDnsResponse(p.bytes(), Question("SVC.test", DnsType::kA));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre("10.0.0.3"));
}

TEST(DnsMessageTest, CnameLoopEnds) {
  Packet p;
  p.Header(kResponse, 1, 3).Question("svc.test", DnsType::kA);
  p.Pointer(12).RecordTail(5, 4).Name("a", 12);  // svc.test -> a.svc.test
  p.Name("a", 12).RecordTail(5, 2).Pointer(12);  // a.svc.test -> svc.test
  p.Pointer(12).A("10.0.0.4");
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre("10.0.0.4"));
}

TEST(DnsMessageTest, NxDomainAndNoDataAreEmpty) {
  Packet nx;
  nx.Header(0x8183, 1, 0, 1).Question("gone.test", DnsType::kA);
  nx.Pointer(17).RecordTail(6, 2).Pointer(17);  // authority: a (cut short) SOA, not parsed
  auto r = ParseDnsResponse(nx.bytes(), Question("gone.test", DnsType::kA));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, IsEmpty());

  Packet nodata;
  nodata.Header(kResponse, 1, 0).Question("svc.test", DnsType::kAaaa);
  r = ParseDnsResponse(nodata.bytes(), Question("svc.test", DnsType::kAaaa));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, IsEmpty());
}

TEST(DnsMessageTest, ServerErrorsAreUnavailable) {
  for (uint16_t rcode : {1, 2, 4, 5, 9}) {
    Packet p;
    p.Header(0x8180 | rcode, 1, 0).Question("svc.test", DnsType::kA);
    auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << rcode;
  }
  Packet servfail;
  servfail.Header(0x8182, 0, 0);  // no question echoed: still a clear SERVFAIL
  auto r = ParseDnsResponse(servfail.bytes(), Question("svc.test", DnsType::kA));
  EXPECT_THAT(r.status().message(), HasSubstr("SERVFAIL"));

  Packet badvers;  // extended RCODE 16 in the OPT record
  badvers.Header(kResponse, 1, 0, 0, 1).Question("svc.test", DnsType::kA);
  badvers.U8(0).U16(41).U16(1232).U32(0x01000000).U16(0);
  r = ParseDnsResponse(badvers.bytes(), Question("svc.test", DnsType::kA));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST(DnsMessageTest, TruncatedAnswerIsUnavailable) {
  Packet p;
  p.Header(0x8380, 1, 1).Question("svc.test", DnsType::kA).Pointer(12).A("10.0.0.1");
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("TC"));
}

TEST(DnsMessageTest, RejectsAnswersToOtherQuestions) {
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  auto code = [&](Packet p) { return ParseDnsResponse(p.bytes(), q).status().code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(Packet().Header(kResponse, 1, 0, 0, 0, kId + 1).Question("svc.test", DnsType::kA)),
            kInvalid);  // id
  EXPECT_EQ(code(Packet().Header(0x0100, 1, 0).Question("svc.test", DnsType::kA)), kInvalid);
  EXPECT_EQ(code(Packet().Header(0x8980, 1, 0).Question("svc.test", DnsType::kA)), kInvalid);
  EXPECT_EQ(code(Packet().Header(kResponse, 0, 0)), kInvalid);
  EXPECT_EQ(code(Packet()
                     .Header(kResponse, 2, 0)
                     .Question("svc.test", DnsType::kA)
                     .Question("svc.test", DnsType::kA)),
            kInvalid);
  EXPECT_EQ(code(Packet().Header(kResponse, 1, 0).Question("other.test", DnsType::kA)), kInvalid);
  EXPECT_EQ(code(Packet().Header(kResponse, 1, 0).Question("svc.test", DnsType::kAaaa)), kInvalid);
}

TEST(DnsMessageTest, RejectsPointerLoopsAndOutOfBoundsPointers) {
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  auto parse = [&](Packet p) { return ParseDnsResponse(p.bytes(), q).status(); };
  // The question name points at itself.
  absl::Status s = parse(Packet().Header(kResponse, 1, 0).Pointer(12).U16(1).U16(1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("pointer"));
  // Two pointers pointing at each other: 26 -> 28 -> 26.
  Packet two;
  two.Header(kResponse, 1, 1)
      .Question("svc.test", DnsType::kA)
      .Pointer(28)
      .Pointer(26)
      .A("10.0.0.1");
  EXPECT_EQ(parse(two).code(), absl::StatusCode::kInvalidArgument);
  // A label, then a pointer back to that label: a.a.a... forever.
  Packet self;
  self.Header(kResponse, 1, 1).Question("svc.test", DnsType::kA).Name("a", 26).A("10.0.0.1");
  EXPECT_EQ(parse(self).code(), absl::StatusCode::kInvalidArgument);
  // Pointers past the end, and into the middle of themselves.
  Packet past;
  past.Header(kResponse, 1, 1).Question("svc.test", DnsType::kA).Pointer(0x3fff).A("10.0.0.1");
  EXPECT_EQ(parse(past).code(), absl::StatusCode::kInvalidArgument);
  // A pointer whose second byte is missing.
  Packet cut;
  cut.Header(kResponse, 1, 1).Question("svc.test", DnsType::kA).U8(0xC0);
  EXPECT_EQ(parse(cut).code(), absl::StatusCode::kInvalidArgument);
  // Reserved label types 0x40 and 0x80.
  for (uint8_t type : {0x40, 0x80}) {
    Packet reserved;
    reserved.Header(kResponse, 1, 1).Question("svc.test", DnsType::kA).U8(type).U8(0).A("1.2.3.4");
    EXPECT_EQ(parse(reserved).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(DnsMessageTest, RejectsNamesOver255Octets) {
  Packet p;
  const std::string label(63, 'x');
  p.Header(kResponse, 1, 2).Question("svc.test", DnsType::kA);
  const int first = p.size();
  p.Name(label + "." + label, 12);  // 128 octets, then svc.test (10)
  p.RecordTail(1, 4).U32(1);
  p.Name(label + "." + label, first).A("10.0.0.1");  // 128 + 138 > 255
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("255"));
}

TEST(DnsMessageTest, RejectsBadRdlength) {
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  auto parse = [&](Packet p) { return ParseDnsResponse(p.bytes(), q).status(); };
  Packet base;
  base.Header(kResponse, 1, 1).Question("svc.test", DnsType::kA).Pointer(12);
  EXPECT_EQ(parse(Packet(base).RecordTail(1, 5).U32(0x0a000001).U8(0)).code(),
            absl::StatusCode::kInvalidArgument);  // A with 5 bytes
  EXPECT_EQ(parse(Packet(base).RecordTail(1, 3).U16(0).U8(0)).code(),
            absl::StatusCode::kInvalidArgument);  // A with 3 bytes
  EXPECT_EQ(parse(Packet(base).RecordTail(28, 4).U32(0x0a000001)).code(),
            absl::StatusCode::kInvalidArgument);  // AAAA with 4 bytes
  absl::Status past = parse(Packet(base).RecordTail(1, 200).U32(0x0a000001));
  EXPECT_EQ(past.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past.message(), HasSubstr("rdlength"));
  // A CNAME whose target is shorter or longer than its rdlength.
  EXPECT_EQ(parse(Packet(base).RecordTail(5, 5).Name("a", 12).U8(0)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parse(Packet(base).RecordTail(5, 3).Name("a", 12)).code(),
            absl::StatusCode::kInvalidArgument);
  // An A record of a class other than IN is skipped, whatever its length.
  Packet chaos(base);
  chaos.U16(1).U16(3).U32(0).U16(1).U8(0);
  auto r = ParseDnsResponse(chaos.bytes(), q);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, IsEmpty());
}

TEST(DnsMessageTest, RejectsCountsLargerThanThePacket) {
  Packet p;
  p.Header(kResponse, 1, 1000).Question("svc.test", DnsType::kA).Pointer(12).A("10.0.0.1");
  auto r = ParseDnsResponse(p.bytes(), Question("svc.test", DnsType::kA));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("counts"));
  Packet q;  // a count one too large: runs out while reading the second record
  q.Header(kResponse, 1, 2, 0, 0).Question("svc.test", DnsType::kA).Pointer(12).A("10.0.0.1");
  q.Name("abcdefgh");
  EXPECT_EQ(ParseDnsResponse(q.bytes(), Question("svc.test", DnsType::kA)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DnsMessageTest, EveryTruncationIsAnError) {
  const std::vector<uint8_t> full = RichResponse();
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  ASSERT_TRUE(ParseDnsResponse(full, q).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    // A copy of exactly n bytes, so reading past it is caught by sanitizers.
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    auto r = ParseDnsResponse(prefix, q);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << n << " bytes";
  }
}

bool IsAddress(const std::string& text) {
  uint8_t b[16];
  return inet_pton(AF_INET, text.c_str(), b) == 1 || inet_pton(AF_INET6, text.c_str(), b) == 1;
}

TEST(DnsMessageTest, RandomMutationsNeverCrash) {
  std::mt19937 rng(20261122);
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  const std::vector<uint8_t> full = RichResponse();
  int ok = 0;
  int errors = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> p = full;
    const int mutations = 1 + rng() % 4;
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 4) {
        case 0:  // a random byte (not the id: then every case fails early)
          p[2 + rng() % (p.size() - 2)] = rng();
          break;
        case 1:  // one bit
          p[2 + rng() % (p.size() - 2)] ^= 1 << (rng() % 8);
          break;
        case 2:  // a compression pointer somewhere
          if (p.size() > 14) {
            const size_t at = 12 + rng() % (p.size() - 13);
            p[at] = 0xC0 | (rng() % 2);
            p[at + 1] = rng();
          }
          break;
        default:  // cut or grow
          if (rng() % 2) {
            p.resize(rng() % (p.size() + 1));
          } else {
            p.push_back(rng());
          }
      }
      if (p.size() < 14) p = full;
    }
    const std::vector<uint8_t> exact(p);  // no slack capacity past the end
    auto r = ParseDnsResponse(exact, q);
    if (r.ok()) {
      ++ok;
      for (const std::string& a : *r) EXPECT_TRUE(IsAddress(a)) << a;
    } else {
      ++errors;
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  // Both outcomes occur: the mutations reach past the header checks.
  EXPECT_GT(ok, 100);
  EXPECT_GT(errors, 100);
}

TEST(DnsMessageTest, RandomGarbageAfterAValidHeaderNeverCrashes) {
  std::mt19937 rng(7);
  const DnsQuestion q = Question("svc.test", DnsType::kA);
  for (int i = 0; i < 3000; ++i) {
    Packet p;
    p.Header(kResponse, 1, rng() % 4, rng() % 3, rng() % 3).Question("svc.test", DnsType::kA);
    const int extra = rng() % 80;
    for (int b = 0; b < extra; ++b) p.U8(rng() % 3 == 0 ? 0xC0 | (rng() % 4) : rng() % 64);
    const std::vector<uint8_t> exact(p.bytes());
    auto r = ParseDnsResponse(exact, q);
    if (r.ok()) {
      for (const std::string& a : *r) EXPECT_TRUE(IsAddress(a)) << a;
    }
  }
}

}  // namespace
}  // namespace inferd::balancer
