#include "balancer/model_routing.h"

#include <gtest/gtest.h>

#include <random>

#include "tensorflow_serving/apis/get_model_status.pb.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace inferd::balancer {
namespace {

constexpr char kPredict[] = "/tensorflow.serving.PredictionService/Predict";

std::string Predict(const std::string& model, std::optional<int64_t> version,
                    std::optional<std::string> label, int floats = 64) {
  tensorflow::serving::PredictRequest r;
  r.mutable_model_spec()->set_name(model);
  r.mutable_model_spec()->set_signature_name("serving_default");
  if (version) r.mutable_model_spec()->mutable_version()->set_value(*version);
  if (label) r.mutable_model_spec()->set_version_label(*label);
  auto& t = (*r.mutable_inputs())["image"];
  t.set_dtype(tensorflow::DT_FLOAT);
  for (int i = 0; i < floats; ++i) t.add_float_val(0.5f);
  r.add_output_filter("probabilities");
  return r.SerializeAsString();
}

TEST(ModelRoutingTest, ReadsTheModelSpecFromRequestBytes) {
  auto any = RequirementFromGrpc(kPredict, Predict("digits", std::nullopt, std::nullopt));
  ASSERT_TRUE(any.has_value());
  EXPECT_EQ(any->model, "digits");
  EXPECT_FALSE(any->specific());
  auto v = RequirementFromGrpc(kPredict, Predict("digits", 2, std::nullopt));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->version, 2);
  EXPECT_FALSE(v->label.has_value());
  auto l = RequirementFromGrpc(kPredict, Predict("digits", std::nullopt, "canary"));
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->label, "canary");
  EXPECT_TRUE(l->specific());
  // Version 0 is still an explicit version.
  auto zero = RequirementFromGrpc(kPredict, Predict("m", 0, std::nullopt));
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(zero->version, 0);

  tensorflow::serving::GetModelStatusRequest s;
  s.mutable_model_spec()->set_name("digits");
  s.mutable_model_spec()->mutable_version()->set_value(7);
  auto status = RequirementFromGrpc("/tensorflow.serving.ModelService/GetModelStatus",
                                    s.SerializeAsString());
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->version, 7);
  EXPECT_FALSE(RequirementFromGrpc("/grpc.health.v1.Health/Check", Predict("x", 1, {})));
}

TEST(ModelRoutingTest, APrefixHoldingTheSpecIsEnough) {
  const std::string bytes = Predict("digits", 3, std::nullopt, 100000);
  auto need = RequirementFromBytes(absl::string_view(bytes).substr(0, 64));
  ASSERT_TRUE(need.has_value());
  EXPECT_EQ(need->version, 3);
}

TEST(ModelRoutingTest, MalformedBytesGiveNoRequirement) {
  const std::string good = Predict("digits", 2, std::nullopt);
  // Every cut inside the model spec, and garbage.
  for (size_t n = 0; n < 30; ++n) {
    auto need = RequirementFromBytes(absl::string_view(good).substr(0, n));
    if (need) EXPECT_EQ(need->model, "digits") << n;  // only a complete spec may be read
  }
  for (const std::string& bad : {std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),
                                 std::string("\x0a\x7f", 2), std::string("\x0b", 1),
                                 std::string("\x00\x01", 2), std::string()}) {
    EXPECT_FALSE(RequirementFromBytes(bad).has_value());
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 5000; ++i) {
    std::string m = good;
    for (int k = 0; k < 3; ++k) m[rng() % m.size()] = static_cast<char>(rng());
    (void)RequirementFromBytes(m);  // anything but a crash
  }
}

TEST(ModelRoutingTest, RestTargets) {
  auto v = RequirementFromRestTarget("/v1/models/digits/versions/2:predict");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->model, "digits");
  EXPECT_EQ(v->version, 2);
  auto l = RequirementFromRestTarget("/v1/models/digits/labels/stable/metadata?x=1");
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->label, "stable");
  auto any = RequirementFromRestTarget("/v1/models/digits:predict");
  ASSERT_TRUE(any.has_value());
  EXPECT_FALSE(any->specific());
  EXPECT_FALSE(RequirementFromRestTarget("/healthz").has_value());
  EXPECT_FALSE(RequirementFromRestTarget("/v1/models/").has_value());
  auto bad = RequirementFromRestTarget("/v1/models/m/versions/x:predict");
  ASSERT_TRUE(bad.has_value());
  EXPECT_FALSE(bad->specific());  // the replica answers the malformed URL
}

TEST(ModelRoutingTest, Satisfies) {
  ModelAvailability have;
  have.versions["digits"] = {1, 2};
  have.labels.insert({"digits", "stable"});
  ModelRequirement need{"digits", 2, std::nullopt};
  EXPECT_TRUE(Satisfies(have, need));
  need.version = 3;
  EXPECT_FALSE(Satisfies(have, need));
  need = ModelRequirement{"digits", std::nullopt, "stable"};
  EXPECT_TRUE(Satisfies(have, need));
  need.label = "canary";
  EXPECT_FALSE(Satisfies(have, need));
  EXPECT_FALSE(Satisfies(have, ModelRequirement{"other", 1, std::nullopt}));
}

}  // namespace
}  // namespace inferd::balancer
