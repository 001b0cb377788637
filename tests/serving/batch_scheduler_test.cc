#include "serving/batch_scheduler.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace inferd::serving {
namespace {

// A fake model: output row = input row * 2; records batch sizes, the threads that ran them and
// how many ran at once. Blocks while `gate` is held.
struct FakeModel {
  std::mutex mu;
  std::vector<int64_t> batch_rows;
  std::vector<std::thread::id> threads;
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  absl::Notification* gate = nullptr;
  absl::Duration delay;  // every batch takes at least this long
  BatchRunFn Fn() {
    return [this](const std::vector<models::Tensor>& in) -> absl::StatusOr<std::vector<models::Tensor>> {
      const int now = ++running;
      for (int m = most_running.load(); now > m && !most_running.compare_exchange_weak(m, now);) {
      }
      if (gate) gate->WaitForNotification();
      absl::SleepFor(delay);
      --running;
      {
        std::lock_guard<std::mutex> lock(mu);
        batch_rows.push_back(in[0].dim(0));
        threads.push_back(std::this_thread::get_id());
      }
      auto out = models::Tensor::Create(models::DType::kFloat32, in[0].shape()).value();
      for (int64_t i = 0; i < in[0].num_elements(); ++i) {
        out.data<float>()[i] = in[0].data<float>()[i] * 2;
      }
      return std::vector<models::Tensor>{out};
    };
  }
};

// Records every batch's stats.
struct StatsLog {
  std::mutex mu;
  std::vector<BatchStats> stats;
  std::function<void(const BatchStats&)> Fn() {
    return [this](const BatchStats& s) {
      std::lock_guard<std::mutex> lock(mu);
      stats.push_back(s);
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
  StatsLog log;
  auto queue = scheduler.AddQueue("m", model.Fn(), options, log.Fn());
  const std::vector<BatchStats>& stats = log.stats;
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

BatchQueueOptions CallerRuns(int max_callers) {
  BatchQueueOptions options;
  options.max_batch_size = 8;
  options.max_enqueued_batches = 10;
  options.caller_runs = true;
  options.max_callers = max_callers;
  return options;
}

TEST(BatchSchedulerTest, CallerRunsQueueRunsTheBatchInsideSchedule) {
  FakeModel model;
  BatchScheduler scheduler(1);
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  std::atomic<int> done{0};
  std::vector<float> result;
  ASSERT_TRUE(queue->Schedule(Task(2, 3, &done, &result)).ok());
  // Already answered when Schedule() returns, on this thread, not the batch thread.
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(result, std::vector<float>(6, 4.0f));
  ASSERT_EQ(model.threads.size(), 1u);
  EXPECT_EQ(model.threads[0], std::this_thread::get_id());
  EXPECT_EQ(queue->queued_tasks(), 0);
  scheduler.RemoveQueue(queue);
}

// A caller_runs queue over a FakeModel that blocks until `gate` is notified.
class CallerRunsTest : public ::testing::Test {
 protected:
  CallerRunsTest() { model.gate = &gate; }
  // Until `n` batches are inside the model.
  void WaitRunning(int n) {
    while (model.running.load() < n) absl::SleepFor(absl::Milliseconds(1));
  }
  // A thread whose Schedule() of a one-row task of `value` is running that task's batch (held
  // in the model until `gate` is notified) when this returns.
  std::thread BlockedCaller(BatchQueue* queue, float value) {
    std::thread t([this, queue, value] {
      EXPECT_TRUE(queue->Schedule(Task(value, 1, &done)).ok());
    });
    WaitRunning(1);
    return t;
  }
  FakeModel model;
  absl::Notification gate;
  std::atomic<int> done{0};
  BatchScheduler scheduler{1};  // stopped before the model goes away
};

TEST_F(CallerRunsTest, CallerRunsTheTasksThatArriveWhileItRuns) {
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  std::thread first = BlockedCaller(queue.get(), 0);
  const std::thread::id caller = first.get_id();
  // The caller is busy: these only queue, and Schedule() returns at once.
  std::vector<std::vector<float>> results(5);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue->Schedule(Task(static_cast<float>(i + 1), i % 2 + 1, &done, &results[i])).ok());
  }
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(queue->queued_tasks(), 5);
  gate.Notify();
  first.join();
  // The first caller ran them, as one batch, before its Schedule() returned.
  EXPECT_EQ(done.load(), 6);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(model.threads, (std::vector<std::thread::id>{caller, caller}));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(results[i], std::vector<float>((i % 2 + 1) * 2, 2.0f * (i + 1)));
  }
  EXPECT_EQ(model.most_running.load(), 1);
  scheduler.RemoveQueue(queue);
}

TEST_F(CallerRunsTest, AtMostMaxCallersRun) {
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(2));
  std::vector<std::thread> callers;
  for (int i = 0; i < 2; ++i) {
    callers.emplace_back([&] { EXPECT_TRUE(queue->Schedule(Task(1, 8, &done)).ok()); });
  }
  WaitRunning(2);
  // Two callers run; a third task waits for one of them.
  ASSERT_TRUE(queue->Schedule(Task(1, 1, &done)).ok());
  EXPECT_EQ(done.load(), 0);
  gate.Notify();
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(model.most_running.load(), 2);
  scheduler.RemoveQueue(queue);
}

TEST_F(CallerRunsTest, FullQueueStillRejects) {
  BatchQueueOptions options = CallerRuns(1);
  options.max_batch_size = 2;
  options.max_enqueued_batches = 1;
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::thread first([&] { EXPECT_TRUE(queue->Schedule(Task(1, 2, &done)).ok()); });
  WaitRunning(1);
  ASSERT_TRUE(queue->Schedule(Task(1, 2, &done)).ok());
  EXPECT_EQ(queue->Schedule(Task(1, 1, &done)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(queue->Schedule(Task(1, 3, &done)).message(),
            "Task size 3 is larger than maximum batch size 2");
  gate.Notify();
  first.join();
  EXPECT_EQ(done.load(), 2);
  scheduler.RemoveQueue(queue);
}

TEST_F(CallerRunsTest, CallerKeepsItsQueueAliveWhenTheQueueIsRemovedMeanwhile) {
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  BatchQueue* raw = queue.get();
  std::thread first([&] { EXPECT_TRUE(raw->Schedule(Task(1, 1, &done)).ok()); });
  WaitRunning(1);
  ASSERT_TRUE(queue->Schedule(Task(1, 1, &done)).ok());
  // As when the last request of an unloaded version finishes: no one else holds the queue.
  scheduler.RemoveQueue(queue);
  queue.reset();
  gate.Notify();
  first.join();
  EXPECT_EQ(done.load(), 2);
}

// An event loop for ScheduleDeferred: deferred functions queue on the thread that installed it.
thread_local std::deque<std::function<void()>>* t_loop = nullptr;

bool DeferToLoop(std::function<void()> fn) {
  if (t_loop == nullptr) return false;
  t_loop->push_back(std::move(fn));
  return true;
}

class DeferredTest : public CallerRunsTest {
 protected:
  DeferredTest() { t_loop = &loop; }
  ~DeferredTest() override { t_loop = nullptr; }
  // Runs the loop's first function; false if it was empty.
  bool Step() {
    if (loop.empty()) return false;
    std::function<void()> fn = std::move(loop.front());
    loop.pop_front();
    fn();
    return true;
  }
  // A caller_runs queue of batches of at most 2 rows, at most `batches` of them queued.
  std::shared_ptr<BatchQueue> TwoRowQueue(int64_t batches) {
    BatchQueueOptions options = CallerRuns(1);
    options.max_batch_size = 2;
    options.max_enqueued_batches = batches;
    return scheduler.AddQueue("m", model.Fn(), options);
  }
  std::deque<std::function<void()>> loop;
};

TEST_F(DeferredTest, TasksWaitForTheLoopAndRunAsOneBatch) {
  gate.Notify();
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  std::vector<std::vector<float>> results(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue
                    ->ScheduleDeferred(Task(static_cast<float>(i + 1), i + 1, &done, &results[i]),
                                       &DeferToLoop)
                    .ok());
  }
  // Nothing runs inside ScheduleDeferred; one run is deferred for all three.
  EXPECT_EQ(done.load(), 0);
  EXPECT_EQ(queue->queued_tasks(), 3);
  EXPECT_EQ(loop.size(), 1u);
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{6}));
  EXPECT_EQ(model.threads, (std::vector<std::thread::id>{std::this_thread::get_id()}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i], std::vector<float>((i + 1) * 2, 2.0f * (i + 1)));
  }
  EXPECT_TRUE(loop.empty());
  EXPECT_EQ(queue->queued_tasks(), 0);
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, WithoutALoopTheTaskRunsAtOnce) {
  gate.Notify();
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  t_loop = nullptr;
  std::vector<float> result;
  ASSERT_TRUE(queue->ScheduleDeferred(Task(2, 1, &done, &result), &DeferToLoop).ok());
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(result, std::vector<float>(2, 4.0f));
  // A later deferred task is deferred again: the declined run left nothing pending.
  t_loop = &loop;
  ASSERT_TRUE(queue->ScheduleDeferred(Task(2, 1, &done), &DeferToLoop).ok());
  EXPECT_EQ(loop.size(), 1u);
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 2);
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, ARunningCallerLeavesTheLoopsTasksToTheLoop) {
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  std::thread first = BlockedCaller(queue.get(), 1);
  const std::thread::id caller = first.get_id();
  // The caller runs the shared lane; this task is in the loop's, and its run is deferred.
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  EXPECT_EQ(loop.size(), 1u);
  gate.Notify();
  first.join();
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(queue->queued_tasks(), 1);
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(model.threads, (std::vector<std::thread::id>{caller, std::this_thread::get_id()}));
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, ACallerDoesNotRunTheLoopsTasks) {
  gate.Notify();
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  std::thread::id caller;
  std::thread other([&] {
    caller = std::this_thread::get_id();
    EXPECT_TRUE(queue->Schedule(Task(1, 2, &done)).ok());
  });
  other.join();
  // The caller ran its own task alone; the loop's waits for the loop.
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{2}));
  EXPECT_EQ(model.threads, (std::vector<std::thread::id>{caller}));
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{2, 1}));
  EXPECT_TRUE(loop.empty());
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, ALongRunGivesTheLoopItsTurnBetweenBatches) {
  gate.Notify();
  model.delay = absl::Milliseconds(3);  // longer than a deferred run's budget
  auto queue = TwoRowQueue(10);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  }
  ASSERT_EQ(loop.size(), 1u);
  // Each turn runs one batch and defers the rest behind whatever the loop has queued.
  loop.push_back([] {});
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 2);
  ASSERT_EQ(loop.size(), 2u);
  EXPECT_TRUE(Step());  // the loop's own work
  EXPECT_EQ(done.load(), 2);
  int turns = 0;
  while (Step()) ++turns;
  EXPECT_EQ(turns, 2);
  EXPECT_EQ(done.load(), 6);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{2, 2, 2}));
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, OneRunPerLoopIsPendingWhateverMaxCallers) {
  gate.Notify();
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(2));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  }
  EXPECT_EQ(loop.size(), 1u);
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(model.batch_rows, (std::vector<int64_t>{3}));
  // The run is over: the next task is deferred again.
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  EXPECT_EQ(loop.size(), 1u);
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 4);
  scheduler.RemoveQueue(queue);
}

// Another thread with an event loop of its own: schedules `count` one-row tasks there, then
// runs that loop until it is empty.
void ScheduleAndRunOnOtherLoop(BatchQueue* queue, int count, std::atomic<int>* done,
                               std::thread::id* id) {
  std::deque<std::function<void()>> loop;
  t_loop = &loop;
  *id = std::this_thread::get_id();
  for (int i = 0; i < count; ++i) {
    EXPECT_TRUE(queue->ScheduleDeferred(Task(3, 1, done), &DeferToLoop).ok());
  }
  while (!loop.empty()) {
    std::function<void()> fn = std::move(loop.front());
    loop.pop_front();
    fn();
  }
  t_loop = nullptr;
}

TEST_F(DeferredTest, EachLoopBatchesAndRunsOnlyItsOwnTasksAndLoopsRunAtOnce) {
  // max_callers 1 bounds Schedule() callers, not loops.
  auto queue = scheduler.AddQueue("m", model.Fn(), CallerRuns(1));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  }
  std::thread::id other_id;
  std::thread other(ScheduleAndRunOnOtherLoop, queue.get(), 3, &done, &other_id);
  WaitRunning(1);  // the other loop's batch, inside the model
  EXPECT_EQ(queue->queued_tasks(), 2);
  std::thread mine([&] {
    t_loop = &loop;  // this test's loop, run from a thread that may block in the model
    EXPECT_TRUE(Step());
    t_loop = nullptr;
  });
  WaitRunning(2);  // both batches at once
  gate.Notify();
  other.join();
  mine.join();
  EXPECT_EQ(done.load(), 5);
  EXPECT_EQ(model.most_running.load(), 2);
  std::vector<int64_t> rows = model.batch_rows;
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, (std::vector<int64_t>{2, 3}));
  for (size_t i = 0; i < model.batch_rows.size(); ++i) {
    // The other thread ran its 3 tasks; this loop's 2 ran on the thread that ran this loop.
    EXPECT_EQ(model.batch_rows[i] == 3, model.threads[i] == other_id);
  }
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, TheLoopsBatchesCountTogetherAgainstTheQueueLimit) {
  gate.Notify();
  auto queue = TwoRowQueue(2);
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  // Two batches are queued in this loop's lane: another loop's task finds the queue full.
  std::thread other([&] {
    std::deque<std::function<void()>> other_loop;
    t_loop = &other_loop;
    EXPECT_EQ(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).code(),
              absl::StatusCode::kUnavailable);
    EXPECT_TRUE(other_loop.empty());
    t_loop = nullptr;
  });
  other.join();
  EXPECT_TRUE(Step());
  EXPECT_EQ(done.load(), 2);
  // Run and gone, the batches no longer count.
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  while (Step()) {
  }
  EXPECT_EQ(done.load(), 4);
  scheduler.RemoveQueue(queue);
}

TEST_F(DeferredTest, FullQueueRejectsDeferredTasks) {
  gate.Notify();
  auto queue = TwoRowQueue(1);
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 2, &done), &DeferToLoop).ok());
  // A rejected task is left with the caller, which answers it.
  BatchTask rejected = Task(1, 1, &done);
  EXPECT_EQ(queue->ScheduleDeferred(std::move(rejected), &DeferToLoop).code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(rejected.done);  // NOLINT(bugprone-use-after-move): not moved from on failure
  EXPECT_EQ(rejected.inputs.size(), 1u);
  rejected.done(absl::UnavailableError("full"));
  EXPECT_EQ(done.load(), 1);
  EXPECT_EQ(queue->ScheduleDeferred(Task(1, 3, &done), &DeferToLoop).message(),
            "Task size 3 is larger than maximum batch size 2");
  while (Step()) {
  }
  EXPECT_EQ(done.load(), 2);
  scheduler.RemoveQueue(queue);
}

TEST(BatchSchedulerTest, DeferredTasksOfAQueueServedByBatchThreadsGoToThem) {
  FakeModel model;
  BatchScheduler scheduler(1);
  BatchQueueOptions options;
  options.max_batch_size = 4;
  auto queue = scheduler.AddQueue("m", model.Fn(), options);
  std::deque<std::function<void()>> loop;
  t_loop = &loop;
  std::atomic<int> done{0};
  ASSERT_TRUE(queue->ScheduleDeferred(Task(1, 1, &done), &DeferToLoop).ok());
  t_loop = nullptr;
  EXPECT_TRUE(loop.empty());
  ASSERT_TRUE(WaitCount(done, 1));
  ASSERT_EQ(model.threads.size(), 1u);
  EXPECT_NE(model.threads[0], std::this_thread::get_id());
  scheduler.RemoveQueue(queue);
}

}  // namespace
}  // namespace inferd::serving
