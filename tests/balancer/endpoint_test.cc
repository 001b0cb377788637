#include "balancer/endpoint.h"

#include <gtest/gtest.h>

namespace inferd::balancer {
namespace {

TEST(ParseStaticBackendsTest, ParsesHostsPortsAndIpv6) {
  auto list = ParseStaticBackends("10.0.0.1:8500:8501, replica-b:9000:9001,[::1]:7000:7001");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].host, "10.0.0.1");
  EXPECT_EQ((*list)[0].grpc_port, 8500);
  EXPECT_EQ((*list)[0].http_port, 8501);
  EXPECT_EQ((*list)[1].GrpcTarget(), "replica-b:9000");
  EXPECT_EQ((*list)[2].host, "::1");
  EXPECT_EQ((*list)[2].GrpcTarget(), "[::1]:7000");
  EXPECT_EQ((*list)[2].state, EndpointState::kReady);
}

TEST(ParseStaticBackendsTest, MergesDuplicates) {
  auto list = ParseStaticBackends("a:1:2,a:1:2,a:1:3");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 2u);
}

TEST(ParseStaticBackendsTest, RejectsMalformedEntriesNamingThem) {
  struct Case {
    const char* spec;
    const char* message_part;
  };
  for (const Case& c : {Case{"", "no backends"},
                        Case{" , ", "no backends"},
                        Case{"host", "expected HOST:GRPC_PORT:HTTP_PORT"},
                        Case{":1:2", "expected HOST:GRPC_PORT:HTTP_PORT"},
                        Case{"h:1", "expected HOST:GRPC_PORT:HTTP_PORT"},
                        Case{"h:1:2:3", "expected HOST:GRPC_PORT:HTTP_PORT"},
                        Case{"h:x:2", "port \"x\""},
                        Case{"h:0:2", "port \"0\""},
                        Case{"h:1:65536", "port \"65536\""},
                        Case{"h:-1:2", "port \"-1\""},
                        Case{"[::1:1:2", "unterminated IPv6"},
                        Case{"[]:1:2", "unterminated IPv6"},
                        Case{"[::1]1:2", "expected [HOST]"},
                        Case{"good:1:2,bad", "\"bad\""}}) {
    auto list = ParseStaticBackends(c.spec);
    ASSERT_FALSE(list.ok()) << c.spec;
    EXPECT_EQ(list.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_NE(list.status().message().find(c.message_part), std::string::npos)
        << c.spec << ": " << list.status().message();
  }
}

TEST(StaticSourceTest, DeliversItsListOnce) {
  StaticSource source(*ParseStaticBackends("a:1:2,b:3:4"));
  int calls = 0;
  source.Start([&](EndpointList list) {
    ++calls;
    EXPECT_EQ(list.size(), 2u);
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace inferd::balancer
