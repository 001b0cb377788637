#include "models/graph.h"

#include "absl/strings/str_cat.h"

namespace inferd::models {
namespace {

absl::Status WrongType(const std::string& name, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat("attribute '", name, "' must be of type ", want));
}

}  // namespace

const Attribute* AttributeMap::Find(const std::string& name) const {
  auto it = attrs_.find(name);
  return it == attrs_.end() ? nullptr : &it->second;
}

absl::StatusOr<int64_t> AttributeMap::GetInt(const std::string& name, int64_t default_value) const {
  const Attribute* a = Find(name);
  if (a == nullptr) return default_value;
  if (a->type != Attribute::Type::kInt) return WrongType(name, "int");
  return a->i;
}

absl::StatusOr<float> AttributeMap::GetFloat(const std::string& name, float default_value) const {
  const Attribute* a = Find(name);
  if (a == nullptr) return default_value;
  if (a->type != Attribute::Type::kFloat) return WrongType(name, "float");
  return a->f;
}

absl::StatusOr<std::string> AttributeMap::GetString(const std::string& name,
                                                    std::string default_value) const {
  const Attribute* a = Find(name);
  if (a == nullptr) return default_value;
  if (a->type != Attribute::Type::kString) return WrongType(name, "string");
  return a->s;
}

absl::StatusOr<std::vector<int64_t>> AttributeMap::GetInts(
    const std::string& name, std::vector<int64_t> default_value) const {
  const Attribute* a = Find(name);
  if (a == nullptr) return default_value;
  if (a->type != Attribute::Type::kInts) return WrongType(name, "ints");
  return a->ints;
}

absl::StatusOr<std::vector<float>> AttributeMap::GetFloats(const std::string& name,
                                                           std::vector<float> default_value) const {
  const Attribute* a = Find(name);
  if (a == nullptr) return default_value;
  if (a->type != Attribute::Type::kFloats) return WrongType(name, "floats");
  return a->floats;
}

absl::StatusOr<Tensor> AttributeMap::GetTensor(const std::string& name) const {
  const Attribute* a = Find(name);
  if (a == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("missing attribute '", name, "'"));
  }
  if (a->type != Attribute::Type::kTensor) return WrongType(name, "tensor");
  return a->t;
}

std::string Node::Describe() const {
  return absl::StrCat(op_type, " node '", name, "' (opset ", opset, ")");
}

}  // namespace inferd::models
