#include "serving/signature.h"

#include "models/model.h"

namespace inferd::serving {
namespace {

TensorSpec SpecFromInfo(const models::TensorInfo& info) {
  TensorSpec spec;
  spec.name = info.name;
  spec.dtype = info.dtype;
  spec.has_shape = info.has_shape;
  for (int64_t d : info.dims) spec.shape.push_back(d >= 0 ? d : -1);
  return spec;
}

}  // namespace

int Signature::InputIndex(const std::string& name) const {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int Signature::OutputIndex(const std::string& name) const {
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Signature SignatureFromModel(const models::Model& model) {
  Signature sig;
  for (const models::TensorInfo& info : model.inputs()) sig.inputs.push_back(SpecFromInfo(info));
  for (const models::TensorInfo& info : model.outputs()) sig.outputs.push_back(SpecFromInfo(info));
  return sig;
}

}  // namespace inferd::serving
