// The serving signature of a model version: the named, typed inputs and outputs clients see.
// inferd serves one signature per model, "serving_default", built from the ONNX graph: aliases
// are the graph's input and output names, dimensions the graph does not fix are -1.
#ifndef INFERD_SERVING_SIGNATURE_H_
#define INFERD_SERVING_SIGNATURE_H_

#include <string>
#include <vector>

#include "models/dtype.h"
#include "models/tensor.h"

namespace inferd::models {
class Model;
}

namespace inferd::serving {

inline constexpr char kDefaultSignature[] = "serving_default";
inline constexpr char kPredictMethodName[] = "tensorflow/serving/predict";

struct TensorSpec {
  std::string name;  // the alias clients use
  models::DType dtype = models::DType::kUndefined;
  models::Shape shape;     // -1 for dimensions that vary; dim 0 is the batch dimension
  bool has_shape = true;   // false: not even the rank is known
};

struct Signature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;

  // Index into inputs / outputs, or -1.
  int InputIndex(const std::string& name) const;
  int OutputIndex(const std::string& name) const;
};

Signature SignatureFromModel(const models::Model& model);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_SIGNATURE_H_
