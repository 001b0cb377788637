#include "loader/model_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "loader/version_policy.h"

namespace inferd::loader {
namespace fs = std::filesystem;
using tensorflow::serving::ModelConfig;
using tensorflow::serving::ModelServerConfig;

const char* VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kStart:
      return "START";
    case VersionState::kLoading:
      return "LOADING";
    case VersionState::kAvailable:
      return "AVAILABLE";
    case VersionState::kUnloading:
      return "UNLOADING";
    case VersionState::kEnd:
      return "END";
  }
  return "UNKNOWN";
}

std::string ServableRequest::DebugString() const {
  if (version) return absl::StrCat("Specific(", name, ", ", *version, ")");
  if (label) return absl::StrCat("Label(", name, ", ", *label, ")");
  return absl::StrCat("Latest(", name, ")");
}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(ModelManagerOptions options,
                                                                   LoadFn load) {
  if (!load) return absl::InvalidArgumentError("ModelManager needs a LoadFn");
  return std::unique_ptr<ModelManager>(new ModelManager(std::move(options), std::move(load)));
}

ModelManager::ModelManager(ModelManagerOptions options, LoadFn load)
    : options_(std::move(options)),
      load_(std::move(load)),
      serving_(std::make_shared<const ServingMap>()) {
  thread_ = std::thread([this] { Run(); });
}

ModelManager::~ModelManager() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  // Unpublish everything, then wait for in-flight handles before the servables go away.
  std::vector<std::shared_ptr<const Servable>> left;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, m] : models_) {
      for (auto& [v, e] : m.versions) {
        if (e.servable) left.push_back(std::move(e.servable));
      }
    }
    models_.clear();
    PublishLocked();
  }
  for (auto& s : left) {
    while (s.use_count() > 1) absl::SleepFor(absl::Milliseconds(1));
    s.reset();
  }
}

void ModelManager::Emit(const VersionEvent& e) {
  std::string line = absl::StrCat("model ", e.model, " version ", e.version, ": ",
                                  VersionStateName(e.state));
  if (e.state == VersionState::kAvailable) {
    absl::StrAppend(&line, " (loaded and warmed up in ", absl::FormatDuration(e.duration), ")");
  } else if (e.state == VersionState::kEnd && !e.status.ok()) {
    absl::StrAppend(&line, " (load failed after ", absl::FormatDuration(e.duration),
                    "; previous versions keep serving): ", e.status.ToString());
  } else if (e.state == VersionState::kEnd) {
    absl::StrAppend(&line, " (unloaded ", absl::FormatDuration(e.duration),
                    " after it stopped taking requests)");
  }
  if (e.state == VersionState::kEnd && !e.status.ok()) {
    INFERD_LOG(WARNING) << line;
  } else {
    INFERD_LOG(INFO) << line;
  }
  if (options_.on_event) options_.on_event(e);
}

void ModelManager::PublishLocked() {
  auto map = std::make_shared<ServingMap>();
  for (const auto& [name, m] : models_) {
    if (m.removed) continue;
    ServedModel& served = (*map)[name];
    for (const auto& [v, e] : m.versions) {
      if (e.state == VersionState::kAvailable) served.versions.emplace(v, e.servable);
    }
    if (auto it = labels_.find(name); it != labels_.end()) served.labels = it->second;
  }
  absl::MutexLock lock(&serving_mu_);
  serving_ = std::move(map);
}

absl::StatusOr<ServableHandle> ModelManager::Get(const ServableRequest& request) const {
  std::shared_ptr<const ServingMap> map;
  {
    absl::MutexLock lock(&serving_mu_);
    map = serving_;
  }
  auto not_found = [&](const ServableRequest& r) {
    return absl::NotFoundError(absl::StrCat("Servable not found for request: ", r.DebugString()));
  };
  auto model = map->find(request.name);
  if (model == map->end()) return not_found(request);
  const ServedModel& served = model->second;
  ServableRequest resolved = request;
  if (request.label) {
    auto label = served.labels.find(*request.label);
    if (label == served.labels.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Unrecognized servable version label: ", *request.label));
    }
    resolved.label.reset();
    resolved.version = label->second;
  }
  if (resolved.version) {
    auto it = served.versions.find(*resolved.version);
    if (it == served.versions.end()) return not_found(resolved);
    return ServableHandle{request.name, it->first, it->second};
  }
  if (served.versions.empty()) return not_found(request);
  auto latest = served.versions.rbegin();
  return ServableHandle{request.name, latest->first, latest->second};
}

absl::StatusOr<std::vector<VersionStatus>> ModelManager::GetStatus(
    const std::string& name, std::optional<int64_t> version) const {
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.removed || it->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("Could not find any versions of model ", name));
  }
  std::vector<VersionStatus> out;
  for (auto v = it->second.versions.rbegin(); v != it->second.versions.rend(); ++v) {
    if (version && v->first != *version) continue;
    out.push_back(VersionStatus{v->first, v->second.state, v->second.status});
  }
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("Could not find version ", *version, " of model ", name));
  }
  return out;
}

std::vector<std::string> ModelManager::ModelNames() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, m] : models_) {
    if (!m.removed) names.push_back(name);
  }
  return names;
}

bool ModelManager::AllModelsAvailable() const {
  absl::MutexLock lock(&mu_);
  int configured = 0;
  for (const auto& [name, m] : models_) {
    if (m.removed) continue;
    ++configured;
    bool any = false;
    for (const auto& [v, e] : m.versions) any = any || e.state == VersionState::kAvailable;
    if (!any) return false;
  }
  return configured > 0;
}

void ModelManager::PollNow() {
  absl::MutexLock lock(&mu_);
  poll_requested_ = true;
}

int64_t ModelManager::scans_completed() const {
  absl::MutexLock lock(&mu_);
  return scans_completed_;
}

absl::Status ModelManager::CheckLabelsLocked(const ModelConfig& config,
                                             const ModelEntry* current) const {
  auto old_labels = labels_.find(config.name());
  for (const auto& [label, version] : config.version_labels()) {
    bool unchanged = old_labels != labels_.end() && old_labels->second.count(label) &&
                     old_labels->second.at(label) == version;
    if (unchanged) continue;
    bool is_new = old_labels == labels_.end() || !old_labels->second.count(label);
    if (is_new && options_.allow_version_labels_for_unavailable_models) continue;
    bool available = false;
    if (current != nullptr) {
      auto v = current->versions.find(version);
      available = v != current->versions.end() && v->second.state == VersionState::kAvailable;
    }
    if (!available) {
      return absl::FailedPreconditionError(absl::StrCat(
          "Request to assign label to version ", version, " of model ", config.name(),
          ", which is not currently available for inference"));
    }
  }
  return absl::OkStatus();
}

bool ModelManager::SettledLocked(const ModelEntry& m) const {
  if (m.scans == 0) return false;
  for (int64_t v : m.aspired) {
    auto it = m.versions.find(v);
    if (it == m.versions.end()) return false;
    const VersionEntry& e = it->second;
    if (e.state == VersionState::kStart || e.state == VersionState::kLoading) return false;
    if (e.state == VersionState::kEnd && !e.load_failed) return false;  // about to reload
  }
  return true;
}

absl::Status ModelManager::ApplyConfig(const ModelServerConfig& config, absl::Duration wait) {
  if (config.config_case() != ModelServerConfig::kModelConfigList) {
    return absl::InvalidArgumentError(
        "ModelServerConfig must contain a model_config_list (custom_model_config is not "
        "supported)");
  }
  std::set<std::string> names;
  for (const ModelConfig& c : config.model_config_list().config()) {
    if (c.name().empty()) return absl::InvalidArgumentError("a model config has no name");
    if (c.name().find_first_of("/:") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("model name \"", c.name(), "\" must not contain '/' or ':'"));
    }
    if (!names.insert(c.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", c.name(), "\" is configured more than once"));
    }
    if (c.base_path().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("model \"", c.name(), "\" has no base_path"));
    }
    const std::string& platform = c.model_platform();
    if (!platform.empty() && platform != "onnx" && platform != "tensorflow") {
      return absl::InvalidArgumentError(absl::StrCat(
          "model \"", c.name(), "\": model_platform \"", platform,
          "\" is not supported (inferd serves ONNX models; use \"onnx\" or leave it empty)"));
    }
    if (c.model_version_policy().has_specific() &&
        c.model_version_policy().specific().versions().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", c.name(), "\": specific version policy lists no versions"));
    }
  }

  std::vector<std::string> added;
  {
    absl::MutexLock lock(&mu_);
    // Validate the labels of models that stay before changing anything.
    for (const ModelConfig& c : config.model_config_list().config()) {
      auto it = models_.find(c.name());
      if (it != models_.end() && !it->second.removed) {
        if (absl::Status s = CheckLabelsLocked(c, &it->second); !s.ok()) return s;
      }
    }
    for (auto& [name, m] : models_) {
      if (!names.count(name) && !m.removed) {
        INFERD_LOG(INFO) << "model " << name << ": removed from the config; unloading";
        m.removed = true;
        labels_.erase(name);
      }
    }
    for (const ModelConfig& c : config.model_config_list().config()) {
      auto it = models_.find(c.name());
      if (it == models_.end() || it->second.removed) {
        ModelEntry& m = models_[c.name()];
        m.removed = false;
        m.config = c;
        m.scans = 0;
        added.push_back(c.name());
        INFERD_LOG(INFO) << "model " << c.name() << ": added, base path " << c.base_path();
      } else {
        it->second.config = c;
        auto& labels = labels_[c.name()];
        labels.clear();
        for (const auto& [label, version] : c.version_labels()) labels[label] = version;
      }
    }
    PublishLocked();
    poll_requested_ = true;
  }
  if (wait <= absl::ZeroDuration()) {
    // Labels of new models apply once the caller waits for them; without waiting they are
    // applied as requested (the label rule cannot be checked yet).
    absl::MutexLock lock(&mu_);
    for (const ModelConfig& c : config.model_config_list().config()) {
      if (std::find(added.begin(), added.end(), c.name()) == added.end()) continue;
      auto& labels = labels_[c.name()];
      for (const auto& [label, version] : c.version_labels()) labels[label] = version;
    }
    PublishLocked();
    return absl::OkStatus();
  }

  absl::MutexLock lock(&mu_);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const std::string& name : added) {
      auto it = models_.find(name);
      if (it != models_.end() && !it->second.removed && !SettledLocked(it->second)) return false;
    }
    return true;
  };
  mu_.AwaitWithTimeout(absl::Condition(&settled), wait);
  std::vector<std::string> problems;
  for (const ModelConfig& c : config.model_config_list().config()) {
    if (std::find(added.begin(), added.end(), c.name()) == added.end()) continue;
    auto it = models_.find(c.name());
    if (it == models_.end() || it->second.removed) continue;
    ModelEntry& m = it->second;
    bool available = false;
    std::string errors;
    for (const auto& [v, e] : m.versions) {
      available = available || e.state == VersionState::kAvailable;
      if (!e.status.ok()) absl::StrAppend(&errors, "; version ", v, ": ", e.status.message());
    }
    if (!available) {
      std::string why = !m.scan_status.ok()       ? std::string(m.scan_status.message())
                        : !errors.empty()         ? errors.substr(2)
                        : !SettledLocked(m)       ? "still loading after the wait"
                        : m.found.empty()         ? "no version directories found"
                                                  : "no version selected by the version policy";
      problems.push_back(absl::StrCat("model ", c.name(), ": ", why));
      continue;
    }
    if (absl::Status s = CheckLabelsLocked(c, &m); !s.ok()) {
      problems.push_back(std::string(s.message()));
      continue;
    }
    auto& labels = labels_[c.name()];
    for (const auto& [label, version] : c.version_labels()) labels[label] = version;
  }
  PublishLocked();
  if (!problems.empty()) return absl::UnavailableError(absl::StrJoin(problems, "; "));
  return absl::OkStatus();
}

void ModelManager::Run() {
  absl::Time next_poll = absl::InfinitePast();
  while (true) {
    bool do_scan = false;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      do_scan = poll_requested_ ||
                (options_.poll_interval > absl::ZeroDuration() && absl::Now() >= next_poll);
      poll_requested_ = false;
    }
    if (do_scan) {
      Scan();
      if (options_.poll_interval > absl::ZeroDuration()) {
        next_poll = absl::Now() + options_.poll_interval;
      }
    }
    while (Step() == Action::kDidSomething) {
      absl::MutexLock lock(&mu_);
      if (stop_ || poll_requested_) break;
    }
    absl::MutexLock lock(&mu_);
    // Wake for: stop, a requested poll, the next poll time, or (while versions wait for their
    // handles) a short retire interval.
    bool retiring = false;
    for (const auto& [name, m] : models_) {
      for (const auto& [v, e] : m.versions) retiring = retiring || e.state == VersionState::kUnloading;
      retiring = retiring || m.removed;
    }
    absl::Time deadline = options_.poll_interval > absl::ZeroDuration()
                              ? next_poll
                              : absl::Now() + absl::Hours(1);
    if (retiring) deadline = std::min(deadline, absl::Now() + absl::Milliseconds(5));
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || poll_requested_; };
    mu_.AwaitWithDeadline(absl::Condition(&wake), deadline);
  }
}

void ModelManager::Scan() {
  std::vector<std::pair<std::string, std::string>> paths;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, m] : models_) {
      if (!m.removed) paths.emplace_back(name, m.config.base_path());
    }
  }
  std::map<std::string, absl::StatusOr<std::map<int64_t, fs::path>>> results;
  for (const auto& [name, path] : paths) results.emplace(name, ScanVersionDirectories(path));

  absl::MutexLock lock(&mu_);
  for (auto& [name, result] : results) {
    auto it = models_.find(name);
    if (it == models_.end() || it->second.removed) continue;
    ModelEntry& m = it->second;
    if (!result.ok()) {
      // Keep serving what is loaded: an unreadable base path is not a reason to unload.
      if (m.scan_status.ok() || m.scan_status.message() != result.status().message()) {
        INFERD_LOG(WARNING) << "model " << name << ": " << result.status().message()
                            << " (loaded versions keep serving)";
      }
      m.scan_status = result.status();
      ++m.scans;
      continue;
    }
    m.scan_status = absl::OkStatus();
    m.found = std::move(*result);
    std::set<int64_t> found;
    for (const auto& [v, dir] : m.found) found.insert(v);
    std::set<int64_t> aspired = AspiredVersions(m.config.model_version_policy(), found);
    if (aspired.empty() && !m.aspired.empty()) {
      INFERD_LOG(WARNING) << "model " << name << ": no version under " << m.config.base_path()
                          << " is selected any more; loaded versions keep serving";
    }
    m.aspired = std::move(aspired);
    for (int64_t v : m.aspired) {
      VersionEntry& e = m.versions[v];
      e.dir = m.found[v];
    }
    ++m.scans;
  }
  ++scans_completed_;
}

ModelManager::Action ModelManager::Step() {
  std::shared_ptr<const Servable> to_destroy;
  VersionEvent event;
  std::string load_model;
  int64_t load_version = 0;
  fs::path load_dir;
  {
    absl::MutexLock lock(&mu_);
    // 1. Finish retiring versions whose last handle is gone.
    for (auto m = models_.begin(); m != models_.end(); ++m) {
      for (auto& [v, e] : m->second.versions) {
        if (e.state == VersionState::kUnloading && e.servable.use_count() == 1) {
          to_destroy = std::move(e.servable);
          e.state = VersionState::kEnd;
          e.status = absl::OkStatus();
          event = VersionEvent{m->first, v, VersionState::kEnd, absl::OkStatus(),
                               absl::Now() - e.unload_started};
          break;
        }
      }
      if (to_destroy) break;
      // A removed model whose versions are all gone disappears.
      if (m->second.removed) {
        bool live = false;
        for (const auto& [v, e] : m->second.versions) {
          live = live || e.state == VersionState::kAvailable || e.state == VersionState::kUnloading;
        }
        if (!live) {
          models_.erase(m);
          return Action::kDidSomething;
        }
      }
    }
    if (!to_destroy) {
      // 2. Unpublish versions that should go: all versions of removed models; versions no
      // longer aspired once an aspired version is AVAILABLE and none is still to be loaded.
      for (auto& [name, m] : models_) {
        bool unload_unaspired = m.removed;
        if (!m.removed && !m.aspired.empty()) {
          bool aspired_available = false, pending = false;
          for (int64_t v : m.aspired) {
            const VersionEntry& e = m.versions[v];
            aspired_available = aspired_available || e.state == VersionState::kAvailable;
            pending = pending || e.state == VersionState::kStart ||
                      e.state == VersionState::kLoading ||
                      (e.state == VersionState::kEnd && !e.load_failed);
          }
          unload_unaspired = aspired_available && !pending;
        }
        if (!unload_unaspired) continue;
        for (auto& [v, e] : m.versions) {
          if (e.state == VersionState::kAvailable && (m.removed || !m.aspired.count(v))) {
            e.state = VersionState::kUnloading;
            e.unload_started = absl::Now();
            event = VersionEvent{name, v, VersionState::kUnloading, absl::OkStatus(),
                                 absl::ZeroDuration()};
            PublishLocked();
            break;
          }
        }
        if (event.state == VersionState::kUnloading) break;
      }
    }
    if (!to_destroy && event.state != VersionState::kUnloading) {
      // 3. Load the highest aspired version that needs loading.
      for (auto& [name, m] : models_) {
        if (m.removed) continue;
        for (auto v = m.aspired.rbegin(); v != m.aspired.rend(); ++v) {
          VersionEntry& e = m.versions[*v];
          bool needs = e.state == VersionState::kStart ||
                       (e.state == VersionState::kEnd && !e.load_failed);
          if (!needs && e.state == VersionState::kEnd && e.load_failed &&
              FingerprintDirectory(e.dir) != e.failed_fingerprint) {
            INFERD_LOG(INFO) << "model " << name << " version " << *v
                             << ": files changed since the failed load; retrying";
            needs = true;
          }
          if (!needs) continue;
          e.state = VersionState::kLoading;
          e.status = absl::OkStatus();
          load_model = name;
          load_version = *v;
          load_dir = e.dir;
          break;
        }
        if (!load_model.empty()) break;
      }
      if (load_model.empty()) return Action::kNone;
    }
  }
  if (to_destroy) {
    absl::Time start = absl::Now();
    to_destroy.reset();
    event.duration += absl::Now() - start;
    Emit(event);
    return Action::kDidSomething;
  }
  if (event.state == VersionState::kUnloading) {
    Emit(event);
    return Action::kDidSomething;
  }

  Emit(VersionEvent{load_model, load_version, VersionState::kLoading, absl::OkStatus(),
                    absl::ZeroDuration()});
  const uint64_t fingerprint = FingerprintDirectory(load_dir);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const Servable>> loaded = load_(load_model, load_version, load_dir);
  if (loaded.ok() && *loaded == nullptr) loaded = absl::InternalError("LoadFn returned null");
  const absl::Duration took = absl::Now() - start;
  {
    absl::MutexLock lock(&mu_);
    auto m = models_.find(load_model);
    if (m != models_.end()) {
      VersionEntry& e = m->second.versions[load_version];
      if (loaded.ok()) {
        e.state = VersionState::kAvailable;
        e.servable = std::move(*loaded);
        e.load_failed = false;
        event = VersionEvent{load_model, load_version, VersionState::kAvailable,
                             absl::OkStatus(), took};
        if (m->second.removed) {
          e.state = VersionState::kUnloading;  // removed while loading
          e.unload_started = absl::Now();
        }
      } else {
        e.state = VersionState::kEnd;
        e.status = loaded.status();
        e.load_failed = true;
        e.failed_fingerprint = fingerprint;
        event = VersionEvent{load_model, load_version, VersionState::kEnd, loaded.status(), took};
      }
      PublishLocked();
    }
  }
  Emit(event);
  return Action::kDidSomething;
}

}  // namespace inferd::loader
