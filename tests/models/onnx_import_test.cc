// Malformed and unusual ONNX files: every one must give an error naming the problem, never a
// crash.
#include "models/onnx_import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "models/model.h"
#include "tests/testing/model_builder.h"

namespace inferd::models {
namespace {

using ::inferd::testing::MakeTempDir;
using ::inferd::testing::ModelBuilder;
using ::inferd::testing::SetAttr;
using ::testing::HasSubstr;

ModelBuilder ReluModel() {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 4}).Output("y", DType::kFloat32, {-1, 4});
  b.Node("Relu", {"x"}, {"y"});
  return b;
}

TEST(OnnxImportTest, ImportsAValidModel) {
  auto g = ImportOnnxBytes(ReluModel().Serialize(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->values[g->inputs[0]].info->dims, (std::vector<int64_t>{-1, 4}));
}

TEST(OnnxImportTest, EmptyBytesAreRejected) {
  auto g = ImportOnnxBytes("", "");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OnnxImportTest, TruncatedFileIsRejected) {
  const std::string bytes = ReluModel().Serialize();
  for (size_t len : {bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    auto g = ImportOnnxBytes(bytes.substr(0, len), "");
    EXPECT_FALSE(g.ok()) << "length " << len;
  }
}

TEST(OnnxImportTest, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(1 + rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto g = ImportOnnxBytes(bytes, "");
    if (g.ok()) {
      // Whatever parsed must also plan or fail cleanly.
      auto m = Model::FromGraph(*std::move(g));
      (void)m;
    }
  }
}

// A digits-like CNN (Conv, Relu, MaxPool, Conv, AveragePool, Flatten, Gemm, Softmax) for
// attribute mutations.
ModelBuilder SmallCnn() {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {-1, 1, 8, 8}).Output("y", DType::kFloat32);
  Tensor w1 = Tensor::Create(DType::kFloat32, {4, 1, 3, 3}).value();
  Tensor w2 = Tensor::Create(DType::kFloat32, {4, 4, 3, 3}).value();
  Tensor fc = Tensor::Create(DType::kFloat32, {3, 16}).value();
  b.Initializer("w1", w1).Initializer("w2", w2).Initializer("fc", fc);
  auto& c1 = b.Node("Conv", {"x", "w1"}, {"c1"});
  SetAttr(c1, "pads", std::vector<int64_t>{1, 1, 1, 1});
  SetAttr(c1, "strides", std::vector<int64_t>{1, 1});
  SetAttr(c1, "dilations", std::vector<int64_t>{1, 1});
  SetAttr(c1, "group", int64_t{1});
  b.Node("Relu", {"c1"}, {"r1"});
  auto& p1 = b.Node("MaxPool", {"r1"}, {"p1"});
  SetAttr(p1, "kernel_shape", std::vector<int64_t>{2, 2});
  SetAttr(p1, "strides", std::vector<int64_t>{2, 2});
  SetAttr(p1, "pads", std::vector<int64_t>{0, 0, 0, 0});
  auto& c2 = b.Node("Conv", {"p1", "w2"}, {"c2"});
  SetAttr(c2, "kernel_shape", std::vector<int64_t>{3, 3});
  SetAttr(c2, "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto& p2 = b.Node("AveragePool", {"c2"}, {"p2"});
  SetAttr(p2, "kernel_shape", std::vector<int64_t>{2, 2});
  SetAttr(p2, "strides", std::vector<int64_t>{2, 2});
  SetAttr(p2, "ceil_mode", int64_t{0});
  SetAttr(b.Node("Flatten", {"p2"}, {"f"}), "axis", int64_t{1});
  auto& g = b.Node("Gemm", {"f", "fc"}, {"z"});
  SetAttr(g, "transB", int64_t{1});
  SetAttr(b.Node("Softmax", {"z"}, {"y"}), "axis", int64_t{1});
  return b;
}

TEST(OnnxImportTest, MutatedWindowAndShapeAttributesNeverCrash) {
  // Every integer attribute value of the model, one at a time, set to values a corrupt or
  // hostile file could hold (ONNX's own shape inference divided by a zero stride, SIGFPE):
  // importing, planning and running each must succeed or fail with an error.
  const ModelBuilder base = SmallCnn();
  Tensor x = Tensor::Create(DType::kFloat32, {2, 1, 8, 8}).value();
  int mutations = 0, refused = 0;
  for (int n = 0; n < base.proto().graph().node_size(); ++n) {
    for (int a = 0; a < base.proto().graph().node(n).attribute_size(); ++a) {
      const onnx::AttributeProto& attr = base.proto().graph().node(n).attribute(a);
      const int positions = attr.type() == onnx::AttributeProto::INTS ? attr.ints_size() : 1;
      if (attr.type() != onnx::AttributeProto::INTS && attr.type() != onnx::AttributeProto::INT) {
        continue;
      }
      for (int pos = 0; pos < positions; ++pos) {
        for (int64_t value : {int64_t{-1}, int64_t{0}, int64_t{3}, int64_t{1} << 31,
                              int64_t{1} << 40}) {
          ModelBuilder b = base;
          onnx::AttributeProto* m = b.mutable_proto().mutable_graph()->mutable_node(n)
                                        ->mutable_attribute(a);
          if (m->type() == onnx::AttributeProto::INTS) {
            m->set_ints(pos, value);
          } else {
            m->set_i(value);
          }
          ++mutations;
          auto g = ImportOnnxBytes(b.Serialize(), "");
          absl::Status status = g.status();
          if (g.ok()) {
            auto model = Model::FromGraph(*std::move(g));
            status = model.status();
            if (model.ok()) status = (*model)->Run({x}).status();
          }
          if (!status.ok()) {
            ++refused;
            EXPECT_FALSE(status.message().empty()) << attr.name() << "=" << value;
          }
        }
      }
    }
  }
  EXPECT_GT(mutations, 100);
  EXPECT_GT(refused, mutations / 2);  // most of these values are invalid
}

TEST(OnnxImportTest, MissingFileIsNotFound) {
  auto g = ImportOnnxFile("/nonexistent/model.onnx");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
}

TEST(OnnxImportTest, MissingInitializerNamesTheInput) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
  b.Node("Add", {"x", "bias"}, {"y"});
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'bias'"));
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("missing initializer"));
}

TEST(OnnxImportTest, InitializerWithWrongByteCountIsRejected) {
  ModelBuilder b = ReluModel();
  auto* init = b.mutable_proto().mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(4);
  init->set_raw_data(std::string(12, '\0'));  // 3 floats for 4
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'w'"));
}

TEST(OnnxImportTest, TypedFieldCountMismatchIsRejected) {
  ModelBuilder b = ReluModel();
  auto* init = b.mutable_proto().mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(onnx::TensorProto::INT64);
  init->add_dims(3);
  init->add_int64_data(1);
  auto g = ImportOnnxBytes(b.Serialize(), "");
  EXPECT_FALSE(g.ok());
}

// Found by fuzz/onnx_model_fuzzer (out of memory): a few bytes of initializer claiming a huge
// shape with typed values allocated the whole tensor before the count was compared.
TEST(OnnxImportTest, TypedCountIsCheckedBeforeAllocating) {
  ModelBuilder b = ReluModel();
  auto* init = b.mutable_proto().mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(onnx::TensorProto::FLOAT);
  init->add_dims(int64_t{1} << 20);
  init->add_dims(int64_t{1} << 20);  // 4 TiB of float
  init->add_float_data(1.0f);
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()),
              HasSubstr("has 1 values but its shape needs 1099511627776"));
}

TEST(OnnxImportTest, NegativeOrHugeDimsAreRejected) {
  for (int64_t d : {int64_t{-3}, int64_t{1} << 62}) {
    ModelBuilder b = ReluModel();
    auto* init = b.mutable_proto().mutable_graph()->add_initializer();
    init->set_name("w");
    init->set_data_type(onnx::TensorProto::FLOAT);
    init->add_dims(d);
    init->add_dims(d);
    EXPECT_FALSE(ImportOnnxBytes(b.Serialize(), "").ok()) << d;
  }
}

TEST(OnnxImportTest, ExternalDataIsReadAndValidated) {
  const auto dir = MakeTempDir("external");
  {
    std::ofstream out(dir / "weights.bin", std::ios::binary);
    const float values[2] = {1.5f, -2.0f};
    out.write("xxxx", 4);  // offset 4
    out.write(reinterpret_cast<const char*>(values), sizeof(values));
  }
  auto make = [&](const std::string& location, const std::string& length) {
    ModelBuilder b;
    b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
    b.Node("Add", {"x", "w"}, {"y"});
    auto* init = b.mutable_proto().mutable_graph()->add_initializer();
    init->set_name("w");
    init->set_data_type(onnx::TensorProto::FLOAT);
    init->add_dims(2);
    init->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = init->add_external_data();
    kv->set_key("location");
    kv->set_value(location);
    kv = init->add_external_data();
    kv->set_key("offset");
    kv->set_value("4");
    kv = init->add_external_data();
    kv->set_key("length");
    kv->set_value(length);
    return b.WriteTo(dir);
  };
  auto g = ImportOnnxFile(make("weights.bin", "8"));
  ASSERT_TRUE(g.ok()) << g.status();
  const Tensor& w = g->constants.begin()->second;
  EXPECT_EQ(w.data<float>()[0], 1.5f);
  EXPECT_EQ(w.data<float>()[1], -2.0f);
  EXPECT_FALSE(ImportOnnxFile(make("missing.bin", "8")).ok());
  EXPECT_FALSE(ImportOnnxFile(make("../../etc/passwd", "8")).ok());
  EXPECT_FALSE(ImportOnnxFile(make("/etc/passwd", "8")).ok());
  EXPECT_FALSE(ImportOnnxFile(make("weights.bin", "12")).ok());   // past the end
  EXPECT_FALSE(ImportOnnxFile(make("weights.bin", "abc")).ok());  // not a number
}

TEST(OnnxImportTest, ValueProducedTwiceIsRejected) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("y", DType::kFloat32, {2});
  b.Node("Relu", {"x"}, {"y"});
  b.Node("Sigmoid", {"x"}, {"y"});
  EXPECT_FALSE(ImportOnnxBytes(b.Serialize(), "").ok());
}

TEST(OnnxImportTest, OutputNotProducedIsRejected) {
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {2}).Output("nothing", DType::kFloat32, {2});
  b.Node("Relu", {"x"}, {"y"});
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'nothing'"));
}

TEST(OnnxImportTest, StringInputIsRejected) {
  ModelBuilder b;
  b.Input("x", DType::kString, {2}).Output("y", DType::kString, {2});
  b.Node("Identity", {"x"}, {"y"});
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("string"));
}

TEST(OnnxImportTest, MissingOpsetIsRejected) {
  ModelBuilder b = ReluModel();
  b.mutable_proto().clear_opset_import();
  EXPECT_FALSE(ImportOnnxBytes(b.Serialize(), "").ok());
}

TEST(OnnxImportTest, WindowAttributesOnnxInferenceWouldDivideByAreRejected) {
  // libonnx's shape inference divides by strides unchecked (SIGFPE): these never reach it.
  struct Bad {
    const char* op;
    const char* attr;
    std::vector<int64_t> values;
  };
  for (const Bad& bad : {Bad{"MaxPool", "strides", {0, 2}}, Bad{"AveragePool", "strides", {1, -1}},
                         Bad{"MaxPool", "kernel_shape", {0, 2}}, Bad{"Conv", "dilations", {0, 1}},
                         Bad{"Conv", "pads", {0, 0, -1, 0}}, Bad{"Conv", "strides", {0, 0}}}) {
    ModelBuilder b;
    b.Input("x", DType::kFloat32, {1, 2, 8, 8}).Output("y", DType::kFloat32);
    std::vector<std::string> inputs = {"x"};
    if (std::string(bad.op) == "Conv") {
      Tensor w = Tensor::Create(DType::kFloat32, {2, 2, 2, 2}).value();
      b.Initializer("w", w);
      inputs.push_back("w");
    }
    auto& node = b.Node(bad.op, inputs, {"y"});
    if (std::string(bad.op) != "Conv") SetAttr(node, "kernel_shape", std::vector<int64_t>{2, 2});
    SetAttr(node, bad.attr, bad.values);
    auto g = ImportOnnxBytes(b.Serialize(), "");
    ASSERT_FALSE(g.ok()) << bad.op << " " << bad.attr;
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(std::string("'") + bad.attr + "'"));
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(bad.op));
  }
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {1, 2, 8, 8}).Output("y", DType::kFloat32);
  b.Initializer("w", Tensor::Create(DType::kFloat32, {2, 2, 2, 2}).value());
  SetAttr(b.Node("Conv", {"x", "w"}, {"y"}), "group", int64_t{0});
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("'group'"));
}

// Found by fuzz/onnx_model_fuzzer: libonnx's Conv inference, without kernel_shape, read past
// its dilations when the weight's rank differed from the input's (SIGSEGV inside libonnx).
TEST(OnnxImportTest, ConvWeightOfAnotherRankThanTheInputIsRejected) {
  for (const char* op : {"Conv", "ConvTranspose"}) {
    for (const std::vector<int64_t>& x_shape : {std::vector<int64_t>{-1, 5}, {1, 2, 8}}) {
      ModelBuilder b;
      b.Input("x", DType::kFloat32, x_shape).Output("y", DType::kFloat32);
      b.Initializer("w", Tensor::Create(DType::kFloat32, {2, 2, 3, 3}).value());
      b.Node(op, {"x", "w"}, {"y"});
      auto g = ImportOnnxBytes(b.Serialize(), "");
      if (std::string(op) == "Conv") {
        // ONNX fails Conv's inference on the mismatch; ConvTranspose's only stops inferring.
        ASSERT_FALSE(g.ok()) << op << " rank " << x_shape.size();
        EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
      } else if (g.ok()) {
        auto model = Model::FromGraph(*std::move(g));
        EXPECT_FALSE(model.ok()) << op << " rank " << x_shape.size();
      }
    }
  }
  // A computed weight, whose shape is known only from inference: imports, and is checked when
  // the model runs.
  ModelBuilder b;
  b.Input("x", DType::kFloat32, {1, 2, 8, 8}).Input("w0", DType::kFloat32, {-1, 2, 3, 3});
  b.Output("y", DType::kFloat32);
  b.Node("Relu", {"w0"}, {"w"});
  b.Node("Conv", {"x", "w"}, {"y"});
  EXPECT_TRUE(ImportOnnxBytes(b.Serialize(), "").ok());
}

// As for DT_BOOL tensor_content in requests (TensorProtoTest): raw bool bytes are 0 or 1 once
// read, so that kernels never read a bool holding another byte.
TEST(OnnxImportTest, BoolRawDataBytesOtherThanOneAreTrue) {
  onnx::TensorProto proto;
  proto.set_name("b");
  proto.set_data_type(onnx::TensorProto::BOOL);
  proto.add_dims(3);
  proto.set_raw_data(std::string("\x00\x02\xff", 3));
  auto t = TensorFromOnnx(proto, "");
  ASSERT_TRUE(t.ok()) << t.status();
  const uint8_t* bytes = static_cast<const uint8_t*>(t->raw_data());
  EXPECT_EQ(std::vector<uint8_t>(bytes, bytes + 3), (std::vector<uint8_t>{0, 1, 1}));
}

TEST(OnnxImportTest, NamesThatAreNotUtf8AreRejected) {
  // They would reach protobuf string fields (metadata, model status) that clients cannot parse.
  ModelBuilder b = ReluModel();
  b.mutable_proto().mutable_graph()->mutable_node(0)->set_name("relu\xff\xfe");
  auto g = ImportOnnxBytes(b.Serialize(), "");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("node name \"relu\\xff\\xfe\""));
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("not valid UTF-8"));
  ModelBuilder c = ReluModel();
  c.mutable_proto().mutable_graph()->mutable_node(0)->set_output(0, "y\xc0\x80");
  EXPECT_FALSE(ImportOnnxBytes(c.Serialize(), "").ok());
}

TEST(OnnxImportTest, TensorFileRoundTrip) {
  const auto dir = MakeTempDir("tensor");
  Tensor t = Tensor::FromVector<int64_t>({2, 2}, {1, -2, 3, 4});
  ASSERT_TRUE(WriteTensorFile(t, "t", dir / "t.pb").ok());
  auto r = ReadTensorFile(dir / "t.pb");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shape(), t.shape());
  EXPECT_EQ(r->data<int64_t>()[1], -2);
  {
    std::ofstream out(dir / "bad.pb", std::ios::binary);
    out << "\xff\xff\xff garbage";
  }
  EXPECT_FALSE(ReadTensorFile(dir / "bad.pb").ok());
}

}  // namespace
}  // namespace inferd::models
