#include "balancer/replica.h"

#include <algorithm>
#include <cmath>

namespace inferd::balancer {
namespace {

// Weight of a replica at the start of its slow-start window.
constexpr double kSlowStartMinWeight = 0.1;

}  // namespace

PeakEwma::PeakEwma(absl::Duration decay, absl::Duration initial, absl::Time now)
    : decay_ns_(std::max(1.0, absl::ToDoubleNanoseconds(decay))),
      estimate_ns_(absl::ToDoubleNanoseconds(initial)),
      last_(now) {}

void PeakEwma::Observe(absl::Duration rtt, absl::Time now) {
  const double rtt_ns = std::max(0.0, absl::ToDoubleNanoseconds(rtt));
  absl::MutexLock lock(&mu_);
  if (rtt_ns > estimate_ns_) {
    estimate_ns_ = rtt_ns;
  } else {
    const double elapsed = std::max(0.0, absl::ToDoubleNanoseconds(now - last_));
    const double w = std::exp(-elapsed / decay_ns_);
    estimate_ns_ = estimate_ns_ * w + rtt_ns * (1 - w);
  }
  last_ = std::max(last_, now);
}

void PeakEwma::Reset(absl::Duration estimate, absl::Time now) {
  absl::MutexLock lock(&mu_);
  estimate_ns_ = std::max(0.0, absl::ToDoubleNanoseconds(estimate));
  last_ = now;
}

double PeakEwma::EstimateNanos(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  const double elapsed = std::max(0.0, absl::ToDoubleNanoseconds(now - last_));
  return estimate_ns_ * std::exp(-elapsed / decay_ns_);
}

Replica::Replica(Endpoint endpoint, std::shared_ptr<grpc::Channel> channel,
                 const ReplicaOptions& options, absl::Time now, bool slow_start)
    : endpoint_(std::move(endpoint)),
      key_(endpoint_.Key()),
      channel_(std::move(channel)),
      stub_(channel_),
      added_(now),
      slow_start_(slow_start ? options.slow_start : absl::ZeroDuration()),
      state_(endpoint_.state),
      latency_(options.ewma_decay, options.ewma_initial, now) {}

int Replica::End(absl::Duration latency, bool failure, absl::Time now) {
  outstanding_.fetch_sub(1, std::memory_order_relaxed);
  requests_.fetch_add(1, std::memory_order_relaxed);
  latency_.Observe(latency, now);
  if (!failure) {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    return 0;
  }
  return consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
}

double Replica::Weight(absl::Time now) const {
  if (slow_start_ <= absl::ZeroDuration()) return 1.0;
  const double progress = absl::FDivDuration(now - added_, slow_start_);
  return std::clamp(progress, kSlowStartMinWeight, 1.0);
}

double Replica::PeakEwmaCost(absl::Time now) const {
  return latency_.EstimateNanos(now) * static_cast<double>(outstanding() + 1) / Weight(now);
}

double Replica::LeastRequestCost(absl::Time now) const {
  return static_cast<double>(outstanding() + 1) / Weight(now);
}

bool Replica::Ejected(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  return now < ejected_until_;
}

absl::Time Replica::ejected_until() const {
  absl::MutexLock lock(&mu_);
  return ejected_until_;
}

void Replica::Eject(absl::Time until) {
  absl::MutexLock lock(&mu_);
  ejected_until_ = until;
  ++times_ejected_;
  consecutive_failures_.store(0, std::memory_order_relaxed);
}

int Replica::times_ejected() const {
  absl::MutexLock lock(&mu_);
  return times_ejected_;
}

}  // namespace inferd::balancer
