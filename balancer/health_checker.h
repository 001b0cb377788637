// Active health checks: every `interval`, a grpc.health.v1 Check (service "") to each replica,
// at most one in flight per replica, each with `timeout`. `unhealthy_after` consecutive failures
// (an error, a timeout, or any answer but SERVING) mark a replica unhealthy, so the balancer
// stops picking it; one SERVING answer marks it healthy again. This catches what passive
// ejection cannot: a replica that hangs (calls would wait for their deadline) or reports
// NOT_SERVING while it drains. Starts in the constructor, stops (waiting for checks in flight,
// which end by their deadline) in the destructor. Thread-safe.
#ifndef INFERD_BALANCER_HEALTH_CHECKER_H_
#define INFERD_BALANCER_HEALTH_CHECKER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "balancer/balancer.h"

namespace inferd::balancer {

struct HealthCheckOptions {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(1);
  int unhealthy_after = 2;
};

class HealthChecker {
 public:
  // `on_change` (may be empty) is called after a replica's health changed.
  HealthChecker(Balancer* balancer, HealthCheckOptions options, std::function<void()> on_change);
  ~HealthChecker();

 private:
  struct Check;
  void Loop();
  void Finish(Check* check, bool serving);

  Balancer* const balancer_;
  const HealthCheckOptions options_;
  const std::function<void()> on_change_;
  // Per replica key: consecutive failures, and whether a check is in flight.
  struct Tally {
    int failures = 0;
    bool in_flight = false;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                    // guarded by mu_
  int in_flight_ = 0;                    // guarded by mu_
  std::map<std::string, Tally> tallies_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace inferd::balancer

#endif  // INFERD_BALANCER_HEALTH_CHECKER_H_
