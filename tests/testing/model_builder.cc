#include "tests/testing/model_builder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "models/onnx_import.h"

namespace inferd::testing {
namespace {

void SetType(onnx::ValueInfoProto* v, const std::string& name, models::DType dtype,
             const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int>(dtype));
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d >= 0) {
      dim->set_dim_value(d);
    } else {
      dim->set_dim_param("batch");
    }
  }
}

}  // namespace

ModelBuilder::ModelBuilder(int64_t opset) {
  model_.set_ir_version(8);
  auto* o = model_.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

ModelBuilder& ModelBuilder::Input(const std::string& name, models::DType dtype,
                                  std::vector<int64_t> dims) {
  SetType(model_.mutable_graph()->add_input(), name, dtype, dims);
  return *this;
}

ModelBuilder& ModelBuilder::Output(const std::string& name, models::DType dtype,
                                   std::vector<int64_t> dims) {
  SetType(model_.mutable_graph()->add_output(), name, dtype, dims);
  return *this;
}

ModelBuilder& ModelBuilder::Output(const std::string& name, models::DType dtype) {
  onnx::ValueInfoProto* v = model_.mutable_graph()->add_output();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int>(dtype));
  return *this;
}

ModelBuilder& ModelBuilder::Initializer(const std::string& name, const models::Tensor& value) {
  models::TensorToOnnx(value, name, model_.mutable_graph()->add_initializer());
  return *this;
}

onnx::NodeProto& ModelBuilder::Node(const std::string& op, std::vector<std::string> inputs,
                                    std::vector<std::string> outputs) {
  onnx::NodeProto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(node_count_++));
  for (auto& i : inputs) n->add_input(i);
  for (auto& o : outputs) n->add_output(o);
  return *n;
}

std::string ModelBuilder::Serialize() const { return model_.SerializeAsString(); }

std::filesystem::path ModelBuilder::WriteTo(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  const auto path = dir / "model.onnx";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  model_.SerializeToOstream(&out);
  return path;
}

void SetAttr(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, float value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, std::vector<int64_t> values) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void SetAttr(onnx::NodeProto& node, const std::string& name, const models::Tensor& value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  models::TensorToOnnx(value, "", a->mutable_t());
}

std::filesystem::path MakeTempDir(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("inferd_test_" + std::to_string(::getpid())) /
                              (std::string(info ? info->name() : "x") + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace inferd::testing
