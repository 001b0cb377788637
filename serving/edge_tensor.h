// A tensor as it crosses the API edge (gRPC TensorProto or REST JSON). Numeric and bool values
// live in a models::Tensor; DT_STRING values (bytes a preprocessor decodes, or `_bytes` outputs)
// live in `strings`, since models::Tensor has no string storage.
#ifndef INFERD_SERVING_EDGE_TENSOR_H_
#define INFERD_SERVING_EDGE_TENSOR_H_

#include <string>
#include <vector>

#include "models/tensor.h"

namespace inferd::serving {

struct EdgeTensor {
  models::DType dtype = models::DType::kUndefined;
  models::Shape shape;
  models::Tensor tensor;             // dtype != kString: dtype and shape equal the fields above
  std::vector<std::string> strings;  // dtype == kString: NumElements(shape) byte strings

  bool is_string() const { return dtype == models::DType::kString; }
  static EdgeTensor FromTensor(models::Tensor t) {
    EdgeTensor e;
    e.dtype = t.dtype();
    e.shape = t.shape();
    e.tensor = std::move(t);
    return e;
  }
};

// Inputs or outputs keyed by alias, in a stable order.
using NamedTensors = std::vector<std::pair<std::string, EdgeTensor>>;

}  // namespace inferd::serving

#endif  // INFERD_SERVING_EDGE_TENSOR_H_
