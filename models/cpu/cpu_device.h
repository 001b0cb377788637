// The CPU device: owns the intra-op thread pool that CPU kernels share. One per process is the
// norm (several models share it); thread-safe.
#ifndef INFERD_MODELS_CPU_CPU_DEVICE_H_
#define INFERD_MODELS_CPU_CPU_DEVICE_H_

#include <memory>

#include "models/thread_pool.h"

namespace inferd::models {

class CpuDevice {
 public:
  // `intra_op_threads` <= 0 means one per available core.
  explicit CpuDevice(int intra_op_threads = 0);
  ThreadPool& pool() { return pool_; }
  int num_threads() const { return pool_.num_threads(); }

 private:
  ThreadPool pool_;
};

}  // namespace inferd::models

#endif  // INFERD_MODELS_CPU_CPU_DEVICE_H_
