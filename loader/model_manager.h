// ModelManager: which model versions are served, and the handles requests use to reach them.
//
// It owns one control thread that scans each model's base path for version directories, applies
// the model's version policy, loads aspired versions through the LoadFn (which also warms them
// up), publishes them, and retires versions that are no longer aspired. Swaps preserve
// availability: an old version is unpublished only once a newer aspired version is AVAILABLE,
// and it is destroyed (on the control thread) only after its last handle is released. A version
// that fails to load is reported with its error and never replaces a good one; it is retried when
// its files change.
//
// Get() reads an immutable snapshot of the serving map, so the request path never waits for
// loads. All methods are thread-safe.
#ifndef INFERD_LOADER_MODEL_MANAGER_H_
#define INFERD_LOADER_MODEL_MANAGER_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "loader/servable.h"
#include "tensorflow_serving/config/model_server_config.pb.h"

namespace inferd::loader {

// The same numbers as tensorflow.serving.ModelVersionStatus.State.
enum class VersionState { kStart = 10, kLoading = 20, kAvailable = 30, kUnloading = 40, kEnd = 50 };
const char* VersionStateName(VersionState state);

struct VersionStatus {
  int64_t version = 0;
  VersionState state = VersionState::kStart;
  absl::Status status;  // the load error of a version that failed (state kEnd)
};

struct VersionEvent {
  std::string model;
  int64_t version = 0;
  VersionState state = VersionState::kStart;
  absl::Status status;
  absl::Duration duration;  // kAvailable / failed kEnd: load time; kEnd after unload: unload time
};

// Loads (and warms up) one version. Called on the control thread, never on a request thread.
using LoadFn = std::function<absl::StatusOr<std::shared_ptr<const Servable>>(
    const std::string& model, int64_t version, const std::filesystem::path& version_dir)>;

struct ModelManagerOptions {
  // How often base paths are scanned for new and removed versions. Zero or negative: only when a
  // config is applied or PollNow() is called.
  absl::Duration poll_interval = absl::Seconds(1);
  // Lets a config assign a *new* label to a version that is not AVAILABLE yet.
  bool allow_version_labels_for_unavailable_models = false;
  // Called after every version state change, on the control thread, with no lock held.
  std::function<void(const VersionEvent&)> on_event;
};

// What a request asks for: the latest AVAILABLE version, a specific one, or a label.
struct ServableRequest {
  std::string name;
  std::optional<int64_t> version;
  std::optional<std::string> label;

  // TF Serving's form: "Latest(m)", "Specific(m, 3)", "Label(m, stable)".
  std::string DebugString() const;
};

class ModelManager {
 public:
  static absl::StatusOr<std::unique_ptr<ModelManager>> Create(ModelManagerOptions options,
                                                              LoadFn load);
  // Stops the control thread and destroys every loaded version (waiting for their handles).
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Makes the served models match `config` exactly (TF Serving's reload semantics): models not in
  // it are unloaded, new ones are added, changed policies apply at once. Labels of models already
  // served are validated before anything changes (FAILED_PRECONDITION if a label would point at a
  // version that is not AVAILABLE). When `wait` is positive, waits up to that long for the models
  // new in this config to settle, then applies their labels and fails if one of them has no
  // AVAILABLE version.
  absl::Status ApplyConfig(const tensorflow::serving::ModelServerConfig& config,
                           absl::Duration wait);

  // NOT_FOUND "Servable not found for request: Latest(m)" and INVALID_ARGUMENT
  // "Unrecognized servable version label: L" as TF Serving answers.
  absl::StatusOr<ServableHandle> Get(const ServableRequest& request) const;

  // Newest version first. NOT_FOUND "Could not find any versions of model M" /
  // "Could not find version V of model M".
  absl::StatusOr<std::vector<VersionStatus>> GetStatus(const std::string& name,
                                                       std::optional<int64_t> version) const;

  std::vector<std::string> ModelNames() const;
  // True when every configured model has an AVAILABLE version (and at least one is configured).
  bool AllModelsAvailable() const;
  // Scans now instead of at the next poll interval; returns at once.
  void PollNow();
  // Number of scan passes completed (tests wait on it).
  int64_t scans_completed() const;

 private:
  struct VersionEntry {
    VersionState state = VersionState::kStart;
    absl::Status status;
    std::shared_ptr<const Servable> servable;  // kAvailable and kUnloading
    std::filesystem::path dir;
    bool load_failed = false;
    uint64_t failed_fingerprint = 0;
    absl::Time unload_started;
  };
  struct ModelEntry {
    tensorflow::serving::ModelConfig config;
    std::map<int64_t, VersionEntry> versions;
    std::map<int64_t, std::filesystem::path> found;  // last scan
    std::set<int64_t> aspired;
    bool removed = false;       // no longer configured: unload everything
    int64_t scans = 0;          // scans since the config was applied
    absl::Status scan_status;   // last scan's error, if any
  };
  struct ServedModel {
    std::map<int64_t, std::shared_ptr<const Servable>> versions;
    std::map<std::string, int64_t> labels;
  };
  using ServingMap = std::map<std::string, ServedModel>;
  enum class Action { kNone, kDidSomething };

  ModelManager(ModelManagerOptions options, LoadFn load);
  void Run();
  void Scan();
  // One unit of work (retire, unload or load one version); kNone when nothing is left to do.
  Action Step();
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SettledLocked(const ModelEntry& m) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckLabelsLocked(const tensorflow::serving::ModelConfig& config,
                                 const ModelEntry* current) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(const VersionEvent& event);

  const ModelManagerOptions options_;
  const LoadFn load_;

  mutable absl::Mutex mu_;
  std::map<std::string, ModelEntry> models_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, int64_t>> labels_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool poll_requested_ ABSL_GUARDED_BY(mu_) = false;
  int64_t scans_completed_ ABSL_GUARDED_BY(mu_) = 0;

  mutable absl::Mutex serving_mu_;
  std::shared_ptr<const ServingMap> serving_ ABSL_GUARDED_BY(serving_mu_);

  std::thread thread_;
};

}  // namespace inferd::loader

#endif  // INFERD_LOADER_MODEL_MANAGER_H_
