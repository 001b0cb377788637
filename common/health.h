// Health of a process that serves (inferd-server, inferd-gateway): SERVING while its readiness
// function says so and it is not draining. Backs grpc.health.v1 (Check and Watch), /readyz and
// probes. Thread-safe; watchers are called without the lock held.
#ifndef INFERD_COMMON_HEALTH_H_
#define INFERD_COMMON_HEALTH_H_

#include <functional>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace inferd {

class HealthState {
 public:
  // `ready` reports whether the process can do its work (server: every configured model has an
  // AVAILABLE version; gateway: some replica is routable).
  explicit HealthState(std::function<bool()> ready) : ready_(std::move(ready)) {}

  bool serving() const;
  // Re-evaluates readiness and notifies watchers if it changed.
  void Update();
  // From now on NOT_SERVING (SIGTERM).
  void SetDraining();
  bool draining() const;

  // Returns an id for Unwatch. `fn` is called with each new value.
  int Watch(std::function<void(bool serving)> fn);
  // After Unwatch returns, the watcher is not running and will not be called again.
  void Unwatch(int id);

 private:
  void Notify(bool force);

  const std::function<bool()> ready_;
  absl::Mutex notify_mu_;  // held while watchers run; taken before mu_
  mutable absl::Mutex mu_;
  bool last_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void(bool)>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd

#endif  // INFERD_COMMON_HEALTH_H_
