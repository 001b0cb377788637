// Builds small ONNX models in memory for tests: inputs, outputs, initializers, nodes with
// attributes. Not thread-safe.
#ifndef INFERD_TESTS_TESTING_MODEL_BUILDER_H_
#define INFERD_TESTS_TESTING_MODEL_BUILDER_H_

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <string>
#include <vector>

#include "models/tensor.h"

namespace inferd::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13);

  // dims: -1 for a dynamic dimension.
  ModelBuilder& Input(const std::string& name, models::DType dtype, std::vector<int64_t> dims);
  ModelBuilder& Output(const std::string& name, models::DType dtype, std::vector<int64_t> dims);
  // An output whose shape the model does not declare.
  ModelBuilder& Output(const std::string& name, models::DType dtype);
  ModelBuilder& Initializer(const std::string& name, const models::Tensor& value);
  // Adds a node; returns it so the caller can add attributes with the helpers below.
  onnx::NodeProto& Node(const std::string& op, std::vector<std::string> inputs,
                        std::vector<std::string> outputs);

  const onnx::ModelProto& proto() const { return model_; }
  onnx::ModelProto& mutable_proto() { return model_; }
  std::string Serialize() const;
  // Writes model.onnx into `dir` (created) and returns its path.
  std::filesystem::path WriteTo(const std::filesystem::path& dir) const;

 private:
  onnx::ModelProto model_;
  int node_count_ = 0;
};

void SetAttr(onnx::NodeProto& node, const std::string& name, int64_t value);
void SetAttr(onnx::NodeProto& node, const std::string& name, float value);
void SetAttr(onnx::NodeProto& node, const std::string& name, const std::string& value);
void SetAttr(onnx::NodeProto& node, const std::string& name, std::vector<int64_t> values);
void SetAttr(onnx::NodeProto& node, const std::string& name, const models::Tensor& value);

// A fresh empty directory under the test's temporary directory.
std::filesystem::path MakeTempDir(const std::string& name);

}  // namespace inferd::testing

#endif  // INFERD_TESTS_TESTING_MODEL_BUILDER_H_
