#include "balancer/retry_budget.h"

#include <gtest/gtest.h>

namespace inferd::balancer {
namespace {

TEST(RetryBudgetTest, ConcurrencyShareThenARateFloor) {
  absl::Time now = absl::FromUnixSeconds(1000);
  RetryBudget budget(0.2, 3, 10, [&] { return now; });
  for (int i = 0; i < 100; ++i) budget.RequestStarted();
  // 20% of 100 in flight: 20 retries at once.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(budget.TryAcquire()) << i;
  // Then the floor's burst of 10, then nothing until it refills.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(budget.TryAcquire()) << i;
  EXPECT_FALSE(budget.TryAcquire());
  now += absl::Milliseconds(250);  // 2.5 tokens
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_FALSE(budget.TryAcquire());
  // 32 in flight; once retries end and fewer than 20 are left, the share allows more again.
  for (int i = 0; i < 15; ++i) budget.Release();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(budget.TryAcquire()) << i;
  EXPECT_FALSE(budget.TryAcquire());  // 20 in flight again, half a token left
}

TEST(RetryBudgetTest, MinimumConcurrencyWithFewRequests) {
  absl::Time now = absl::FromUnixSeconds(1000);
  RetryBudget budget(0.2, 3, 0, [&] { return now; });
  budget.RequestStarted();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(budget.TryAcquire());
  EXPECT_FALSE(budget.TryAcquire());  // no floor configured
}

}  // namespace
}  // namespace inferd::balancer
