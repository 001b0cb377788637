#include "balancer/retry_budget.h"

#include <algorithm>

namespace inferd::balancer {

RetryBudget::RetryBudget(double ratio, int min_concurrency, double min_per_second,
                         std::function<absl::Time()> clock)
    : ratio_(ratio),
      min_concurrency_(min_concurrency),
      min_per_second_(min_per_second),
      clock_(std::move(clock)),
      tokens_(min_per_second),
      refilled_(clock_()) {}

bool RetryBudget::TryAcquire() {
  const int64_t limit = std::max<int64_t>(
      min_concurrency_, static_cast<int64_t>(ratio_ * static_cast<double>(active())));
  int64_t current = retries_.load(std::memory_order_relaxed);
  while (current < limit) {
    if (retries_.compare_exchange_weak(current, current + 1)) return true;
  }
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  tokens_ = std::min(min_per_second_,
                     tokens_ + absl::ToDoubleSeconds(now - refilled_) * min_per_second_);
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  retries_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace inferd::balancer
