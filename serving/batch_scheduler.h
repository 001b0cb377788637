// Dynamic batching (TF Serving's shared batch scheduler): one queue per model version, one pool of
// batch threads shared by all queues, served round-robin.
//
// A queue is a deque of batches of which only the last is open. A task joins the open batch if it
// fits (and its non-batch dimensions match the batch's); otherwise that batch closes and a new
// one opens. If that would exceed max_enqueued_batches, Schedule() fails at once with
// UNAVAILABLE: nothing ever blocks. A free batch thread takes a closed batch at once, and the open
// one once its oldest task has waited batch_timeout (zero: at once). It drops tasks whose
// deadline passed, concatenates inputs along dimension 0, pads to the next allowed batch size,
// runs the model once, and splits the outputs back to the tasks.
//
// A queue with `caller_runs` (for models cheaper than a thread handoff, batch_timeout zero) is
// never served by the batch threads: the thread that schedules a task, finding fewer than
// `max_callers` threads running this queue's batches, runs batches itself until the queue is
// empty. Tasks that arrive meanwhile form the next batch, so batches grow with the load and no
// thread is woken to run them. (So Schedule() may take a while.) Callers whose thread serves
// other work in an event loop, such as an HTTP server's I/O threads, use ScheduleDeferred()
// instead. Each such thread has a lane of its own in the queue, for the tasks it scheduled: its
// loop runs them, in batches, after the events already waiting (other connections' requests,
// which join the batch), and is free between batches. A loop thus never waits for batches that
// another thread runs, nor is woken to write answers that another thread computed: with a
// shared lane, the I/O thread whose requests sat in the other's batch was idle meanwhile, and
// the machine with it (about a sixth of 2 cores under bench/serving's REST load). The lanes'
// batches count together against max_enqueued_batches.
//
// Thread-safe. Queues may be added and removed while the scheduler runs.
#ifndef INFERD_SERVING_BATCH_SCHEDULER_H_
#define INFERD_SERVING_BATCH_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "models/tensor.h"

namespace inferd::serving {

struct BatchQueueOptions {
  // Tasks are merged into batches of at most this many rows. With `merge` off every task is run
  // alone (and may have any size).
  bool merge = true;
  int64_t max_batch_size = 1000;
  absl::Duration batch_timeout = absl::ZeroDuration();
  int64_t max_enqueued_batches = 10;
  // Increasing; the last equals max_batch_size. Empty: batches run at their natural size.
  std::vector<int64_t> allowed_batch_sizes;
  // Batches run on the threads that call Schedule() (see above); requires a zero batch_timeout.
  bool caller_runs = false;
  // Schedule() callers running batches at once (each event loop also runs its own lane's).
  int max_callers = 1;
};

struct BatchStats {
  int64_t tasks = 0;
  int64_t batch_size = 0;   // rows of real requests
  int64_t padding = 0;      // rows added to reach an allowed size
  absl::Duration oldest_wait;
};

// Queues `fn` to run on the calling thread's event loop after the work already waiting there,
// and returns true; returns false (and drops `fn`) on a thread that has no such loop.
using DeferFn = bool (*)(std::function<void()> fn);

// Runs one batch; outputs must have dimension 0 equal to the input batch size (when merged).
using BatchRunFn =
    std::function<absl::StatusOr<std::vector<models::Tensor>>(const std::vector<models::Tensor>&)>;

struct BatchTask {
  std::vector<models::Tensor> inputs;  // all with the same dimension 0 (the task size)
  absl::Time deadline = absl::InfiniteFuture();
  // Receives this task's outputs (or the error). Called exactly once, on a batch thread (or, with
  // caller_runs, on a thread inside Schedule()), or not at all if Schedule() fails.
  std::function<void(absl::StatusOr<std::vector<models::Tensor>>)> done;
};

class BatchScheduler;

class BatchQueue : public std::enable_shared_from_this<BatchQueue> {
 public:
  // UNAVAILABLE "The batch scheduling queue to which this task was submitted is full" when full;
  // INVALID_ARGUMENT when a task is larger than max_batch_size; a task that fails is not moved
  // from (the caller still has it, done not called). With caller_runs it may run batches (this
  // task's among them) before it returns. The same holds for ScheduleDeferred.
  absl::Status Schedule(BatchTask&& task);
  // For a caller_runs queue, from a thread that runs an event loop: queues `task` in this
  // thread's lane and, unless the lane is running or has a deferred run pending, defers a run
  // to the loop with `defer`. The deferred run drains the lane as a caller would, but after 1 ms
  // of batches defers itself again, so that the loop gets its turn. If `defer` declines, runs
  // the lane now as Schedule() does. The loop must run what `defer` accepted: the lane's tasks
  // wait for it (an HttpServer drains its requests before it stops its loops). Without
  // caller_runs: Schedule().
  absl::Status ScheduleDeferred(BatchTask&& task, DeferFn defer);
  // Tasks waiting (not yet taken by a batch thread); a lock-free read, for metrics.
  int64_t queued_tasks() const { return queued_.load(std::memory_order_relaxed); }
  const BatchQueueOptions& options() const { return options_; }

 private:
  friend class BatchScheduler;
  struct Batch {
    std::vector<BatchTask> tasks;
    int64_t size = 0;
    absl::Time oldest = absl::InfiniteFuture();
    bool closed = false;
  };
  // Batches and the threads that run them: the queue's shared lane (batch threads, Schedule()
  // callers) or one event loop's (ScheduleDeferred() from that loop's thread).
  struct Lane {
    std::deque<Batch> batches;
    int callers = 0;        // threads running its batches (RunAsCaller, RunDeferred)
    int deferred_runs = 0;  // RunDeferred calls queued on its loop
  };
  BatchQueue(BatchScheduler* scheduler, std::string name, BatchRunFn run,
             BatchQueueOptions options, std::function<void(const BatchStats&)> on_batch)
      : scheduler_(scheduler),
        name_(std::move(name)),
        run_(std::move(run)),
        options_(std::move(options)),
        on_batch_(std::move(on_batch)) {}
  void Process(Batch batch);
  // INVALID_ARGUMENT for a task of `size` rows larger than max_batch_size.
  absl::Status CheckTaskSize(int64_t size) const;
  // The lane a task from this thread joins: with `defer` (and caller_runs) the thread's own,
  // made on first use; otherwise the shared one.
  Lane* LaneLocked(DeferFn defer);
  // How many threads may run `lane`'s batches at once: max_callers for the shared lane, one
  // (the loop's) for a loop's.
  int MaxCallers(const Lane* lane) const { return lane == &shared_ ? options_.max_callers : 1; }
  // With caller_runs: runs `lane`'s batches until it is empty, unless enough threads already do.
  void RunAsCaller(Lane* lane);
  // With the scheduler's lock held by a thread counted in lane->callers: runs the lane's batches
  // (releasing the lock around each) until it is empty or `until` has passed.
  void RunBatchesLocked(Lane* lane, absl::Time until);
  // Schedule() and ScheduleDeferred() (`defer` null for the first).
  absl::Status Enqueue(BatchTask&& task, DeferFn defer);
  // The deferred run: `lane`'s batches until it is empty or 1 ms has passed, then defers itself
  // again while batches remain.
  void RunDeferred(DeferFn defer, Lane* lane);
  // Defers RunDeferred (lane->deferred_runs counted by the caller); runs the lane now if
  // `defer` declines.
  void Defer(DeferFn defer, Lane* lane);

  BatchScheduler* const scheduler_;
  const std::string name_;
  const BatchRunFn run_;
  const BatchQueueOptions options_;
  const std::function<void(const BatchStats&)> on_batch_;
  // Guarded by scheduler_->mu_. A loop's lane lives as long as the queue (they are few: one per
  // I/O thread that ever scheduled a task here).
  Lane shared_;
  std::unordered_map<std::thread::id, std::unique_ptr<Lane>> loop_lanes_;
  int64_t enqueued_batches_ = 0;  // in all lanes
  // Written under the lock; read without it by queued_tasks().
  std::atomic<int64_t> queued_{0};
};

class BatchScheduler {
 public:
  explicit BatchScheduler(int num_threads);
  // Stops the threads after the queued batches have run.
  ~BatchScheduler();

  // The queue runs batches with `run`; `on_batch` (may be empty) observes each batch.
  std::shared_ptr<BatchQueue> AddQueue(std::string name, BatchRunFn run, BatchQueueOptions options,
                                       std::function<void(const BatchStats&)> on_batch = {});
  // Stops scheduling the queue. Call when no task can be queued any more.
  void RemoveQueue(const std::shared_ptr<BatchQueue>& queue);

 private:
  friend class BatchQueue;
  void ThreadLoop();
  // A batch that may run now, round-robin over queues.
  bool TakeReadyLocked(std::shared_ptr<BatchQueue>* queue, BatchQueue::Batch* batch,
                       absl::Time* next_wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::vector<std::shared_ptr<BatchQueue>> queues_ ABSL_GUARDED_BY(mu_);
  size_t next_queue_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped when work arrives
  std::vector<std::thread> threads_;
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_BATCH_SCHEDULER_H_
