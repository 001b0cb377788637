// The in-memory form of a model graph, independent of any file format. Values are numbered;
// nodes refer to values by index. Built by an importer (onnx_import.h), rewritten by the
// planner (planner.h), then frozen inside a Model.
#ifndef INFERD_MODELS_GRAPH_H_
#define INFERD_MODELS_GRAPH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/tensor.h"

namespace inferd::models {

struct Attribute {
  enum class Type { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kOther };
  Type type = Type::kOther;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

// Typed lookups with defaults. A present attribute of the wrong type is an error naming it.
class AttributeMap {
 public:
  void Set(std::string name, Attribute a) { attrs_[std::move(name)] = std::move(a); }
  bool Has(const std::string& name) const { return attrs_.count(name) > 0; }
  const Attribute* Find(const std::string& name) const;

  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t default_value) const;
  absl::StatusOr<float> GetFloat(const std::string& name, float default_value) const;
  absl::StatusOr<std::string> GetString(const std::string& name, std::string default_value) const;
  absl::StatusOr<std::vector<int64_t>> GetInts(const std::string& name,
                                               std::vector<int64_t> default_value) const;
  absl::StatusOr<std::vector<float>> GetFloats(const std::string& name,
                                               std::vector<float> default_value) const;
  // Required tensor attribute.
  absl::StatusOr<Tensor> GetTensor(const std::string& name) const;

  const std::map<std::string, Attribute>& all() const { return attrs_; }

 private:
  std::map<std::string, Attribute> attrs_;
};

inline constexpr int kNoValue = -1;  // an omitted optional input or output

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;        // "" for the default ONNX domain
  int64_t opset = 0;         // the model's opset for `domain`
  std::vector<int> inputs;   // value ids; kNoValue for an omitted optional input
  std::vector<int> outputs;  // value ids; kNoValue for an omitted optional output
  AttributeMap attrs;

  // "Conv 'conv1' (opset 13)" for error messages.
  std::string Describe() const;
};

// A declared graph input or output: name, element type, dims (-1 where dynamic or unknown).
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  bool has_shape = false;  // false: the rank is unknown too
};

struct Value {
  std::string name;
  std::optional<TensorInfo> info;  // declared type, where the model states one
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;          // runtime inputs, in declared order (initializers excluded)
  std::vector<int> outputs;         // in declared order
  std::map<int, Tensor> constants;  // initializers and folded values

  int AddValue(std::string name) {
    values.push_back(Value{std::move(name), std::nullopt});
    return static_cast<int>(values.size()) - 1;
  }
};

}  // namespace inferd::models

#endif  // INFERD_MODELS_GRAPH_H_
