#include "serving/config_files.h"

#include "gtest/gtest.h"
#include "tensorflow_serving/config/model_server_config.pb.h"

namespace inferd::serving {
namespace {

TEST(ConfigFilesTest, ParsesTfServingModelConfig) {
  tensorflow::serving::ModelServerConfig config;
  ASSERT_TRUE(ParseTextProto(R"(
    model_config_list {
      config {
        name: 'm' base_path: '/models/m' model_platform: 'tensorflow'
        model_version_policy { specific { versions: 42 versions: 43 } }
        version_labels { key: 'stable' value: 42 }
        version_labels { key: 'canary' value: 43 }
      }
    })", "models.config", &config).ok());
  const auto& c = config.model_config_list().config(0);
  EXPECT_EQ(c.name(), "m");
  EXPECT_EQ(c.model_version_policy().specific().versions_size(), 2);
  EXPECT_EQ(c.version_labels().at("canary"), 43);
}

TEST(ConfigFilesTest, MalformedConfigsNameFileAndLine) {
  tensorflow::serving::ModelServerConfig config;
  absl::Status s = ParseTextProto("model_config_list {\n  config { nme: 'x' }\n}", "a.config", &config);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("a.config:2:"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("nme"), std::string::npos) << s.message();
  EXPECT_FALSE(ParseTextProto("model_config_list { config {", "b", &config).ok());
  EXPECT_FALSE(ParseTextProto("\xff\xfe garbage", "c", &config).ok());
  EXPECT_FALSE(ParseTextProto("model_config_list { config { version_labels { key: 'a' value: 'x' } } }",
                              "d", &config).ok());
  EXPECT_EQ(ReadTextProtoFile("/nonexistent/models.config", &config).code(),
            absl::StatusCode::kNotFound);
}

TEST(ConfigFilesTest, BatchingParametersDefaultsAndValidation) {
  tensorflow::serving::BatchingParameters p;
  auto defaults = ToBatchingConfig(p);
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->queue.max_batch_size, 1000);
  EXPECT_EQ(defaults->queue.max_enqueued_batches, 10);
  EXPECT_EQ(defaults->queue.batch_timeout, absl::ZeroDuration());

  ASSERT_TRUE(ParseTextProto("max_batch_size { value: 8 } batch_timeout_micros { value: 500 } "
                             "max_enqueued_batches { value: 4 } num_batch_threads { value: 2 } "
                             "allowed_batch_sizes: 2 allowed_batch_sizes: 8",
                             "batching", &p).ok());
  auto c = ToBatchingConfig(p);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->queue.max_batch_size, 8);
  EXPECT_EQ(c->queue.batch_timeout, absl::Microseconds(500));
  EXPECT_EQ(c->num_batch_threads, 2);
  EXPECT_EQ(c->queue.allowed_batch_sizes, (std::vector<int64_t>{2, 8}));

  auto bad = p;
  bad.add_allowed_batch_sizes(16);
  EXPECT_NE(ToBatchingConfig(bad).status().message().find("must equal max_batch_size"),
            std::string::npos);
  bad = p;
  bad.clear_allowed_batch_sizes();
  bad.add_allowed_batch_sizes(8);
  bad.add_allowed_batch_sizes(2);
  EXPECT_FALSE(ToBatchingConfig(bad).ok());
  bad = p;
  bad.mutable_max_batch_size()->set_value(0);
  EXPECT_FALSE(ToBatchingConfig(bad).ok());
  bad = p;
  bad.mutable_num_batch_threads()->set_value(-1);
  EXPECT_FALSE(ToBatchingConfig(bad).ok());
  EXPECT_FALSE(ParseTextProto("max_batch_size: 8", "batching", &p).ok());  // wrapper needs { value }
}

}  // namespace
}  // namespace inferd::serving
