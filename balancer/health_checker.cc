#include "balancer/health_checker.h"

#include <grpcpp/client_context.h>

#include <memory>
#include <set>
#include <vector>

#include "common/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace inferd::balancer {

struct HealthChecker::Check {
  std::shared_ptr<Replica> replica;
  std::unique_ptr<grpc::health::v1::Health::Stub> stub;
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
};

HealthChecker::HealthChecker(Balancer* balancer, HealthCheckOptions options,
                             std::function<void()> on_change)
    : balancer_(balancer), options_(options), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] { Loop(); });
}

HealthChecker::~HealthChecker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void HealthChecker::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const std::shared_ptr<const ReplicaSet> set = balancer_->replicas();
    std::set<std::string> current;
    std::vector<std::unique_ptr<Check>> start;
    for (const auto& replica : *set) {
      current.insert(replica->key());
      Tally& tally = tallies_[replica->key()];
      if (tally.in_flight || replica->shared_channel() == nullptr) continue;
      tally.in_flight = true;
      ++in_flight_;
      auto check = std::make_unique<Check>();
      check->replica = replica;
      check->stub = grpc::health::v1::Health::NewStub(replica->shared_channel());
      check->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
      start.push_back(std::move(check));
    }
    for (auto it = tallies_.begin(); it != tallies_.end();) {  // replicas gone from discovery
      it = current.count(it->first) || it->second.in_flight ? std::next(it) : tallies_.erase(it);
    }
    lock.unlock();
    for (auto& owned : start) {
      Check* check = owned.release();  // deleted by Finish
      check->stub->async()->Check(&check->context, &check->request, &check->response,
                                  [this, check](grpc::Status status) {
                                    Finish(check, status.ok() &&
                                                      check->response.status() ==
                                                          grpc::health::v1::HealthCheckResponse::
                                                              SERVING);
                                  });
    }
    lock.lock();
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.interval), [this] { return stop_; });
  }
}

void HealthChecker::Finish(Check* check, bool serving) {
  std::unique_ptr<Check> owned(check);
  Replica& replica = *check->replica;
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Tally& tally = tallies_[replica.key()];
    tally.in_flight = false;
    tally.failures = serving ? 0 : tally.failures + 1;
    const bool healthy = serving || (replica.healthy() && tally.failures < options_.unhealthy_after);
    if (healthy != replica.healthy()) {
      replica.set_healthy(healthy);
      changed = true;
    }
  }
  if (changed) {
    if (replica.healthy()) balancer_->Rejoined(replica, absl::Now());
    INFERD_LOG(INFO) << "replica " << replica.endpoint().GrpcTarget() << " is now "
                     << (replica.healthy() ? "healthy" : "unhealthy") << " (health check)";
    if (on_change_) on_change_();
  }
  owned.reset();  // before the count drops: the destructor may be waiting for it
  std::lock_guard<std::mutex> lock(mu_);
  --in_flight_;
  cv_.notify_all();
}

}  // namespace inferd::balancer
