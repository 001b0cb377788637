// Conversion between tensorflow.TensorProto (the gRPC wire form) and EdgeTensor.
#ifndef INFERD_SERVING_TENSOR_PROTO_H_
#define INFERD_SERVING_TENSOR_PROTO_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "serving/edge_tensor.h"
#include "tensorflow/core/framework/tensor.pb.h"

namespace inferd::serving {

// DT_* <-> DType. FromDataType returns nullopt for types inferd cannot hold (complex, quantized,
// resource, variant, bfloat16, float8, int4); ToDataType returns DT_INVALID for kUndefined.
std::optional<models::DType> FromDataType(tensorflow::DataType dtype);
tensorflow::DataType ToDataType(models::DType dtype);
// "DT_FLOAT"
std::string DataTypeName(tensorflow::DataType dtype);

struct TensorProtoLimits {
  // Upper bound on the bytes a single-value broadcast may expand to.
  size_t max_broadcast_bytes = size_t{256} << 20;
};

// Decodes values from tensor_content or the typed field that matches the dtype; a typed field
// with exactly one value is broadcast to the whole shape. Errors are INVALID_ARGUMENT and name
// `alias`: unsupported dtype, unknown rank, negative dimensions, element count mismatches, both
// encodings set, values out of range for a narrow integer type.
absl::StatusOr<EdgeTensor> FromTensorProto(const tensorflow::TensorProto& proto,
                                           absl::string_view alias,
                                           const TensorProtoLimits& limits = {});

// Encodes into the typed *_val field (TF Serving's default) or, when `as_tensor_content`, into
// tensor_content (strings always go to string_val).
void ToTensorProto(const EdgeTensor& tensor, bool as_tensor_content,
                   tensorflow::TensorProto* proto);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_TENSOR_PROTO_H_
