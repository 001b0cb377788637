// A fixed pool for intra-op parallelism, shared by all kernels of a process (one per CpuDevice).
// ParallelFor is thread-safe: concurrent callers take turns, and a call made from inside a
// pool task runs inline, so nested parallelism cannot deadlock.
#ifndef INFERD_MODELS_THREAD_POOL_H_
#define INFERD_MODELS_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace inferd::models {

class ThreadPool {
 public:
  // `num_threads` is the total parallelism including the calling thread (>= 1); the pool
  // starts num_threads - 1 workers.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(begin, end) over a partition of [0, n) into at most num_threads() contiguous
  // ranges of at least `min_chunk` items; returns when all have finished. `fn` is taken by
  // reference (no copy, no allocation): both calls return only after its last use.
  void ParallelFor(int64_t n, int64_t min_chunk, absl::FunctionRef<void(int64_t, int64_t)> fn);

  // Runs fn(task) for task in [0, num_tasks), distributing tasks dynamically.
  void ParallelTasks(int64_t num_tasks, absl::FunctionRef<void(int64_t)> fn);

 private:
  void WorkerLoop();
  void RunTasks();

  const int num_threads_;
  std::vector<std::thread> workers_;

  std::mutex call_mu_;  // serialises concurrent ParallelFor callers

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;  // guarded by mu_; bumped per job
  bool stop_ = false;        // guarded by mu_
  // Workers inside the current job: incremented under mu_ when joining, decremented without it
  // when leaving, so the caller can spin on it instead of sleeping.
  std::atomic<int> active_workers_{0};

  // The current job; written under mu_ before next_task_ is reset (release), so a worker that
  // takes a task index from next_task_ (acquire) sees the job and count it belongs to.
  std::atomic<const absl::FunctionRef<void(int64_t)>*> job_{nullptr};
  std::atomic<int64_t> num_tasks_{0};
  std::atomic<int64_t> next_task_{0};
  std::atomic<uint64_t> published_generation_{0};
};

}  // namespace inferd::models

#endif  // INFERD_MODELS_THREAD_POOL_H_
