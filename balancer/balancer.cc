#include "balancer/balancer.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_escape.h"

namespace inferd::balancer {
namespace {

constexpr int kMaxEjectionMultiplier = 10;

bool Excluded(const Replica* r, absl::Span<const Replica* const> exclude) {
  return std::find(exclude.begin(), exclude.end(), r) != exclude.end();
}


std::string JsonString(const std::string& s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

}  // namespace

absl::StatusOr<Policy> ParsePolicy(absl::string_view name) {
  if (name == "round_robin") return Policy::kRoundRobin;
  if (name == "least_request") return Policy::kLeastRequest;
  if (name == "peak_ewma") return Policy::kPeakEwma;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown --lb_policy \"", name, "\": use peak_ewma, least_request or round_robin"));
}

Balancer::Balancer(BalancerOptions options, std::function<uint64_t()> random,
                   ChannelFactory channels)
    : options_(std::move(options)),
      random_(std::move(random)),
      channels_(std::move(channels)),
      set_(std::make_shared<const ReplicaSet>()) {}

void Balancer::Update(const EndpointList& endpoints, absl::Time now) {
  std::shared_ptr<const ReplicaSet> old;
  bool first;
  {
    absl::MutexLock lock(&mu_);
    old = set_;
    first = !updated_;
  }
  std::map<std::string, std::shared_ptr<Replica>> existing;
  for (const auto& r : *old) existing[r->key()] = r;
  auto next = std::make_shared<ReplicaSet>();
  std::map<std::string, bool> seen;
  for (const Endpoint& e : endpoints) {
    const std::string key = e.Key();
    if (seen[key]) continue;  // listed twice (two EndpointSlices): merged
    seen[key] = true;
    auto it = existing.find(key);
    if (it != existing.end()) {
      it->second->set_state(e.state);
      next->push_back(it->second);
    } else {
      next->push_back(std::make_shared<Replica>(e, channels_ ? channels_(e) : nullptr,
                                                options_.replica, now, /*slow_start=*/!first));
    }
  }
  absl::MutexLock lock(&mu_);
  set_ = std::move(next);
  updated_ = true;
}

std::shared_ptr<const ReplicaSet> Balancer::replicas() const {
  absl::MutexLock lock(&mu_);
  return set_;
}

void Balancer::Rejoined(Replica& replica, absl::Time now) const {
  const std::shared_ptr<const ReplicaSet> set = replicas();
  absl::Duration lowest = absl::InfiniteDuration();
  for (const auto& r : *set) {
    if (r.get() == &replica || r->Ejected(now) || !r->healthy()) continue;
    lowest = std::min(lowest, r->LatencyEstimate(now));
  }
  if (lowest == absl::InfiniteDuration()) lowest = options_.replica.ewma_initial;
  replica.RestartLatency(lowest, now);
}

std::vector<Replica*> Balancer::Candidates(const ReplicaSet& set, absl::Time now) const {
  std::vector<Replica*> ready, healthy, draining, draining_healthy;
  for (const auto& r : set) {
    const bool ejected = r->Ejected(now) || !r->healthy();
    if (r->state() == EndpointState::kReady) {
      ready.push_back(r.get());
      if (!ejected) healthy.push_back(r.get());
    } else {
      draining.push_back(r.get());
      if (!ejected) draining_healthy.push_back(r.get());
    }
  }
  if (!ready.empty()) {
    const bool panic = static_cast<double>(healthy.size()) <
                       options_.panic_threshold * static_cast<double>(ready.size());
    return panic ? ready : healthy;
  }
  return draining_healthy.empty() ? draining : draining_healthy;
}

bool Balancer::RetryNotFound(absl::Span<const Replica* const> exclude, absl::Time now,
                             const ModelRequirement& need) const {
  if (need.specific()) return true;
  const std::shared_ptr<const ReplicaSet> set = replicas();
  for (const Replica* r : Candidates(*set, now)) {
    if (Excluded(r, exclude)) continue;
    const auto models = r->models();
    if (models != nullptr && Satisfies(*models, need)) return true;
  }
  return false;
}

std::shared_ptr<Replica> Balancer::Pick(absl::Span<const Replica* const> exclude,
                                        absl::Time now, const ModelRequirement* need) {
  const std::shared_ptr<const ReplicaSet> set = replicas();
  std::vector<Replica*> candidates = Candidates(*set, now);
  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [&](const Replica* r) { return Excluded(r, exclude); }),
                   candidates.end());
  if (need != nullptr) {
    // Prefer replicas known to have what is asked for; when none is known to, try any.
    std::vector<Replica*> having;
    for (Replica* r : candidates) {
      const auto models = r->models();
      if (models != nullptr && Satisfies(*models, *need)) having.push_back(r);
    }
    if (!having.empty()) candidates = std::move(having);
  }
  if (candidates.empty()) return nullptr;
  Replica* chosen = candidates[0];
  const size_t n = candidates.size();
  if (n > 1) {
    if (options_.policy == Policy::kRoundRobin) {
      chosen = candidates[round_robin_.fetch_add(1, std::memory_order_relaxed) % n];
    } else {
      // Two distinct random candidates; the cheaper wins (ties: the first).
      const size_t a = random_() % n;
      const size_t b = (a + 1 + random_() % (n - 1)) % n;
      auto cost = [&](const Replica* r) {
        return options_.policy == Policy::kPeakEwma ? r->PeakEwmaCost(now)
                                                    : r->LeastRequestCost(now);
      };
      chosen = cost(candidates[b]) < cost(candidates[a]) ? candidates[b] : candidates[a];
    }
  }
  for (const auto& r : *set) {
    if (r.get() == chosen) {
      r->Begin();
      return r;
    }
  }
  return nullptr;  // unreachable: chosen comes from set
}

void Balancer::Report(Replica& replica, bool failure, absl::Duration latency, absl::Time now) {
  const int failures = replica.End(latency, failure, now);
  if (failures < options_.ejection_failures) return;
  absl::MutexLock lock(&eject_mu_);
  if (replica.Ejected(now)) return;
  const std::shared_ptr<const ReplicaSet> set = replicas();
  int ejected = 0;
  for (const auto& r : *set) ejected += r->Ejected(now) ? 1 : 0;
  if (static_cast<double>(ejected + 1) >
      options_.max_ejected_fraction * static_cast<double>(set->size())) {
    return;  // the cap: keep it in rotation
  }
  const int n = std::min(replica.times_ejected() + 1, kMaxEjectionMultiplier);
  replica.Eject(now + options_.base_ejection * n);
}

bool Balancer::HasCandidates(absl::Time now) const {
  return !Candidates(*replicas(), now).empty();
}

bool Balancer::HasHealthy(absl::Time now) const {
  for (const auto& r : *replicas()) {
    if (r->healthy() && !r->Ejected(now)) return true;
  }
  return false;
}

Balancer::Counts Balancer::CountStates(absl::Time now) const {
  Counts c;
  for (const auto& r : *replicas()) {
    if (r->Ejected(now) || !r->healthy()) {
      ++c.ejected;
    } else if (r->state() == EndpointState::kReady) {
      ++c.ready;
    } else {
      ++c.draining;
    }
  }
  return c;
}

std::string Balancer::EndpointsJson(absl::Time now) const {
  std::vector<std::string> rows;
  for (const auto& r : *replicas()) {
    const Endpoint& e = r->endpoint();
    const absl::Time until = r->ejected_until();
    rows.push_back(absl::StrCat(
        "{\"host\":", JsonString(e.host), ",\"grpc_port\":", e.grpc_port,
        ",\"http_port\":", e.http_port, ",\"state\":\"", EndpointStateName(r->state()),
        "\",\"ejected\":", r->Ejected(now) ? "true" : "false",
        ",\"healthy\":", r->healthy() ? "true" : "false",
        ",\"ejected_for_seconds\":", now < until ? absl::ToDoubleSeconds(until - now) : 0.0,
        ",\"outstanding\":", r->outstanding(), ",\"requests\":", r->requests(),
        ",\"weight\":", r->Weight(now), ",\"peak_ewma_ms\":",
        absl::ToDoubleMilliseconds(r->LatencyEstimate(now)), "}"));
  }
  return absl::StrCat("{\"endpoints\":[", absl::StrJoin(rows, ","), "]}");
}

}  // namespace inferd::balancer
