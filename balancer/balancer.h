// The replica set and the per-request choice of a replica.
//
// Update() turns a discovered endpoint list into a new immutable snapshot, keeping the Replica
// objects (channels, statistics) of endpoints that stay; Pick() reads the current snapshot
// without blocking writers. Which replicas are candidates:
//   - ready ones neither ejected nor failing their active health checks;
//   - when fewer than `panic_threshold` of the ready ones are left that way, all ready ones
//     (panic mode: better to spread load over suspect replicas than to overload the rest);
//   - when none is ready, the draining ones (terminating but still serving).
// Among candidates: round robin, or power of two random choices by least outstanding requests or
// by Peak-EWMA cost (latency × (outstanding + 1)), slow-start weighted; a request for an
// explicit model version or label is kept to replicas known to have it.
// Report() feeds outcomes back: consecutive failures eject a replica for a growing time, never
// more than `max_ejected_fraction` of the set at once. Thread-safe. Randomness and time are
// injected so tests are deterministic.
#ifndef INFERD_BALANCER_BALANCER_H_
#define INFERD_BALANCER_BALANCER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "balancer/endpoint.h"
#include "balancer/replica.h"

namespace inferd::balancer {

enum class Policy { kRoundRobin, kLeastRequest, kPeakEwma };

// "round_robin", "least_request", "peak_ewma".
absl::StatusOr<Policy> ParsePolicy(absl::string_view name);

struct BalancerOptions {
  Policy policy = Policy::kPeakEwma;
  ReplicaOptions replica;
  // Consecutive failures (unreachable, UNAVAILABLE) that eject a replica.
  int ejection_failures = 5;
  // The n-th ejection of a replica lasts n times this (at most 10 times).
  absl::Duration base_ejection = absl::Seconds(30);
  double max_ejected_fraction = 0.5;
  double panic_threshold = 0.5;
};

using ReplicaSet = std::vector<std::shared_ptr<Replica>>;

class Balancer {
 public:
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>(const Endpoint&)>;
  // `random` returns uniformly distributed 64-bit values; `channels` opens a replica's channel.
  Balancer(BalancerOptions options, std::function<uint64_t()> random, ChannelFactory channels);

  // Replaces the replica set. The first call's replicas start at full weight; later additions
  // ramp up (slow start).
  void Update(const EndpointList& endpoints, absl::Time now);

  // A replica for a new request, never one of `exclude` (earlier attempts). Null when no
  // replica may be used. With a `need` (the model, and an explicit version or label if the
  // request names one), only replicas known to have it are considered, unless none is: then all.
  std::shared_ptr<Replica> Pick(absl::Span<const Replica* const> exclude, absl::Time now,
                                const ModelRequirement* need = nullptr);
  // Whether a call that a replica answered NOT_FOUND (404) for is worth another replica not in
  // `exclude`: always when it names a version or label (they are rolled out replica by
  // replica), else when another usable replica is known to have the model (a replica that
  // restarted answers NOT_FOUND until its models load, while its last polled status still lists
  // them). A model no replica has is not retried.
  bool RetryNotFound(absl::Span<const Replica* const> exclude, absl::Time now,
                     const ModelRequirement& need) const;

  // The request on `replica` ended; `failure` as in Replica::End.
  void Report(Replica& replica, bool failure, absl::Duration latency, absl::Time now);

  std::shared_ptr<const ReplicaSet> replicas() const;
  // `replica` passes its health checks again after failing them. Its latency estimate dates
  // from before (often a slow first call, or the calls that hung), and Peak-EWMA would avoid it
  // until that decays (ewma_decay); it restarts instead at the lowest estimate among the other
  // usable replicas (ewma_initial if there are none), so that it competes at once on equal terms
  // and its next answers set its estimate.
  void Rejoined(Replica& replica, absl::Time now) const;
  // Whether Pick() can return anything now.
  bool HasCandidates(absl::Time now) const;
  // Whether some replica is neither ejected nor failing health checks (the gateway's health).
  bool HasHealthy(absl::Time now) const;
  // Counts by state for metrics: ready, draining, ejected (ejected or failing health checks).
  struct Counts {
    int ready = 0, draining = 0, ejected = 0;
  };
  Counts CountStates(absl::Time now) const;
  // The replica table as JSON (for the admin page).
  std::string EndpointsJson(absl::Time now) const;

 private:
  std::vector<Replica*> Candidates(const ReplicaSet& set, absl::Time now) const;

  const BalancerOptions options_;
  const std::function<uint64_t()> random_;
  const ChannelFactory channels_;
  std::atomic<uint64_t> round_robin_{0};

  mutable absl::Mutex mu_;
  std::shared_ptr<const ReplicaSet> set_ ABSL_GUARDED_BY(mu_);
  bool updated_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex eject_mu_;  // serialises ejection decisions (the fraction cap is global)
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_BALANCER_H_
