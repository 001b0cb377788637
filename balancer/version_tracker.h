// Learns which model versions and labels every replica has AVAILABLE, by polling
// tensorflow.serving.ModelService/GetModelStatus on each: for every model name requests have
// used (at most `max_models`), and for every (model, label) they have asked for. Results go to
// Replica::set_models, where Balancer::Pick reads them. Starts in the constructor, stops in the
// destructor. Thread-safe.
#ifndef INFERD_BALANCER_VERSION_TRACKER_H_
#define INFERD_BALANCER_VERSION_TRACKER_H_

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "balancer/balancer.h"
#include "balancer/model_routing.h"

namespace inferd::balancer {

struct VersionTrackerOptions {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Milliseconds(500);  // per GetModelStatus call
  size_t max_models = 64;                            // names (and labels) remembered
};

class VersionTracker {
 public:
  VersionTracker(Balancer* balancer, VersionTrackerOptions options);
  ~VersionTracker();

  // A request named this model (and maybe a label): poll for it from now on.
  void Note(const ModelRequirement& need);
  // A replica's health changed: poll every replica now rather than at the next round. A replica
  // that comes back is preferred less than those known to have the model until it has been
  // polled (and it is not polled while its health checks fail), so this lets it compete at once.
  void PollNow();

 private:
  void Loop();

  Balancer* const balancer_;
  const VersionTrackerOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                                     // guarded by mu_
  bool poll_now_ = false;                                 // guarded by mu_
  std::set<std::string> models_;                          // guarded by mu_
  std::set<std::pair<std::string, std::string>> labels_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_VERSION_TRACKER_H_
