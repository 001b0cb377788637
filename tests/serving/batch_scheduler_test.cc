#include "serving/batch_scheduler.h"

#include <atomic>
#include <mutex>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace inferd::serving {
namespace {

// A fake model: output row = input row * 2; records batch sizes. Blocks while `gate` is held.
struct FakeModel {
  std::mutex mu;
  std::vector<int64_t> batch_rows;
  absl::Notification* gate = nullptr;
  BatchRunFn Fn() {
    return [this](const std::vector<models::Tensor>& in) -> absl::StatusOr<std::vector<models::Tensor>> {
      if (gate) gate->WaitForNotification();
      {
        std::lock_guard<std::mutex> lock(mu);
        batch_rows.push_back(in[0].dim(0));
      }
      auto out = models::Tensor::Create(models::DType::kFloat32, in[0].shape()).value();
      for (int64_t i = 0; i < in[0].num_elements(); ++i) {
        out.data<float>()[i] = in[0].data<float>()[i] * 2;
      }
      return std::vector<models::Tensor>{out};
    };
  }
};

BatchTask Task(float value, int64_t rows, std::atomic<int>* done_count,
               std::vector<float>* result = nullptr, absl::Status* status = nullptr) {
  BatchTask t;
  std::vector<float> v(rows * 2, value);
  t.inputs.push_back(models::Tensor::FromVector<float>({rows, 2}, v));
  t.done = [done_count, result, status](absl::StatusOr<std::vector<models::Tensor>> out) {
    if (status) *status = out.status();
    if (out.ok() && result) {
      const auto& x = (*out)[0];
      result->assign(x.data<float>(), x.data<float>() + x.num_elements());
    }
    ++*done_count;
  };
  return t;
}

bool WaitCount(const std::atomic<int>& n, int want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (n.load() < want && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  return n.load() >= want;
}

TEST(BatchSchedulerTest, MergesQueuedTasksAndSplitsResults) {
  FakeModel model;
  absl::Notification gate;
  model.gate = &gate;
  BatchScheduler scheduler(1);
  BatchQueueOptions options;
  options.max_batch_size = 8;
  options.max_enqueued_batches = 10;
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::atomic<int> done{0};
  // The first task occupies the only thread; the next five queue up behind it.
  ASSERT_TRUE(queue->Schedule(Task(0, 1, &done)).ok());
  absl::SleepFor(absl::Milliseconds(20));
  std::vector<std::vector<float>> results(5);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue->Schedule(Task(static_cast<float>(i + 1), i % 2 + 1, &done, &results[i])).ok());
  }
  gate.Notify();
  ASSERT_TRUE(WaitCount(done, 6));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(results[i].size(), static_cast<size_t>((i % 2 + 1) * 2));
    for (float v : results[i]) EXPECT_EQ(v, 2.0f * (i + 1));
  }
  // 1 alone, then 1+2+1+2+1 = 7 rows in one batch.
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{1, 7}));
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, PadsToAllowedSizes) {
  FakeModel model;
  BatchScheduler scheduler(1);
  BatchQueueOptions options;
  options.max_batch_size = 8;
  options.allowed_batch_sizes = {4, 8};
  std::vector<BatchStats> stats;
  std::mutex mu;
  auto queue = scheduler.AddQueue("m", model.Fn(), options, [&](const BatchStats& s) {
    std::lock_guard<std::mutex> lock(mu);
    stats.push_back(s);
  });
  std::atomic<int> done{0};
  std::vector<float> result;
  ASSERT_TRUE(queue->Schedule(Task(3, 3, &done, &result)).ok());
  ASSERT_TRUE(WaitCount(done, 1));
  EXPECT_EQ(model.batch_rows, std::vector<int64_t>{4});
  EXPECT_EQ(result, std::vector<float>(6, 6.0f));
  EXPECT_EQ(stats[0].padding, 1);
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, FullQueueFailsAtOnceWithUnavailable) {
  FakeModel model;
  absl::Notification gate;
  model.gate = &gate;
  BatchScheduler scheduler(1);
  BatchQueueOptions options;
  options.max_batch_size = 2;
  options.max_enqueued_batches = 2;
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::atomic<int> done{0};
  ASSERT_TRUE(queue->Schedule(Task(1, 2, &done)).ok());  // taken by the thread, blocked
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(queue->Schedule(Task(1, 2, &done)).ok());
  ASSERT_TRUE(queue->Schedule(Task(1, 2, &done)).ok());
  absl::Status full = queue->Schedule(Task(1, 2, &done));
  EXPECT_EQ(full.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(full.message(), "The batch scheduling queue to which this task was submitted is full");
  EXPECT_EQ(queue->Schedule(Task(1, 3, &done)).code(), absl::StatusCode::kInvalidArgument);
  gate.Notify();
  ASSERT_TRUE(WaitCount(done, 3));
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, ExpiredTasksAreNotRun) {
  FakeModel model;
  absl::Notification gate;
  model.gate = &gate;
  BatchScheduler scheduler(1);
  auto queue = scheduler.AddQueue("m", model.Fn(), BatchQueueOptions{});
  std::atomic<int> done{0};
  ASSERT_TRUE(queue->Schedule(Task(1, 1, &done)).ok());
  absl::SleepFor(absl::Milliseconds(20));
  absl::Status status;
  BatchTask late = Task(1, 1, &done, nullptr, &status);
  late.deadline = absl::Now() + absl::Milliseconds(5);
  ASSERT_TRUE(queue->Schedule(std::move(late)).ok());
  absl::SleepFor(absl::Milliseconds(30));
  gate.Notify();
  ASSERT_TRUE(WaitCount(done, 2));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(model.batch_rows, std::vector<int64_t>{1});
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, TimeoutWaitsForMoreTasks) {
  FakeModel model;
  BatchScheduler scheduler(1);
  BatchQueueOptions options;
  options.max_batch_size = 4;
  options.batch_timeout = absl::Milliseconds(200);
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue->Schedule(Task(1, 1, &done)).ok());
  // A full batch goes at once; a partial one waits for the timeout.
  ASSERT_TRUE(WaitCount(done, 4));
  ASSERT_TRUE(queue->Schedule(Task(1, 1, &done)).ok());
  ASSERT_TRUE(WaitCount(done, 5));
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{4, 1}));
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, UnmergedQueueRunsTasksAlone) {
  FakeModel model;
  BatchScheduler scheduler(2);
  BatchQueueOptions options;
  options.merge = false;
  options.max_enqueued_batches = 1000;
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(queue->Schedule(Task(1, 3, &done)).ok());
  ASSERT_TRUE(WaitCount(done, 20));
  EXPECT_EQ(model.batch_rows, std::vector<int64_t>(20, 3));
  scheduler.RemoveQueue(queue);
}

}  // namespace
}  // namespace inferd::serving
