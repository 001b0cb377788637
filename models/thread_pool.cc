#include "models/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace inferd::models {
namespace {

thread_local bool in_pool_task = false;

// How long an idle worker spins before sleeping, and how long a caller spins for its job's
// last workers before sleeping: long enough to bridge the gap between a running model's
// operators without a wake-up (a futex wake costs tens to hundreds of microseconds on a busy
// host), short enough to give the core back when the model is idle.
constexpr auto kSpinTime = std::chrono::microseconds(1000);

inline void Pause() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunTasks() {
  const bool was_in_task = in_pool_task;
  in_pool_task = true;
  for (;;) {
    const int64_t t = next_task_.fetch_add(1, std::memory_order_acq_rel);
    if (t >= num_tasks_.load(std::memory_order_relaxed)) break;
    (*job_.load(std::memory_order_relaxed))(t);
  }
  in_pool_task = was_in_task;
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly for the next job before sleeping.
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    while (published_generation_.load(std::memory_order_acquire) == seen &&
           std::chrono::steady_clock::now() < spin_until) {
      Pause();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      active_workers_.fetch_add(1, std::memory_order_relaxed);
    }
    RunTasks();
    if (active_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's predicate check
      done_cv_.notify_all();
    }
  }
}

void ThreadPool::ParallelTasks(int64_t num_tasks, absl::FunctionRef<void(int64_t)> fn) {
  if (num_tasks <= 0) return;
  if (num_tasks == 1 || workers_.empty() || in_pool_task) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_.store(&fn, std::memory_order_relaxed);
    num_tasks_.store(num_tasks, std::memory_order_relaxed);
    next_task_.store(0, std::memory_order_release);
    ++generation_;
    published_generation_.store(generation_, std::memory_order_release);
  }
  work_cv_.notify_all();
  RunTasks();
  // Workers that have not yet picked up this generation will find no tasks left; wait only for
  // those inside it: spin first, then sleep.
  const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
  while (active_workers_.load(std::memory_order_acquire) != 0 &&
         std::chrono::steady_clock::now() < spin_until) {
    Pause();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return active_workers_.load(std::memory_order_acquire) == 0; });
  // Leave the counter exhausted so a late worker finds nothing to run.
  num_tasks_.store(0, std::memory_order_relaxed);
}

void ThreadPool::ParallelFor(int64_t n, int64_t min_chunk,
                             absl::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t chunks = std::min<int64_t>(num_threads_, (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  ParallelTasks(chunks, [&](int64_t c) {
    const int64_t begin = n * c / chunks;
    const int64_t end = n * (c + 1) / chunks;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace inferd::models
