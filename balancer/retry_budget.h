// The retry budget both proxies share (Envoy's): retries in flight may be at most `ratio` of the
// requests in flight, and never fewer than `min_concurrency` are allowed. Thread-safe.
#ifndef INFERD_BALANCER_RETRY_BUDGET_H_
#define INFERD_BALANCER_RETRY_BUDGET_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace inferd::balancer {

class RetryBudget {
 public:
  explicit RetryBudget(double ratio = 0.2, int min_concurrency = 3)
      : ratio_(ratio), min_concurrency_(min_concurrency) {}

  // A client request starts / ends (whatever its attempts).
  void RequestStarted() { active_.fetch_add(1, std::memory_order_relaxed); }
  void RequestEnded() { active_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t active() const { return active_.load(std::memory_order_relaxed); }

  // Takes a slot for one retry; false when the budget is spent. Release() when that attempt
  // has ended.
  bool TryAcquire() {
    const int64_t limit = std::max<int64_t>(
        min_concurrency_, static_cast<int64_t>(ratio_ * static_cast<double>(active())));
    int64_t current = retries_.load(std::memory_order_relaxed);
    while (current < limit) {
      if (retries_.compare_exchange_weak(current, current + 1)) return true;
    }
    return false;
  }
  void Release() { retries_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  const double ratio_;
  const int min_concurrency_;
  std::atomic<int64_t> active_{0};
  std::atomic<int64_t> retries_{0};
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_RETRY_BUDGET_H_
