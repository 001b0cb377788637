// One replica as the gateway sees it: its endpoint, its gRPC channel, and the statistics the
// balancer picks by (outstanding requests, Peak-EWMA latency) and ejects by (consecutive
// failures). Thread-safe. Shared: a replica removed from discovery lives on, channel included,
// until the last request using it has finished.
#ifndef INFERD_BALANCER_REPLICA_H_
#define INFERD_BALANCER_REPLICA_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "balancer/endpoint.h"
#include "balancer/model_routing.h"

namespace inferd::balancer {

// Peak-EWMA latency (Finagle, Linkerd): an observation above the estimate replaces it at once;
// below it, the estimate decays towards it with time constant `decay`. Reading decays the
// estimate towards zero for the time since the last observation, so an idle replica looks
// cheaper as time passes. Thread-safe.
class PeakEwma {
 public:
  PeakEwma(absl::Duration decay, absl::Duration initial, absl::Time now);
  void Observe(absl::Duration rtt, absl::Time now);
  // The estimate at `now`, in nanoseconds.
  double EstimateNanos(absl::Time now) const;
  // Forgets the history: the estimate is `estimate` as of `now`.
  void Reset(absl::Duration estimate, absl::Time now);

 private:
  const double decay_ns_;
  mutable absl::Mutex mu_;
  double estimate_ns_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

struct ReplicaOptions {
  absl::Duration ewma_decay = absl::Seconds(10);
  // A new replica's latency estimate until it has answered.
  absl::Duration ewma_initial = absl::Milliseconds(10);
  // Ramp of a replica added after start-up: its weight grows linearly from 10% to 100% over
  // this window (model warm-up, cold caches). Zero: no ramp.
  absl::Duration slow_start = absl::Seconds(30);
};

class Replica {
 public:
  // `channel` may be null in tests that never forward. `slow_start`: ramp this replica up.
  Replica(Endpoint endpoint, std::shared_ptr<grpc::Channel> channel, const ReplicaOptions& options,
          absl::Time now, bool slow_start);

  const Endpoint& endpoint() const { return endpoint_; }
  const std::string& key() const { return key_; }
  grpc::GenericStub& stub() { return stub_; }
  grpc::Channel* channel() const { return channel_.get(); }
  const std::shared_ptr<grpc::Channel>& shared_channel() const { return channel_; }

  EndpointState state() const { return state_.load(std::memory_order_relaxed); }
  void set_state(EndpointState s) { state_.store(s, std::memory_order_relaxed); }

  int64_t outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  // A request starts / ends on this replica. `failure`: the replica could not be reached or
  // answered UNAVAILABLE (counts towards ejection); a success resets the failure count.
  void Begin() { outstanding_.fetch_add(1, std::memory_order_relaxed); }
  // Returns the consecutive failures after this one (0 on success).
  int End(absl::Duration latency, bool failure, absl::Time now);

  // Weight in (0, 1]: below 1 while slow start lasts.
  double Weight(absl::Time now) const;
  // Peak-EWMA cost: latency estimate times (outstanding + 1), over the weight.
  double PeakEwmaCost(absl::Time now) const;
  // Outstanding requests plus one, over the weight.
  double LeastRequestCost(absl::Time now) const;
  // The Peak-EWMA latency estimate alone.
  absl::Duration LatencyEstimate(absl::Time now) const {
    return absl::Nanoseconds(latency_.EstimateNanos(now));
  }
  // Restarts the latency estimate at `estimate` (a replica back from failing health checks).
  void RestartLatency(absl::Duration estimate, absl::Time now) { latency_.Reset(estimate, now); }

  // The model versions and labels this replica has AVAILABLE (VersionTracker); null until the
  // first poll answered.
  std::shared_ptr<const ModelAvailability> models() const {
    absl::MutexLock lock(&mu_);
    return models_;
  }
  void set_models(std::shared_ptr<const ModelAvailability> m) {
    absl::MutexLock lock(&mu_);
    models_ = std::move(m);
  }

  // Active health (grpc.health.v1 Check by the HealthChecker): healthy until checks fail.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void set_healthy(bool h) { healthy_.store(h, std::memory_order_relaxed); }

  // Outlier ejection, decided by the balancer.
  bool Ejected(absl::Time now) const;
  absl::Time ejected_until() const;
  void Eject(absl::Time until);
  int times_ejected() const;
  int64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  const Endpoint endpoint_;
  const std::string key_;
  const std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  const absl::Time added_;
  const absl::Duration slow_start_;
  std::atomic<EndpointState> state_;
  std::atomic<int64_t> outstanding_{0};
  std::atomic<int64_t> requests_{0};
  std::atomic<int> consecutive_failures_{0};
  std::atomic<bool> healthy_{true};
  PeakEwma latency_;
  mutable absl::Mutex mu_;
  absl::Time ejected_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int times_ejected_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const ModelAvailability> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_REPLICA_H_
