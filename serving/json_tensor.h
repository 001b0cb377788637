// Conversion between TF Serving's REST :predict JSON and tensors.
//
// Request: {"signature_name"?: string, "instances": [...]} (row format) or
// {"signature_name"?: string, "inputs": value | {name: value}} (columnar format). Values are
// nested lists of numbers, bools or strings ({"b64": "..."} for bytes), typed with the
// signature's input dtypes. Response: {"predictions": [...]} for row requests, {"outputs": ...}
// for columnar ones; DT_STRING outputs whose alias ends in "_bytes" are written as
// {"b64": "..."}. AppendJsonString (serving/json.h) is available through this header.
//
// All functions are stateless and thread-safe.
#ifndef INFERD_SERVING_JSON_TENSOR_H_
#define INFERD_SERVING_JSON_TENSOR_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "serving/edge_tensor.h"
#include "serving/json.h"
#include "serving/signature.h"

namespace inferd::serving {

struct JsonPredictRequest {
  std::string signature_name;  // "" when absent
  bool row_format = false;     // true: "instances" was given; false: "inputs"
  NamedTensors inputs;         // one entry per input given, typed with the signature's dtype
};

// Parses a :predict body. Inputs come out in the order the request names them (for row format,
// the order of the first row's keys). Inputs of the signature that the request does not name are
// not an error here. String (kString) inputs fill EdgeTensor::strings and leave `tensor` empty.
// Errors are absl::InvalidArgumentError with a clear message. Does not use Signature's methods.
absl::StatusOr<JsonPredictRequest> ParseJsonPredictRequest(std::string_view body,
                                                           const Signature& signature);

// {"predictions": ...} when row_format, else {"outputs": ...}. Compact (no whitespace).
// Errors: InvalidArgument for no outputs, a dtype without a JSON form, and in row format a rank-0
// output or outputs whose dimension 0 differs ("inconsistent batch size"); Internal for an
// EdgeTensor whose data does not match its shape.
absl::StatusOr<std::string> WriteJsonPredictResponse(bool row_format, const NamedTensors& outputs);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_JSON_TENSOR_H_
