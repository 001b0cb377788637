#include "balancer/k8s_slices.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace inferd::balancer {
namespace {

// A slice as the API server writes it (trimmed to the fields the gateway reads, plus some it
// must ignore).
std::string Slice(const std::string& name, const std::string& endpoints,
                  const std::string& ports = R"([{"name":"grpc","port":8500,"protocol":"TCP"},
                                                  {"name":"http","port":8501,"protocol":"TCP"}])") {
  return R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1",
             "metadata":{"name":")" + name + R"(","namespace":"default","resourceVersion":"42",
                         "labels":{"kubernetes.io/service-name":"models"}},
             "addressType":"IPv4","ports":)" + ports + R"(,"endpoints":)" + endpoints + "}";
}

constexpr char kThreeStates[] = R"([
  {"addresses":["10.1.0.1"],"conditions":{"ready":true,"serving":true,"terminating":false},
   "nodeName":"n1","targetRef":{"kind":"Pod","name":"a","uid":"u1"}},
  {"addresses":["10.1.0.2"],"conditions":{"ready":false,"serving":true,"terminating":true}},
  {"addresses":["10.1.0.3"],"conditions":{"ready":false,"serving":false,"terminating":false}},
  {"addresses":["10.1.0.4"]},
  {"addresses":["10.1.0.5"],"conditions":{"ready":false,"serving":false,"terminating":true}}])";

TEST(K8sSlicesTest, ConditionsMapToReadyDrainingOrNothing) {
  auto s = ParseEndpointSlice(Slice("models-abc", kThreeStates), SlicePorts{});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "models-abc");
  EXPECT_EQ(s->resource_version, "42");
  EXPECT_TRUE(s->skipped.empty());
  ASSERT_EQ(s->endpoints.size(), 3u);
  EXPECT_EQ(s->endpoints[0].host, "10.1.0.1");
  EXPECT_EQ(s->endpoints[0].state, EndpointState::kReady);
  EXPECT_EQ(s->endpoints[0].grpc_port, 8500);
  EXPECT_EQ(s->endpoints[0].http_port, 8501);
  EXPECT_EQ(s->endpoints[1].host, "10.1.0.2");
  EXPECT_EQ(s->endpoints[1].state, EndpointState::kDraining);
  EXPECT_EQ(s->endpoints[2].host, "10.1.0.4");  // no conditions: ready
  EXPECT_EQ(s->endpoints[2].state, EndpointState::kReady);
}

TEST(K8sSlicesTest, PortsAreFoundByName) {
  SlicePorts names;
  names.grpc = "rpc";
  names.http = "web";
  auto s = ParseEndpointSlice(
      Slice("x", R"([{"addresses":["10.0.0.9"]}])",
            R"([{"name":"web","port":80},{"name":"metrics","port":9100},{"name":"rpc","port":90}])"),
      names);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->endpoints.size(), 1u);
  EXPECT_EQ(s->endpoints[0].grpc_port, 90);
  EXPECT_EQ(s->endpoints[0].http_port, 80);
  // Without the named ports the slice contributes nothing, and says why.
  auto none = ParseEndpointSlice(Slice("y", R"([{"addresses":["10.0.0.9"]}])",
                                       R"([{"name":"grpc","port":8500}])"),
                                 SlicePorts{});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->endpoints.empty());
  EXPECT_NE(none->skipped.find("\"http\""), std::string::npos) << none->skipped;
}

TEST(K8sSlicesTest, EmptyAndNullListsAreFine) {
  for (const char* endpoints : {"[]", "null"}) {
    auto s = ParseEndpointSlice(Slice("e", endpoints), SlicePorts{});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->endpoints.empty());
  }
}

TEST(K8sSlicesTest, ListAndWatchEvents) {
  const std::string list = R"({"kind":"EndpointSliceList","metadata":{"resourceVersion":"100"},
      "items":[)" + Slice("a", R"([{"addresses":["10.0.0.1"]}])") + "," +
                           Slice("b", R"([{"addresses":["10.0.0.2"]}])") + "]}";
  auto l = ParseEndpointSliceList(list, SlicePorts{});
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->resource_version, "100");
  ASSERT_EQ(l->slices.size(), 2u);

  auto added = ParseWatchEvent(R"({"type":"ADDED","object":)" +
                                   Slice("c", R"([{"addresses":["10.0.0.3"]}])") + "}",
                               SlicePorts{});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->type, WatchEvent::Type::kAdded);
  EXPECT_EQ(added->slice.name, "c");
  auto deleted = ParseWatchEvent(R"({"type":"DELETED","object":)" + Slice("c", "[]") + "}",
                                 SlicePorts{});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->type, WatchEvent::Type::kDeleted);
  auto bookmark = ParseWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"EndpointSlice","metadata":{"resourceVersion":"777"}}})",
      SlicePorts{});
  ASSERT_TRUE(bookmark.ok()) << bookmark.status();
  EXPECT_EQ(bookmark->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(bookmark->slice.resource_version, "777");
  auto gone = ParseWatchEvent(
      R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",
          "message":"too old resource version: 1 (100)","reason":"Expired","code":410}})json",
      SlicePorts{});
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->type, WatchEvent::Type::kError);
  EXPECT_EQ(gone->error_code, 410);
  EXPECT_NE(gone->error_message.find("too old"), std::string::npos);
}

TEST(K8sSlicesTest, MergeDeduplicatesAcrossSlicesReadyWinning) {
  std::map<std::string, SliceEndpoints> slices;
  slices["a"] = *ParseEndpointSlice(
      Slice("a", R"([{"addresses":["10.0.0.1"],"conditions":{"ready":false,"serving":true,
                                                              "terminating":true}},
                     {"addresses":["10.0.0.2"]}])"),
      SlicePorts{});
  slices["b"] = *ParseEndpointSlice(Slice("b", R"([{"addresses":["10.0.0.1"]}])"), SlicePorts{});
  EndpointList merged = MergeSlices(slices);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].host, "10.0.0.1");
  EXPECT_EQ(merged[0].state, EndpointState::kReady);
  EXPECT_EQ(merged[1].host, "10.0.0.2");
}

TEST(K8sSlicesTest, MalformedInputIsAnErrorNamingThePart) {
  struct Case {
    std::string json;
    const char* part;
  };
  const std::string ok_ports = R"([{"name":"grpc","port":8500},{"name":"http","port":8501}])";
  const std::vector<Case> cases = {
      {"", "malformed JSON"},
      {"{", "malformed JSON"},
      {"[]", "not an object"},
      {R"({"metadata":{}})", "metadata.name"},
      {R"({"metadata":{"name":7}})", "metadata.name is not a string"},
      {R"({"metadata":{"name":"a"},"addressType":"IPX"})", "addressType"},
      {Slice("a", "{}"), "endpoints is not a list"},
      {Slice("a", R"([{"conditions":{}}])"), "no addresses"},
      {Slice("a", R"([{"addresses":[1]}])"), "address is not"},
      {Slice("a", R"([{"addresses":[""]}])"), "address is not"},
      {Slice("a", R"([{"addresses":["1.2.3.4"],"conditions":{"ready":"yes"}}])"),
       "conditions.ready"},
      {Slice("a", R"([{"addresses":["1.2.3.4"],"conditions":[]}])"), "conditions is not"},
      {Slice("a", "[]", R"([{"name":"grpc","port":"8500"}])"), "port \"grpc\""},
      {Slice("a", "[]", R"([{"name":"grpc","port":70000}])"), "port \"grpc\""},
      {Slice("a", "[]", R"({"name":"grpc"})"), "ports is not a list"},
      {Slice("a", "[7]", ok_ports), "endpoint is not an object"},
  };
  for (const Case& c : cases) {
    auto s = ParseEndpointSlice(c.json, SlicePorts{});
    ASSERT_FALSE(s.ok()) << c.json;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.part), std::string::npos)
        << c.json << " -> " << s.status().message();
  }
  for (const char* list : {R"({"items":[]})", R"({"metadata":{},"items":[]})",
                           R"({"metadata":{"resourceVersion":"1"},"items":{}})",
                           R"({"metadata":{"resourceVersion":"1"},"items":[7]})"}) {
    EXPECT_FALSE(ParseEndpointSliceList(list, SlicePorts{}).ok()) << list;
  }
  for (const char* event : {R"({"type":"ADDED"})", R"({"type":"PATCHED","object":{}})",
                            R"({"type":"BOOKMARK","object":{"metadata":{}}})", R"("ADDED")",
                            R"({"type":"MODIFIED","object":{"metadata":{"name":"a"},
                                "addressType":"IPv4","endpoints":"x"}})"}) {
    EXPECT_FALSE(ParseWatchEvent(event, SlicePorts{}).ok()) << event;
  }
}

TEST(K8sSlicesTest, EveryPrefixAndRandomMutationsNeverCrash) {
  const std::string good = R"({"type":"MODIFIED","object":)" + Slice("m", kThreeStates) + "}";
  ASSERT_TRUE(ParseWatchEvent(good, SlicePorts{}).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ParseWatchEvent(good.substr(0, n), SlicePorts{}).ok()) << n;
  }
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\",:0123456789abcdefnulltrue -.";
  for (int i = 0; i < 3000; ++i) {
    std::string m = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
      m[rng() % m.size()] = alphabet[rng() % alphabet.size()];
    }
    (void)ParseWatchEvent(m, SlicePorts{});  // any result but a crash
  }
}

}  // namespace
}  // namespace inferd::balancer
