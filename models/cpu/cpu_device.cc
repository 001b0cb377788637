#include "models/cpu/cpu_device.h"

#include <thread>

namespace inferd::models {
namespace {

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

CpuDevice::CpuDevice(int intra_op_threads) : pool_(ResolveThreads(intra_op_threads)) {}

}  // namespace inferd::models
