// A read-mostly cache for metric series (prometheus-cpp Family::Add builds a label map and takes
// the family's lock on every call, so hot paths resolve each label set once and keep the
// pointer; series are never removed, so pointers stay valid).
#ifndef INFERD_COMMON_SERIES_CACHE_H_
#define INFERD_COMMON_SERIES_CACHE_H_

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

// cache[key], made by make() (outside the lock: registering a series takes the registry's own)
// the first time. Two threads racing on a new key both make it, and the registry hands both
// the same series.
template <typename T, typename Make>
T CachedSeries(absl::Mutex& mu, absl::flat_hash_map<std::string, T>& cache, std::string key,
               const Make& make) {
  {
    absl::ReaderMutexLock lock(&mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  T value = make();
  absl::MutexLock lock(&mu);
  cache.emplace(std::move(key), value);
  return value;
}

}  // namespace inferd

#endif  // INFERD_COMMON_SERIES_CACHE_H_
