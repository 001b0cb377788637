#include "serving/batch_scheduler.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace inferd::serving {
namespace {

// Concatenates the i-th input of every task along dimension 0 and pads with copies of the first
// row up to `rows`.
absl::StatusOr<models::Tensor> Concatenate(const std::vector<BatchTask>& tasks, size_t input,
                                           int64_t rows) {
  const models::Tensor& first = tasks[0].inputs[input];
  models::Shape shape = first.shape();
  shape[0] = rows;
  auto out = models::Tensor::Create(first.dtype(), shape);
  if (!out.ok()) return out.status();
  char* dst = static_cast<char*>(out->raw_data());
  const size_t row_bytes = first.dim(0) > 0 ? first.byte_size() / first.dim(0) : 0;
  size_t offset = 0;
  for (const BatchTask& t : tasks) {
    const models::Tensor& x = t.inputs[input];
    std::memcpy(dst + offset, x.raw_data(), x.byte_size());
    offset += x.byte_size();
  }
  while (offset < static_cast<size_t>(rows) * row_bytes) {
    std::memcpy(dst + offset, first.raw_data(), row_bytes);
    offset += row_bytes;
  }
  return out;
}

// Rows [begin, begin + count) of `t` as a new tensor.
absl::StatusOr<models::Tensor> SliceRows(const models::Tensor& t, int64_t begin, int64_t count) {
  models::Shape shape = t.shape();
  const size_t row_bytes = t.byte_size() / static_cast<size_t>(t.dim(0));
  shape[0] = count;
  auto out = models::Tensor::Create(t.dtype(), shape);
  if (!out.ok()) return out.status();
  std::memcpy(out->raw_data(), static_cast<const char*>(t.raw_data()) + begin * row_bytes,
              count * row_bytes);
  return out;
}

bool SameInnerShape(const BatchTask& a, const BatchTask& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const models::Shape& x = a.inputs[i].shape();
    const models::Shape& y = b.inputs[i].shape();
    if (x.size() != y.size() || a.inputs[i].dtype() != b.inputs[i].dtype()) return false;
    if (!std::equal(x.begin() + 1, x.end(), y.begin() + 1)) return false;
  }
  return true;
}

int64_t TaskSize(const BatchTask& task) {
  return task.inputs.empty() || task.inputs[0].rank() == 0 ? 1 : task.inputs[0].dim(0);
}

// How long a deferred run may keep its event loop (see RunDeferred).
constexpr absl::Duration kDeferredRunBudget = absl::Milliseconds(1);

}  // namespace

absl::Status BatchQueue::CheckTaskSize(int64_t size) const {
  if (options_.merge && size > options_.max_batch_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("Task size ", size, " is larger than maximum batch size ",
                     options_.max_batch_size));
  }
  return absl::OkStatus();
}

absl::Status BatchQueue::Schedule(BatchTask&& task) { return Enqueue(std::move(task), nullptr); }

absl::Status BatchQueue::ScheduleDeferred(BatchTask&& task, DeferFn defer) {
  return Enqueue(std::move(task), defer);
}

BatchQueue::Lane* BatchQueue::LaneLocked(DeferFn defer) {
  if (defer == nullptr || !options_.caller_runs) return &shared_;
  auto& lane = loop_lanes_[std::this_thread::get_id()];
  if (!lane) lane = std::make_unique<Lane>();
  return lane.get();
}

absl::Status BatchQueue::Enqueue(BatchTask&& task, DeferFn defer) {
  const int64_t size = TaskSize(task);
  RETURN_IF_ERROR(CheckTaskSize(size));
  const absl::Time now = absl::Now();
  Lane* lane;
  {
    absl::MutexLock lock(&scheduler_->mu_);
    lane = LaneLocked(defer);
    std::deque<Batch>& batches = lane->batches;
    Batch* open = batches.empty() || batches.back().closed ? nullptr : &batches.back();
    if (open != nullptr &&
        (!options_.merge || open->size + size > options_.max_batch_size ||
         !SameInnerShape(open->tasks[0], task))) {
      open->closed = true;
      open = nullptr;
    }
    if (open == nullptr) {
      if (enqueued_batches_ >= options_.max_enqueued_batches) {
        return absl::UnavailableError(
            "The batch scheduling queue to which this task was submitted is full");
      }
      ++enqueued_batches_;
      batches.emplace_back();
      open = &batches.back();
    }
    open->tasks.push_back(std::move(task));
    open->size += size;
    open->oldest = std::min(open->oldest, now);
    if (!options_.merge || open->size >= options_.max_batch_size) open->closed = true;
    ++queued_;
    // Wake the batch threads only for queues they serve.
    if (!options_.caller_runs) ++scheduler_->generation_;
    if (options_.caller_runs && defer != nullptr) {
      // The lane's running or pending deferred run takes the task.
      if (lane->callers + lane->deferred_runs >= MaxCallers(lane)) return absl::OkStatus();
      ++lane->deferred_runs;
    }
  }
  if (!options_.caller_runs) return absl::OkStatus();
  if (defer != nullptr) {
    Defer(defer, lane);
  } else {
    RunAsCaller(lane);
  }
  return absl::OkStatus();
}

void BatchQueue::Defer(DeferFn defer, Lane* lane) {
  if (defer([self = shared_from_this(), defer, lane] { self->RunDeferred(defer, lane); })) return;
  {
    absl::MutexLock lock(&scheduler_->mu_);
    --lane->deferred_runs;
  }
  RunAsCaller(lane);
}

void BatchQueue::RunDeferred(DeferFn defer, Lane* lane) {
  {
    absl::MutexLock lock(&scheduler_->mu_);
    --lane->deferred_runs;
    // Only the lane's own thread runs it, so nothing else should be running it now; if
    // something is, that run takes the batches.
    if (lane->callers >= MaxCallers(lane)) return;
    ++lane->callers;
    // Batches run until the lane is empty (tasks that arrive meanwhile, from this loop's other
    // connections, form the next ones), but for no longer than kDeferredRunBudget: then the
    // loop gets its turn, and the run is deferred again.
    RunBatchesLocked(lane, absl::Now() + kDeferredRunBudget);
    --lane->callers;
    if (lane->batches.empty() || lane->callers + lane->deferred_runs >= MaxCallers(lane)) return;
    ++lane->deferred_runs;
  }
  Defer(defer, lane);
}

void BatchQueue::RunAsCaller(Lane* lane) {
  // Running the last task may drop the last handle on this queue's model version, which removes
  // the queue: keep it alive until the loop is done.
  const std::shared_ptr<BatchQueue> self = shared_from_this();
  absl::MutexLock lock(&scheduler_->mu_);
  if (lane->callers >= MaxCallers(lane)) return;  // a running caller will take the task
  ++lane->callers;
  RunBatchesLocked(lane, absl::InfiniteFuture());
  --lane->callers;
}

void BatchQueue::RunBatchesLocked(Lane* lane, absl::Time until) {
  while (!lane->batches.empty() && (until == absl::InfiniteFuture() || absl::Now() < until)) {
    Batch batch = std::move(lane->batches.front());
    lane->batches.pop_front();
    --enqueued_batches_;
    queued_ -= static_cast<int64_t>(batch.tasks.size());
    scheduler_->mu_.Unlock();
    Process(std::move(batch));
    scheduler_->mu_.Lock();
  }
}

void BatchQueue::Process(Batch batch) {
  const absl::Time now = absl::Now();
  // Requests whose deadline passed while queued are not run.
  std::vector<BatchTask> live;
  live.reserve(batch.tasks.size());
  for (BatchTask& t : batch.tasks) {
    if (t.deadline <= now) {
      t.done(absl::DeadlineExceededError("the request's deadline passed before it was run"));
    } else {
      live.push_back(std::move(t));
    }
  }
  if (live.empty()) return;
  BatchStats stats;
  stats.tasks = static_cast<int64_t>(live.size());
  stats.oldest_wait = now - batch.oldest;
  for (const BatchTask& t : live) stats.batch_size += TaskSize(t);

  if (!options_.merge || (live.size() == 1 && options_.allowed_batch_sizes.empty())) {
    // Run as is: no concatenation, no split.
    for (BatchTask& t : live) {
      if (on_batch_) on_batch_(BatchStats{1, TaskSize(t), 0, stats.oldest_wait});
      t.done(run_(t.inputs));
    }
    return;
  }
  int64_t rows = stats.batch_size;
  for (int64_t allowed : options_.allowed_batch_sizes) {
    if (allowed >= rows) {
      rows = allowed;
      break;
    }
  }
  stats.padding = rows - stats.batch_size;
  if (on_batch_) on_batch_(stats);

  auto fail_all = [&](const absl::Status& s) {
    for (BatchTask& t : live) t.done(s);
  };
  std::vector<models::Tensor> inputs;
  for (size_t i = 0; i < live[0].inputs.size(); ++i) {
    auto t = Concatenate(live, i, rows);
    if (!t.ok()) return fail_all(t.status());
    inputs.push_back(std::move(*t));
  }
  absl::StatusOr<std::vector<models::Tensor>> outputs = run_(inputs);
  if (!outputs.ok()) return fail_all(outputs.status());
  for (const models::Tensor& out : *outputs) {
    if (out.rank() == 0 || out.dim(0) != rows) {
      return fail_all(absl::InternalError(absl::StrCat(
          "model ", name_, " returned an output of shape ", models::ShapeToString(out.shape()),
          " for a batch of ", rows, " rows; its outputs are not batched along dimension 0")));
    }
  }
  int64_t begin = 0;
  for (BatchTask& t : live) {
    const int64_t size = TaskSize(t);
    std::vector<models::Tensor> mine;
    absl::Status status;
    for (const models::Tensor& out : *outputs) {
      auto slice = SliceRows(out, begin, size);
      if (!slice.ok()) {
        status = slice.status();
        break;
      }
      mine.push_back(std::move(*slice));
    }
    begin += size;
    if (status.ok()) {
      t.done(std::move(mine));
    } else {
      t.done(status);
    }
  }
}

BatchScheduler::BatchScheduler(int num_threads) {
  for (int i = 0; i < std::max(1, num_threads); ++i) {
    threads_.emplace_back([this] { ThreadLoop(); });
  }
}

BatchScheduler::~BatchScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

std::shared_ptr<BatchQueue> BatchScheduler::AddQueue(
    std::string name, BatchRunFn run, BatchQueueOptions options,
    std::function<void(const BatchStats&)> on_batch) {
  std::shared_ptr<BatchQueue> queue(new BatchQueue(this, std::move(name), std::move(run),
                                                   std::move(options), std::move(on_batch)));
  absl::MutexLock lock(&mu_);
  queues_.push_back(queue);
  return queue;
}

void BatchScheduler::RemoveQueue(const std::shared_ptr<BatchQueue>& queue) {
  absl::MutexLock lock(&mu_);
  // Queued tasks hold handles to their model version, so a version's queue is removed (when the
  // version is destroyed) only after its last task has run.
  auto it = std::find(queues_.begin(), queues_.end(), queue);
  if (it != queues_.end()) queues_.erase(it);
}

bool BatchScheduler::TakeReadyLocked(std::shared_ptr<BatchQueue>* queue, BatchQueue::Batch* batch,
                                     absl::Time* next_wake) {
  const absl::Time now = absl::Now();
  *next_wake = absl::InfiniteFuture();
  for (size_t k = 0; k < queues_.size(); ++k) {
    const size_t i = (next_queue_ + k) % queues_.size();
    BatchQueue& q = *queues_[i];
    if (q.shared_.batches.empty() || q.options_.caller_runs) continue;  // callers serve those
    BatchQueue::Batch& front = q.shared_.batches.front();
    const absl::Time ready_at = front.closed ? now : front.oldest + q.options_.batch_timeout;
    if (ready_at <= now) {
      *queue = queues_[i];
      *batch = std::move(front);
      q.shared_.batches.pop_front();
      --q.enqueued_batches_;
      q.queued_ -= static_cast<int64_t>(batch->tasks.size());
      next_queue_ = i + 1;
      return true;
    }
    *next_wake = std::min(*next_wake, ready_at);
  }
  return false;
}

void BatchScheduler::ThreadLoop() {
  while (true) {
    std::shared_ptr<BatchQueue> queue;
    BatchQueue::Batch batch;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        absl::Time next_wake;
        if (TakeReadyLocked(&queue, &batch, &next_wake)) break;
        if (stop_) return;
        const int64_t seen = generation_;
        auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || generation_ != seen;
        };
        mu_.AwaitWithDeadline(absl::Condition(&changed), next_wake);
      }
    }
    queue->Process(std::move(batch));
  }
}

}  // namespace inferd::serving
