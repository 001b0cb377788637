#include "balancer/version_tracker.h"

#include <grpcpp/client_context.h>

#include <memory>
#include <vector>

#include "tensorflow_serving/apis/model_service.grpc.pb.h"

namespace inferd::balancer {
namespace {

using tensorflow::serving::GetModelStatusRequest;
using tensorflow::serving::GetModelStatusResponse;
using tensorflow::serving::ModelVersionStatus;

// GetModelStatus for `model` (and `label`, if not empty) on `channel`; the AVAILABLE versions,
// or nothing when the call failed.
bool AvailableVersions(tensorflow::serving::ModelService::Stub& stub, const std::string& model,
                       const std::string& label, absl::Duration timeout,
                       std::set<int64_t>* versions) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  GetModelStatusRequest request;
  request.mutable_model_spec()->set_name(model);
  if (!label.empty()) request.mutable_model_spec()->set_version_label(label);
  GetModelStatusResponse response;
  if (!stub.GetModelStatus(&context, request, &response).ok()) return false;
  for (const ModelVersionStatus& s : response.model_version_status()) {
    if (s.state() == ModelVersionStatus::AVAILABLE) versions->insert(s.version());
  }
  return true;
}

}  // namespace

VersionTracker::VersionTracker(Balancer* balancer, VersionTrackerOptions options)
    : balancer_(balancer), options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

VersionTracker::~VersionTracker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void VersionTracker::Note(const ModelRequirement& need) {
  std::lock_guard<std::mutex> lock(mu_);
  bool added = false;
  if (models_.size() < options_.max_models) added = models_.insert(need.model).second;
  if (need.label && labels_.size() < options_.max_models) {
    added = labels_.insert({need.model, *need.label}).second || added;
  }
  if (added) cv_.notify_all();  // poll the newcomer now rather than at the next round
}

void VersionTracker::PollNow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poll_now_ = true;
  }
  cv_.notify_all();
}

void VersionTracker::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    poll_now_ = false;  // this round serves the requests made so far
    const std::set<std::string> models = models_;
    const std::set<std::pair<std::string, std::string>> labels = labels_;
    lock.unlock();
    for (const auto& replica : *balancer_->replicas()) {
      if (replica->shared_channel() == nullptr || !replica->healthy()) continue;
      auto stub = tensorflow::serving::ModelService::NewStub(replica->shared_channel());
      auto have = std::make_shared<ModelAvailability>();
      bool answered = false;
      for (const std::string& model : models) {
        std::set<int64_t> versions;
        if (AvailableVersions(*stub, model, "", options_.timeout, &versions)) {
          answered = true;
          if (!versions.empty()) have->versions[model] = std::move(versions);
        }
      }
      for (const auto& [model, label] : labels) {
        std::set<int64_t> versions;
        if (AvailableVersions(*stub, model, label, options_.timeout, &versions) &&
            !versions.empty()) {
          have->labels.insert({model, label});
        }
      }
      if (answered || models.empty()) replica->set_models(std::move(have));
    }
    lock.lock();
    const size_t seen = models_.size() + labels_.size();
    cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.interval),
                 [&] { return stop_ || poll_now_ || models_.size() + labels_.size() != seen; });
  }
}

}  // namespace inferd::balancer
