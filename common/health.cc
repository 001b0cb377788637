#include "common/health.h"

#include <vector>

namespace inferd {

bool HealthState::serving() const {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return false;
  }
  return ready_();
}

bool HealthState::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void HealthState::Update() { Notify(false); }

void HealthState::Notify(bool force) {
  absl::MutexLock notifying(&notify_mu_);
  const bool now = serving();
  std::vector<std::function<void(bool)>> notify;
  {
    absl::MutexLock lock(&mu_);
    if (now == last_ && !force) return;
    last_ = now;
    for (auto& [id, fn] : watchers_) notify.push_back(fn);
  }
  for (auto& fn : notify) fn(now);
}

void HealthState::SetDraining() {
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  Notify(true);  // watchers end their streams on the draining notification
}

int HealthState::Watch(std::function<void(bool)> fn) {
  absl::MutexLock lock(&mu_);
  watchers_[next_id_] = std::move(fn);
  return next_id_++;
}

void HealthState::Unwatch(int id) {
  absl::MutexLock notifying(&notify_mu_);
  absl::MutexLock lock(&mu_);
  watchers_.erase(id);
}

}  // namespace inferd
