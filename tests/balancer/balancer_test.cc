#include "balancer/balancer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace inferd::balancer {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

// A seeded source, so every run makes the same choices.
std::function<uint64_t()> SeededRandom(uint64_t seed) {
  auto gen = std::make_shared<std::mt19937_64>(seed);
  return [gen] { return (*gen)(); };
}

EndpointList Endpoints(int n, EndpointState state = EndpointState::kReady) {
  EndpointList out;
  for (int i = 0; i < n; ++i) {
    Endpoint e;
    e.host = "10.0.0." + std::to_string(i + 1);
    e.grpc_port = 8500;
    e.http_port = 8501;
    e.state = state;
    out.push_back(e);
  }
  return out;
}

Balancer MakeBalancer(Policy policy, uint64_t seed = 1) {
  BalancerOptions options;
  options.policy = policy;
  return Balancer(options, SeededRandom(seed), nullptr);
}

// Picks `n` times, finishing each request at once with `latency(replica)`; counts per host.
std::map<std::string, int> PickMany(Balancer& b, int n, absl::Time now,
                               const std::function<absl::Duration(const Replica&)>& latency) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    auto r = b.Pick({}, now);
    EXPECT_NE(r, nullptr);
    if (r == nullptr) break;
    ++counts[r->endpoint().host];
    now += absl::Milliseconds(1);
    b.Report(*r, false, latency(*r), now);
  }
  return counts;
}

TEST(BalancerTest, PolicyNamesParse) {
  EXPECT_EQ(*ParsePolicy("peak_ewma"), Policy::kPeakEwma);
  EXPECT_EQ(*ParsePolicy("least_request"), Policy::kLeastRequest);
  EXPECT_EQ(*ParsePolicy("round_robin"), Policy::kRoundRobin);
  EXPECT_FALSE(ParsePolicy("random").ok());
  EXPECT_FALSE(ParsePolicy("").ok());
}

TEST(BalancerTest, EmptySetPicksNothing) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  EXPECT_EQ(b.Pick({}, kT0), nullptr);
  EXPECT_FALSE(b.HasCandidates(kT0));
}

TEST(BalancerTest, RoundRobinCyclesEvenly) {
  Balancer b = MakeBalancer(Policy::kRoundRobin);
  b.Update(Endpoints(3), kT0);
  auto counts = PickMany(b, 300, kT0, [](const Replica&) { return absl::Milliseconds(1); });
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [host, n] : counts) EXPECT_EQ(n, 100) << host;
}

TEST(BalancerTest, LeastRequestAvoidsTheBusyReplica) {
  Balancer b = MakeBalancer(Policy::kLeastRequest);
  b.Update(Endpoints(3), kT0);
  // Ten requests stay open on the first replica.
  auto set = b.replicas();
  for (int i = 0; i < 10; ++i) (*set)[0]->Begin();
  auto counts = PickMany(b, 1000, kT0, [](const Replica&) { return absl::Milliseconds(1); });
  // Two random choices: the busy one wins only when drawn... never, against an idle one.
  EXPECT_EQ(counts["10.0.0.1"], 0);
  EXPECT_GT(counts["10.0.0.2"], 400);
  EXPECT_GT(counts["10.0.0.3"], 400);
}

TEST(BalancerTest, PeakEwmaSendsLittleToASlowReplica) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  b.Update(Endpoints(3), kT0);
  auto counts = PickMany(b, 3000, kT0, [](const Replica& r) {
    return r.endpoint().host == "10.0.0.1" ? absl::Milliseconds(50) : absl::Milliseconds(5);
  });
  EXPECT_LT(counts["10.0.0.1"], 300);  // under 10%
  EXPECT_GT(counts["10.0.0.2"], 1000);
  EXPECT_GT(counts["10.0.0.3"], 1000);
}

TEST(BalancerTest, PeakEwmaEstimateJumpsUpAndDecays) {
  PeakEwma e(absl::Seconds(10), absl::Milliseconds(10), kT0);
  EXPECT_DOUBLE_EQ(e.EstimateNanos(kT0), 10e6);
  e.Observe(absl::Milliseconds(100), kT0);  // a peak replaces the estimate at once
  EXPECT_DOUBLE_EQ(e.EstimateNanos(kT0), 100e6);
  e.Observe(absl::Milliseconds(1), kT0 + absl::Seconds(10));  // one time constant later
  const double after = e.EstimateNanos(kT0 + absl::Seconds(10));
  EXPECT_NEAR(after, 100e6 * std::exp(-1.0) + 1e6 * (1 - std::exp(-1.0)), 1e3);
  EXPECT_LT(e.EstimateNanos(kT0 + absl::Seconds(30)), after);  // idle: decays further
}

TEST(BalancerTest, AReplicaBackFromFailedHealthChecksCompetesAtOnce) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  b.Update(Endpoints(2), kT0);
  Replica& back = *(*b.replicas())[0];
  Replica& other = *(*b.replicas())[1];
  absl::Time now = kT0;
  // A slow call on the first replica, then it fails its health checks for a while.
  back.Begin();
  b.Report(back, false, absl::Milliseconds(200), now);
  back.set_healthy(false);
  auto counts = PickMany(b, 100, now, [](const Replica&) { return absl::Milliseconds(2); });
  EXPECT_EQ(counts["10.0.0.2"], 100);
  now += absl::Milliseconds(100);
  // Back: without a restart its 200 ms estimate would keep it out for seconds.
  back.set_healthy(true);
  b.Rejoined(back, now);
  EXPECT_EQ(back.LatencyEstimate(now), other.LatencyEstimate(now));
  counts = PickMany(b, 100, now, [](const Replica&) { return absl::Milliseconds(2); });
  EXPECT_GT(counts["10.0.0.1"], 20);  // no longer avoided
  // With no other usable replica it restarts at the initial estimate.
  other.set_healthy(false);
  b.Rejoined(back, now);
  EXPECT_EQ(back.LatencyEstimate(now), ReplicaOptions{}.ewma_initial);
}

TEST(BalancerTest, UpdateKeepsReplicasThatStayAndMergesDuplicates) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  b.Update(Endpoints(2), kT0);
  auto first = b.replicas();
  EndpointList next = Endpoints(3);
  next.push_back(next[1]);  // the same endpoint in two slices
  b.Update(next, kT0 + absl::Seconds(1));
  auto second = b.replicas();
  ASSERT_EQ(second->size(), 3u);
  EXPECT_EQ((*first)[0].get(), (*second)[0].get());
  EXPECT_EQ((*first)[1].get(), (*second)[1].get());
  // The replica added later ramps up; the first ones are at full weight.
  EXPECT_DOUBLE_EQ((*second)[0]->Weight(kT0 + absl::Seconds(1)), 1.0);
  EXPECT_DOUBLE_EQ((*second)[2]->Weight(kT0 + absl::Seconds(1)), 0.1);
  EXPECT_NEAR((*second)[2]->Weight(kT0 + absl::Seconds(16)), 0.5, 1e-9);
  EXPECT_DOUBLE_EQ((*second)[2]->Weight(kT0 + absl::Seconds(60)), 1.0);
  // A removed replica stays alive for whoever still holds it.
  b.Update(Endpoints(1), kT0 + absl::Seconds(2));
  EXPECT_EQ(b.replicas()->size(), 1u);
  EXPECT_EQ((*second)[2]->endpoint().host, "10.0.0.3");
}

TEST(BalancerTest, DrainingReplicasServeOnlyWhenNothingIsReady) {
  Balancer b = MakeBalancer(Policy::kLeastRequest);
  EndpointList list = Endpoints(3);
  list[0].state = EndpointState::kDraining;
  b.Update(list, kT0);
  auto counts = PickMany(b, 200, kT0, [](const Replica&) { return absl::Milliseconds(1); });
  EXPECT_EQ(counts.count("10.0.0.1"), 0u);
  b.Update(Endpoints(1, EndpointState::kDraining), kT0);
  auto r = b.Pick({}, kT0);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->endpoint().host, "10.0.0.1");
  EXPECT_EQ(r->state(), EndpointState::kDraining);
}

TEST(BalancerTest, PickNeverReturnsAnExcludedReplica) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  b.Update(Endpoints(2), kT0);
  auto set = b.replicas();
  const Replica* first = (*set)[0].get();
  for (int i = 0; i < 50; ++i) {
    auto r = b.Pick({&first, 1}, kT0);
    ASSERT_NE(r, nullptr);
    EXPECT_NE(r.get(), first);
    b.Report(*r, false, absl::Milliseconds(1), kT0);
  }
  const Replica* both[] = {(*set)[0].get(), (*set)[1].get()};
  EXPECT_EQ(b.Pick(both, kT0), nullptr);
}

TEST(BalancerTest, ConsecutiveFailuresEjectWithGrowingTimeAndAtMostHalf) {
  BalancerOptions options;
  options.policy = Policy::kRoundRobin;
  options.ejection_failures = 3;
  options.base_ejection = absl::Seconds(10);
  Balancer b(options, SeededRandom(2), nullptr);
  b.Update(Endpoints(4), kT0);
  auto set = b.replicas();
  auto fail = [&](Replica& r, int times, absl::Time now) {
    for (int i = 0; i < times; ++i) {
      r.Begin();
      b.Report(r, true, absl::Milliseconds(1), now);
    }
  };
  fail(*(*set)[0], 2, kT0);
  EXPECT_FALSE((*set)[0]->Ejected(kT0));
  (*set)[0]->Begin();
  b.Report(*(*set)[0], false, absl::Milliseconds(1), kT0);  // a success resets the count
  fail(*(*set)[0], 2, kT0);
  EXPECT_FALSE((*set)[0]->Ejected(kT0));
  fail(*(*set)[0], 1, kT0);
  EXPECT_TRUE((*set)[0]->Ejected(kT0));
  EXPECT_EQ((*set)[0]->ejected_until(), kT0 + absl::Seconds(10));
  auto counts = PickMany(b, 90, kT0, [](const Replica&) { return absl::Milliseconds(1); });
  EXPECT_EQ(counts.count("10.0.0.1"), 0u);
  // A second replica may go; a third may not (at most half of four).
  fail(*(*set)[1], 3, kT0);
  EXPECT_TRUE((*set)[1]->Ejected(kT0));
  fail(*(*set)[2], 3, kT0);
  EXPECT_FALSE((*set)[2]->Ejected(kT0));
  EXPECT_EQ(b.CountStates(kT0).ejected, 2);
  // Back after its time; the next ejection lasts twice as long.
  const absl::Time later = kT0 + absl::Seconds(11);
  EXPECT_FALSE((*set)[0]->Ejected(later));
  fail(*(*set)[0], 3, later);
  EXPECT_EQ((*set)[0]->ejected_until(), later + absl::Seconds(20));
}

TEST(BalancerTest, PanicModeUsesEveryReadyReplicaWhenMostAreEjected) {
  BalancerOptions options;
  options.policy = Policy::kRoundRobin;
  options.max_ejected_fraction = 1.0;  // let the test eject two of three
  options.ejection_failures = 1;
  Balancer b(options, SeededRandom(3), nullptr);
  b.Update(Endpoints(3), kT0);
  auto set = b.replicas();
  for (int i : {0, 1}) {
    (*set)[i]->Begin();
    b.Report(*(*set)[i], true, absl::Milliseconds(1), kT0);
  }
  // One healthy of three is under the 50% panic threshold: all three are candidates again.
  auto counts = PickMany(b, 300, kT0, [](const Replica&) { return absl::Milliseconds(1); });
  EXPECT_EQ(counts.size(), 3u);
}

TEST(BalancerTest, EndpointsJsonListsEveryReplica) {
  Balancer b = MakeBalancer(Policy::kPeakEwma);
  b.Update(Endpoints(2), kT0);
  const std::string json = b.EndpointsJson(kT0);
  EXPECT_NE(json.find("\"host\":\"10.0.0.1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"host\":\"10.0.0.2\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"ready\""), std::string::npos) << json;
}

}  // namespace
}  // namespace inferd::balancer
