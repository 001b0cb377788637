// Model loading, planning and running: load-time errors name the node, op and opset; run-time
// errors name the input and what was expected; plan rewrites keep results unchanged.
#include "models/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "models/onnx_import.h"
#include "tests/testing/model_builder.h"

namespace inferd::models {
namespace {

using ::inferd::testing::ModelBuilder;
using ::inferd::testing::SetAttr;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<Model>> Plan(const ModelBuilder& b, bool optimize = true) {
  auto g = ImportOnnxBytes(b.Serialize(), "");
  if (!g.ok()) return g.status();
  LoadOptions options;
  options.optimize = optimize;
  options.device = std::make_shared<CpuDevice>(2);
  return Model::FromGraph(*std::move(g), options);
}

Tensor RandomTensor(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  Tensor t = Tensor::Create(DType::kFloat32, std::move(shape)).value();
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

float MaxAbsDiff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  float m = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    m = std::max(m, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  }
  return m;
}

// x[N,3,8,8] -> Conv(4, 3x3, pad 1) -> BatchNorm -> Relu -> GlobalAveragePool -> y[N,4,1,1]
ModelBuilder ConvBnRelu() {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 3, 8, 8}).Output("y", DType::kFloat32, {-1, 4, 1, 1});
  b.Initializer("w", RandomTensor({4, 3, 3, 3}, 1));
  b.Initializer("b", RandomTensor({4}, 2));
  b.Initializer("scale", Tensor::FromVector<float>({4}, {1.0f, 0.5f, 2.0f, -1.0f}));
  b.Initializer("shift", Tensor::FromVector<float>({4}, {0.1f, 0.2f, -0.3f, 0.0f}));
  b.Initializer("mean", Tensor::FromVector<float>({4}, {0.5f, -0.5f, 0.0f, 1.0f}));
  b.Initializer("var", Tensor::FromVector<float>({4}, {1.0f, 2.0f, 0.5f, 4.0f}));
  SetAttr(b.Node("Conv", {"x", "w", "b"}, {"c"}), "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.Node("BatchNormalization", {"c", "scale", "shift", "mean", "var"}, {"bn"});
  b.Node("Relu", {"bn"}, {"r"});
  b.Node("GlobalAveragePool", {"r"}, {"y"});
  return b;
}

TEST(ModelTest, UnknownOpFailsLoadNamingNodeOpAndOpset) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
  b.Node("Frobnicate", {"x"}, {"y"}).set_name("weird");
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  const std::string msg(m.status().message());
  EXPECT_THAT(msg, HasSubstr("Frobnicate"));
  EXPECT_THAT(msg, HasSubstr("'weird'"));
  EXPECT_THAT(msg, HasSubstr("opset 13"));
}

// Found by fuzz/onnx_model_fuzzer: ONNX's data propagation for Shape (opset 15 and later)
// crashed inside libonnx on the untyped output of an op it has no schema for.
TEST(ModelTest, ShapeOfAnUnknownOpsOutputFailsLoadNamingTheOp) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kInt64);
  b.Node("Frobnicate", {"x"}, {"t"});
  b.Node("Shape", {"t"}, {"y"});
  b.mutable_proto().mutable_opset_import(0)->set_version(16);
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("Frobnicate"));
}

// Found by fuzz/onnx_model_fuzzer: the same propagation crashed on a Shape whose required
// input is omitted (""), so ONNX's inference runs without data propagation.
TEST(ModelTest, ShapeWithItsInputOmittedFailsLoad) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kInt64);
  b.Node("Relu", {"x"}, {"t"});
  b.Node("Shape", {""}, {"y"});
  b.mutable_proto().mutable_opset_import(0)->set_version(16);
  EXPECT_FALSE(Plan(b).ok());
}

TEST(ModelTest, OldOpsetFailsLoad) {
  ModelBuilder b(6);
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
  b.Node("Relu", {"x"}, {"y"});
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("opset 6"));
}

TEST(ModelTest, CycleFailsLoad) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
  b.Node("Add", {"x", "b"}, {"a"});
  b.Node("Relu", {"a"}, {"b"});
  b.Node("Identity", {"a"}, {"y"});
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("cycle"));
}

TEST(ModelTest, BadAttributeTypeFailsLoad) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2, 3}).Output("y", DType::kFloat32, {2, 3});
  SetAttr(b.Node("Softmax", {"x"}, {"y"}), "axis", std::string("one"));
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("axis"));
}

TEST(ModelTest, WrongInputShapeNamesInputAndExpectedShape) {
  auto m = Plan(ConvBnRelu());
  ASSERT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run({RandomTensor({1, 3, 9, 8}, 3)});
  ASSERT_FALSE(out.ok());
  const std::string msg(out.status().message());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr("'x'"));
  EXPECT_THAT(msg, HasSubstr("[?,3,8,8]"));
  EXPECT_THAT(msg, HasSubstr("[1,3,9,8]"));
}

TEST(ModelTest, WrongInputDtypeAndCountAreErrors) {
  auto m = Plan(ConvBnRelu());
  ASSERT_TRUE(m.ok());
  Tensor ints = Tensor::Create(DType::kInt64, {1, 3, 8, 8}).value();
  auto out = (*m)->Run({ints});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("float32"));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("int64"));
  EXPECT_FALSE((*m)->Run({}).ok());
  EXPECT_FALSE((*m)->Run({RandomTensor({1, 3, 8, 8}, 1), RandomTensor({1}, 2)}).ok());
}

TEST(ModelTest, InconsistentShapesFailLoadNamingTheNode) {
  ModelBuilder b;
  b.Input("a", DType::kFloat32, {-1, 3}).Input("b", DType::kFloat32, {-1, 4});
  b.Output("y", DType::kFloat32, {-1, 3});
  b.Node("Add", {"a", "b"}, {"y"}).set_name("adder");
  auto m = Plan(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("shape inference"));
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("adder"));
}

TEST(ModelTest, ShapeErrorAtRunTimeNamesTheNode) {
  // Fully dynamic shapes: only the run can tell that they do not broadcast.
  ModelBuilder b;
  b.Input("a", DType::kFloat32, {-1, -1}).Input("b", DType::kFloat32, {-1, -1});
  b.Output("y", DType::kFloat32);
  b.Node("Add", {"a", "b"}, {"y"}).set_name("adder");
  auto m = Plan(b);
  ASSERT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run({RandomTensor({2, 3}, 1), RandomTensor({2, 4}, 2)});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("'adder'"));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("broadcast"));
}

TEST(ModelTest, ShapesAreInferredWithASymbolicBatch) {
  auto g = ImportOnnxBytes(ConvBnRelu().Serialize(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  // Every intermediate value has a type and shape, the batch dimension kept dynamic.
  for (const Node& n : g->nodes) {
    for (int out : n.outputs) {
      ASSERT_TRUE(g->values[out].info.has_value()) << g->values[out].name;
      EXPECT_EQ(g->values[out].info->dtype, DType::kFloat32);
      EXPECT_EQ(g->values[out].info->dims.size(), 4u);
      EXPECT_EQ(g->values[out].info->dims[0], -1);
      EXPECT_EQ(g->values[out].info->dims[1], 4);
    }
  }
}

TEST(ModelTest, BatchNormAndReluFusionKeepResults) {
  auto fused = Plan(ConvBnRelu(), true);
  auto plain = Plan(ConvBnRelu(), false);
  ASSERT_TRUE(fused.ok() && plain.ok());
  EXPECT_EQ((*fused)->plan_stats().fused_batch_norms, 1);
  EXPECT_EQ((*fused)->plan_stats().fused_activations, 1);
  EXPECT_EQ((*fused)->plan_stats().nodes_planned, 2);
  EXPECT_EQ((*plain)->plan_stats().nodes_planned, 4);
  Tensor x = RandomTensor({3, 3, 8, 8}, 9);
  auto a = (*fused)->Run({x});
  auto b = (*plain)->Run({x});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_LT(MaxAbsDiff((*a)[0], (*b)[0]), 1e-4f);
}

// x -> Conv a -> Conv c, plus (Conv of x, or the [N,C,1,1] mean of a) -> Relu: the Add folds
// into Conv c, the second case through the broadcasting fallback. Conv c is 1x1 (the packed
// GEMM) or 3x3 (on these 6x6 maps, the small-map Winograd kernel where the build has vector
// registers).
ModelBuilder Residual(bool broadcast, int64_t kernel = 1) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 4, 6, 6}).Output("y", DType::kFloat32);
  b.Initializer("wa", RandomTensor({8, 4, 3, 3}, 5));
  b.Initializer("wb", RandomTensor({8, 4, 1, 1}, 6));
  b.Initializer("bias", RandomTensor({8}, 7));
  b.Initializer("wc", RandomTensor({8, 8, kernel, kernel}, 8));
  SetAttr(b.Node("Conv", {"x", "wa", "bias"}, {"a"}), "pads", std::vector<int64_t>{1, 1, 1, 1});
  if (broadcast) {
    SetAttr(b.Node("ReduceMean", {"a"}, {"other"}), "axes", std::vector<int64_t>{2, 3});
  } else {
    b.Node("Conv", {"x", "wb"}, {"other"});
  }
  // Reads `a`, so it is ordered after `other` (the residual must exist when the Conv runs).
  const int64_t pad = kernel / 2;
  SetAttr(b.Node("Conv", {"a", "wc"}, {"c"}), "pads", std::vector<int64_t>{pad, pad, pad, pad});
  b.Node("Add", {"c", "other"}, {"s"});
  b.Node("Relu", {"s"}, {"y"});
  return b;
}

TEST(ModelTest, ResidualAddFoldsIntoConvWithAndWithoutBroadcast) {
  for (int64_t kernel : {1, 3}) {
    for (bool broadcast : {false, true}) {
      auto fused = Plan(Residual(broadcast, kernel), true);
      auto plain = Plan(Residual(broadcast, kernel), false);
      ASSERT_TRUE(fused.ok() && plain.ok()) << fused.status() << plain.status();
      EXPECT_EQ((*fused)->plan_stats().fused_residual_adds, 1) << broadcast << kernel;
      Tensor x = RandomTensor({2, 4, 6, 6}, 12);
      auto a = (*fused)->Run({x});
      auto b = (*plain)->Run({x});
      ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
      EXPECT_LT(MaxAbsDiff((*a)[0], (*b)[0]), 1e-4f) << broadcast << kernel;
    }
  }
}

TEST(ModelTest, ZeroPadFoldsIntoAveragePoolAndConv) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 3, 7, 7}).Output("y", DType::kFloat32);
  b.Output("z", DType::kFloat32);
  b.Initializer("pads", Tensor::FromVector<int64_t>({8}, {0, 0, 1, 2, 0, 0, 1, 0}));
  b.Initializer("pads2", Tensor::FromVector<int64_t>({8}, {0, 0, 1, 1, 0, 0, 1, 1}));
  b.Initializer("w", RandomTensor({5, 3, 3, 3}, 4));
  b.Node("Pad", {"x", "pads"}, {"p"});
  SetAttr(b.Node("AveragePool", {"p"}, {"y"}), "kernel_shape", std::vector<int64_t>{3, 3});
  b.Node("Pad", {"x", "pads2"}, {"q"});
  b.Node("Conv", {"q", "w"}, {"z"});
  auto fused = Plan(b, true);
  auto plain = Plan(b, false);
  ASSERT_TRUE(fused.ok() && plain.ok());
  EXPECT_EQ((*fused)->plan_stats().folded_pads, 2);
  Tensor x = RandomTensor({2, 3, 7, 7}, 13);
  auto got = (*fused)->Run({x});
  auto want = (*plain)->Run({x});
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_LT(MaxAbsDiff((*got)[0], (*want)[0]), 1e-5f);
  EXPECT_LT(MaxAbsDiff((*got)[1], (*want)[1]), 1e-4f);
}

TEST(ModelTest, ConstantSubgraphsAreFolded) {
  // Shape of a constant -> Gather -> Concat with -1 -> Reshape: folds to a constant shape.
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 6}).Output("y", DType::kFloat32, {-1, 2, 3});
  b.Initializer("like", Tensor::Create(DType::kFloat32, {4, 2, 3}).value());
  b.Initializer("idx", Tensor::FromVector<int64_t>({2}, {1, 2}));
  b.Initializer("minus1", Tensor::FromVector<int64_t>({1}, {-1}));
  b.Node("Shape", {"like"}, {"s"});
  b.Node("Gather", {"s", "idx"}, {"dims"});
  SetAttr(b.Node("Concat", {"minus1", "dims"}, {"target"}), "axis", int64_t{0});
  b.Node("Reshape", {"x", "target"}, {"y"});
  auto m = Plan(b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->plan_stats().folded_constants, 3);
  EXPECT_EQ((*m)->plan_stats().nodes_planned, 1);
  auto out = (*m)->Run({RandomTensor({5, 6}, 4)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].shape(), (Shape{5, 2, 3}));
}

// Found by fuzz/onnx_model_fuzzer (UBSan): the product of a Reshape's target dimensions
// overflowed int64 before the element count was compared.
TEST(ModelTest, ReshapeToATargetWithTooManyElementsIsAnError) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 2}).Input("target", DType::kInt64, {2});
  b.Output("y", DType::kFloat32);
  b.Node("Reshape", {"x", "target"}, {"y"});
  auto m = Plan(b);
  ASSERT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run({RandomTensor({3, 2}, 1),
                        Tensor::FromVector<int64_t>({2}, {int64_t{1} << 48, int64_t{1} << 57})});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("too many elements"));
}

// Found by fuzz/onnx_model_fuzzer (UBSan): packing constant weights with an inner dimension of
// 0 offset a null pointer. A product over nothing is 0, so the output is the bias.
TEST(ModelTest, GemmWithAnEmptyInnerDimensionGivesTheBias) {
  ModelBuilder b;
  b.Input("a", DType::kFloat32, {2, 0}).Output("y", DType::kFloat32, {2, 3});
  b.Initializer("w", Tensor::Create(DType::kFloat32, {0, 3}).value());
  b.Initializer("c", Tensor::FromVector<float>({3}, {1, 2, 3}));
  b.Node("Gemm", {"a", "w", "c"}, {"y"});
  auto m = Plan(b);
  ASSERT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run({Tensor::Create(DType::kFloat32, {2, 0}).value()});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3}));
  const float* y = (*out)[0].data<float>();
  EXPECT_EQ(std::vector<float>(y, y + 6), (std::vector<float>{1, 2, 3, 1, 2, 3}));
}

TEST(ModelTest, OutputsDoNotAliasConstantsOrInputs) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("c", DType::kFloat32, {2});
  b.Output("xi", DType::kFloat32, {2});
  b.Initializer("k", Tensor::FromVector<float>({2}, {1, 2}));
  b.Node("Identity", {"k"}, {"c"});
  b.Node("Identity", {"x"}, {"xi"});
  auto m = Plan(b);
  ASSERT_TRUE(m.ok());
  Tensor x = Tensor::FromVector<float>({2}, {5, 6});
  auto out = (*m)->Run({x});
  ASSERT_TRUE(out.ok());
  (*out)[0].data<float>()[0] = 100;
  (*out)[1].data<float>()[0] = 100;
  EXPECT_EQ(x.data<float>()[0], 5);
  auto again = (*m)->Run({x});
  EXPECT_EQ((*again)[0].data<float>()[0], 1);
}

TEST(ModelTest, DynamicBatchAndConcurrentRunsAgree) {
  auto m = Plan(ConvBnRelu());
  ASSERT_TRUE(m.ok());
  Tensor x8 = RandomTensor({8, 3, 8, 8}, 11);
  auto want = (*m)->Run({x8});
  ASSERT_TRUE(want.ok());
  // Row i of the batch equals the batch-1 result of image i.
  for (int64_t i = 0; i < 8; ++i) {
    Tensor xi = Tensor::Create(DType::kFloat32, {1, 3, 8, 8}).value();
    std::memcpy(xi.raw_data(), x8.data<float>() + i * 192, 192 * sizeof(float));
    auto yi = (*m)->Run({xi});
    ASSERT_TRUE(yi.ok());
    for (int c = 0; c < 4; ++c) {
      EXPECT_NEAR(yi->at(0).data<float>()[c], want->at(0).data<float>()[i * 4 + c], 1e-5);
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < 20; ++r) {
        auto got = (*m)->Run({x8});
        if (!got.ok() || MaxAbsDiff(got->at(0), want->at(0)) != 0.0f) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace inferd::models
