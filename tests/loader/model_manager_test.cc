// Version lifecycle of ModelManager on real temp directories with a fake LoadFn: a version's
// model.onnx holds text, "corrupt" (or an empty file) fails the load. Waits are bounded polls of
// observable state, never fixed sleeps.
#include "loader/model_manager.h"

#include <atomic>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/model_builder.h"

namespace inferd::loader {
namespace {
namespace fs = std::filesystem;

class FakeServable : public Servable {
 public:
  explicit FakeServable(std::string text) : text(std::move(text)) {}
  std::string text;
};

absl::StatusOr<std::shared_ptr<const Servable>> FakeLoad(const std::string&, int64_t,
                                                         const fs::path& dir) {
  std::ifstream in(dir / "model.onnx");
  if (!in) return absl::NotFoundError(absl::StrCat("no model.onnx in ", dir.string()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty() || text.find("corrupt") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse ", dir.string()));
  }
  return std::make_shared<FakeServable>(text);
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return done();
}

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { base_ = fs::path(testing::MakeTempDir("manager")) / "m"; fs::create_directories(base_); }
  void TearDown() override { manager_.reset(); }

  void WriteVersion(int64_t v, const std::string& text) {
    fs::create_directories(base_ / std::to_string(v));
    std::ofstream(base_ / std::to_string(v) / "model.onnx") << text;
  }
  void Start(const std::string& policy_text = "", absl::Duration poll = absl::Milliseconds(50),
             std::map<std::string, int64_t> labels = {}, bool allow_unavailable_labels = false) {
    ModelManagerOptions options;
    options.poll_interval = poll;
    options.allow_version_labels_for_unavailable_models = allow_unavailable_labels;
    manager_ = ModelManager::Create(options, FakeLoad).value();
    ASSERT_TRUE(manager_->ApplyConfig(Config(policy_text, labels), absl::Seconds(10)).ok());
  }
  tensorflow::serving::ModelServerConfig Config(const std::string& policy,
                                                std::map<std::string, int64_t> labels = {}) {
    tensorflow::serving::ModelServerConfig config;
    auto* c = config.mutable_model_config_list()->add_config();
    c->set_name("m");
    c->set_base_path(base_.string());
    if (policy == "all") c->mutable_model_version_policy()->mutable_all();
    if (policy == "latest2") c->mutable_model_version_policy()->mutable_latest()->set_num_versions(2);
    if (policy == "specific1,3") {
      c->mutable_model_version_policy()->mutable_specific()->add_versions(1);
      c->mutable_model_version_policy()->mutable_specific()->add_versions(3);
    }
    for (auto& [k, v] : labels) (*c->mutable_version_labels())[k] = v;
    return config;
  }
  // A version's state (kStart when the manager does not know it).
  VersionState State(int64_t version) {
    auto statuses = manager_->GetStatus("m", version);
    return statuses.ok() && !statuses->empty() ? (*statuses)[0].state : VersionState::kStart;
  }
  // Versions currently AVAILABLE.
  std::set<int64_t> Available() {
    std::set<int64_t> out;
    auto statuses = manager_->GetStatus("m", std::nullopt);
    if (!statuses.ok()) return out;
    for (const auto& s : *statuses) {
      if (s.state == VersionState::kAvailable) out.insert(s.version);
    }
    return out;
  }
  int64_t Latest() {
    auto h = manager_->Get(ServableRequest{"m", {}, {}});
    return h.ok() ? h->version : -1;
  }

  fs::path base_;
  std::unique_ptr<ModelManager> manager_;
};

TEST_F(ModelManagerTest, ServesLatestAndPicksUpNewVersionWithinTwoPollIntervals) {
  WriteVersion(1, "one");
  Start();
  EXPECT_EQ(Latest(), 1);
  EXPECT_TRUE(manager_->AllModelsAvailable());
  const absl::Time written = absl::Now();
  WriteVersion(2, "two");
  // Two poll intervals (50 ms each) plus the fake load, which is immediate.
  ASSERT_TRUE(WaitFor([&] { return Latest() == 2; }, absl::Seconds(5)));
  EXPECT_LE(absl::Now() - written, absl::Milliseconds(2 * 50 + 50));
  // latest{1}: version 1 is retired once 2 is AVAILABLE.
  ASSERT_TRUE(WaitFor([&] { return Available() == std::set<int64_t>{2}; }));
  // Unpublished first, then UNLOADING until its last handle is gone, then END.
  ASSERT_TRUE(WaitFor([&] { return State(1) == VersionState::kEnd; }))
      << VersionStateName(State(1));
  auto statuses = manager_->GetStatus("m", 1).value();
  EXPECT_TRUE(statuses[0].status.ok());
}

TEST_F(ModelManagerTest, HeldHandleKeepsRetiredVersionAliveUntilReleased) {
  WriteVersion(1, "one");
  Start();
  ServableHandle held = manager_->Get(ServableRequest{"m", {}, {}}).value();
  WriteVersion(2, "two");
  ASSERT_TRUE(WaitFor([&] { return Latest() == 2; }));
  // Unpublished (no new requests) but not destroyed while the handle is held.
  ASSERT_TRUE(WaitFor([&] {
    return manager_->GetStatus("m", 1).value()[0].state == VersionState::kUnloading;
  }));
  EXPECT_FALSE(manager_->Get(ServableRequest{"m", 1, {}}).ok());
  EXPECT_EQ(held.get<FakeServable>().text, "one");
  held = ServableHandle{};
  ASSERT_TRUE(WaitFor(
      [&] { return manager_->GetStatus("m", 1).value()[0].state == VersionState::kEnd; }));
}

TEST_F(ModelManagerTest, LatestTwoPolicy) {
  WriteVersion(1, "one");
  WriteVersion(2, "two");
  WriteVersion(3, "three");
  Start("latest2");
  EXPECT_EQ(Available(), (std::set<int64_t>{2, 3}));
  EXPECT_EQ(Latest(), 3);
  EXPECT_TRUE(manager_->Get(ServableRequest{"m", 2, {}}).ok());
  EXPECT_EQ(manager_->Get(ServableRequest{"m", 1, {}}).status().message(),
            "Servable not found for request: Specific(m, 1)");
  // Removing 3: latest{2} is now {1, 2}; 3 is unloaded once 1 is loaded.
  fs::remove_all(base_ / "3");
  ASSERT_TRUE(WaitFor([&] { return Available() == std::set<int64_t>{1, 2}; }));
  EXPECT_EQ(Latest(), 2);
}

TEST_F(ModelManagerTest, AllPolicyAndRemovingAVersionUnloadsIt) {
  WriteVersion(1, "one");
  WriteVersion(2, "two");
  Start("all");
  EXPECT_EQ(Available(), (std::set<int64_t>{1, 2}));
  WriteVersion(5, "five");
  ASSERT_TRUE(WaitFor([&] { return Available() == std::set<int64_t>{1, 2, 5}; }));
  fs::remove_all(base_ / "1");
  ASSERT_TRUE(WaitFor([&] { return Available() == std::set<int64_t>{2, 5}; }));
  EXPECT_TRUE(WaitFor([&] { return State(1) == VersionState::kEnd; }))
      << VersionStateName(State(1));
}

TEST_F(ModelManagerTest, SpecificPolicy) {
  WriteVersion(1, "one");
  WriteVersion(2, "two");
  WriteVersion(3, "three");
  Start("specific1,3");
  EXPECT_EQ(Available(), (std::set<int64_t>{1, 3}));
  EXPECT_FALSE(manager_->Get(ServableRequest{"m", 2, {}}).ok());
}

TEST_F(ModelManagerTest, CorruptVersionIsReportedAndPreviousKeepsServing) {
  WriteVersion(1, "one");
  Start();
  WriteVersion(2, "corrupt");
  ASSERT_TRUE(WaitFor([&] {
    auto s = manager_->GetStatus("m", 2);
    return s.ok() && (*s)[0].state == VersionState::kEnd;
  }));
  auto status = manager_->GetStatus("m", 2).value()[0];
  EXPECT_EQ(status.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.status.message().find("cannot parse"), std::string::npos);
  EXPECT_EQ(Latest(), 1);
  EXPECT_EQ(Available(), std::set<int64_t>{1});
  // Not retried while the files are unchanged...
  const int64_t scans = manager_->scans_completed();
  ASSERT_TRUE(WaitFor([&] { return manager_->scans_completed() >= scans + 3; }));
  EXPECT_EQ(manager_->GetStatus("m", 2).value()[0].state, VersionState::kEnd);
  // ...and retried once the copy completes.
  WriteVersion(2, "two, complete");
  ASSERT_TRUE(WaitFor([&] { return Latest() == 2; }));
  ASSERT_TRUE(WaitFor([&] { return Available() == std::set<int64_t>{2}; }));
}

TEST_F(ModelManagerTest, HalfWrittenVersionWithoutModelFileNeverReplacesAGoodOne) {
  WriteVersion(1, "one");
  Start();
  fs::create_directories(base_ / "2");  // copy in progress: no model.onnx yet
  ASSERT_TRUE(WaitFor([&] {
    auto s = manager_->GetStatus("m", 2);
    return s.ok() && (*s)[0].state == VersionState::kEnd && !(*s)[0].status.ok();
  }));
  EXPECT_EQ(Latest(), 1);
  std::ofstream(base_ / "2" / "model.onnx") << "";  // empty, still copying
  absl::SleepFor(absl::Milliseconds(120));
  EXPECT_EQ(Latest(), 1);
  WriteVersion(2, "two");
  ASSERT_TRUE(WaitFor([&] { return Latest() == 2; }));
}

TEST_F(ModelManagerTest, EmptyOrMissingBasePathKeepsServingLoadedVersions) {
  WriteVersion(1, "one");
  Start();
  fs::remove_all(base_);
  const int64_t scans = manager_->scans_completed();
  ASSERT_TRUE(WaitFor([&] { return manager_->scans_completed() >= scans + 2; }));
  EXPECT_EQ(Latest(), 1);
}

TEST_F(ModelManagerTest, LabelsFollowTheAvailabilityRule) {
  WriteVersion(1, "one");
  WriteVersion(2, "two");
  Start("all", absl::Milliseconds(50), {{"stable", 1}});
  auto h = manager_->Get(ServableRequest{"m", {}, "stable"});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->version, 1);
  EXPECT_EQ(manager_->Get(ServableRequest{"m", {}, "nope"}).status().message(),
            "Unrecognized servable version label: nope");
  // Moving a label to an AVAILABLE version works.
  ASSERT_TRUE(manager_->ApplyConfig(Config("all", {{"stable", 1}, {"canary", 2}}),
                                    absl::Seconds(5)).ok());
  EXPECT_EQ(manager_->Get(ServableRequest{"m", {}, "canary"})->version, 2);
  // A label may not point at a version that is not AVAILABLE; nothing changes.
  absl::Status s = manager_->ApplyConfig(Config("all", {{"stable", 1}, {"canary", 7}}),
                                         absl::Seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "Request to assign label to version 7 of model m, which is not currently available "
            "for inference");
  EXPECT_EQ(manager_->Get(ServableRequest{"m", {}, "canary"})->version, 2);
}

TEST_F(ModelManagerTest, NewLabelsOnUnavailableVersionsWhenAllowed) {
  WriteVersion(1, "one");
  Start("", absl::Milliseconds(50), std::map<std::string, int64_t>{}, true);
  EXPECT_TRUE(manager_->ApplyConfig(Config("", {{"next", 9}}), absl::Seconds(5)).ok());
  EXPECT_EQ(manager_->Get(ServableRequest{"m", {}, "next"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ModelManagerTest, ReloadRemovesModelsAndAddsNewOnes) {
  WriteVersion(1, "one");
  Start();
  const fs::path other = base_.parent_path() / "other";
  fs::create_directories(other / "3");
  std::ofstream(other / "3" / "model.onnx") << "three";
  tensorflow::serving::ModelServerConfig config;
  auto* c = config.mutable_model_config_list()->add_config();
  c->set_name("other");
  c->set_base_path(other.string());
  ASSERT_TRUE(manager_->ApplyConfig(config, absl::Seconds(5)).ok());
  EXPECT_EQ(manager_->Get(ServableRequest{"other", {}, {}})->version, 3);
  ASSERT_TRUE(WaitFor([&] { return !manager_->GetStatus("m", std::nullopt).ok(); }));
  EXPECT_EQ(manager_->GetStatus("m", std::nullopt).status().message(),
            "Could not find any versions of model m");
  EXPECT_EQ(manager_->Get(ServableRequest{"m", {}, {}}).status().message(),
            "Servable not found for request: Latest(m)");
}

TEST_F(ModelManagerTest, RejectsBadConfigs) {
  WriteVersion(1, "one");
  Start();
  tensorflow::serving::ModelServerConfig config;
  EXPECT_EQ(manager_->ApplyConfig(config, absl::ZeroDuration()).code(),
            absl::StatusCode::kInvalidArgument);
  auto* c = config.mutable_model_config_list()->add_config();
  EXPECT_NE(manager_->ApplyConfig(config, absl::ZeroDuration()).message().find("no name"),
            std::string::npos);
  c->set_name("x");
  EXPECT_NE(manager_->ApplyConfig(config, absl::ZeroDuration()).message().find("base_path"),
            std::string::npos);
  c->set_base_path("/nonexistent");
  c->set_model_platform("pytorch");
  EXPECT_NE(manager_->ApplyConfig(config, absl::ZeroDuration()).message().find("not supported"),
            std::string::npos);
  *config.mutable_model_config_list()->add_config() = *c;
  c->set_model_platform("");
  EXPECT_NE(manager_->ApplyConfig(config, absl::ZeroDuration()).message().find("more than once"),
            std::string::npos);
  // The model that was served is untouched by the rejected configs.
  EXPECT_EQ(Latest(), 1);
}

TEST_F(ModelManagerTest, UnknownModelAndVersionMessages) {
  WriteVersion(1, "one");
  Start();
  EXPECT_EQ(manager_->Get(ServableRequest{"half", {}, {}}).status().message(),
            "Servable not found for request: Latest(half)");
  EXPECT_EQ(manager_->GetStatus("m", 4).status().message(), "Could not find version 4 of model m");
}

TEST_F(ModelManagerTest, ConcurrentGetsDuringSwapsAlwaysSucceed) {
  WriteVersion(1, "one");
  Start("", absl::Milliseconds(10));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> failures{0}, calls{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        auto h = manager_->Get(ServableRequest{"m", {}, {}});
        if (!h.ok()) ++failures;
        ++calls;
      }
    });
  }
  for (int v = 2; v <= 6; ++v) {
    WriteVersion(v, absl::StrCat("v", v));
    ASSERT_TRUE(WaitFor([&] { return Latest() == v; }));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(calls.load(), 0);
}

}  // namespace
}  // namespace inferd::loader
