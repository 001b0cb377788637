// The retry budget both proxies share. A retry may start while retries in flight stay under
// `ratio` of the requests in flight (never fewer than `min_concurrency`: Envoy's budget) or,
// past that, while a token bucket refilled at `min_per_second` (burst of as many) has tokens
// (Linkerd's floor): a replica that dies with a dozen calls in flight gets them all retried,
// while an overloaded cluster sees at most ~20% extra load plus a few retries a second.
// Thread-safe; time is injected for tests.
#ifndef INFERD_BALANCER_RETRY_BUDGET_H_
#define INFERD_BALANCER_RETRY_BUDGET_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace inferd::balancer {

class RetryBudget {
 public:
  explicit RetryBudget(double ratio = 0.2, int min_concurrency = 3, double min_per_second = 10,
                       std::function<absl::Time()> clock = absl::Now);

  // A client request starts / ends (whatever its attempts).
  void RequestStarted() { active_.fetch_add(1, std::memory_order_relaxed); }
  void RequestEnded() { active_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t active() const { return active_.load(std::memory_order_relaxed); }

  // Takes a slot for one retry; false when the budget is spent. Release() when that request
  // has ended.
  bool TryAcquire();
  void Release() { retries_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const double ratio_;
  const int min_concurrency_;
  const double min_per_second_;
  const std::function<absl::Time()> clock_;
  std::atomic<int64_t> active_{0};
  std::atomic<int64_t> retries_{0};
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time refilled_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_RETRY_BUDGET_H_
