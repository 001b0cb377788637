// Fuzz target: a gRPC PredictRequest, as PredictionService/Predict decodes it.
//
// Parses the bytes as tensorflow.serving.PredictRequest and converts every input's TensorProto
// to a tensor (FromTensorProto, broadcasts capped at 1 MiB so that a tiny message cannot ask
// for gigabytes). Each tensor that converts is encoded again both ways inferd answers with
// (typed *_val fields and tensor_content) and decoded once more. Properties: no crash or
// sanitizer report; conversion errors are INVALID_ARGUMENT; a tensor survives both round trips
// with its dtype, shape and bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "models/tensor.h"
#include "serving/edge_tensor.h"
#include "serving/tensor_proto.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace {

using inferd::serving::EdgeTensor;

bool SameContents(const EdgeTensor& a, const EdgeTensor& b) {
  if (a.dtype != b.dtype || a.shape != b.shape) return false;
  if (a.is_string()) return a.strings == b.strings;
  if (a.tensor.num_elements() != b.tensor.num_elements()) return false;
  if (a.tensor.byte_size() != b.tensor.byte_size()) return false;
  return a.tensor.byte_size() == 0 ||
         std::memcmp(a.tensor.raw_data(), b.tensor.raw_data(), a.tensor.byte_size()) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs invalid UTF-8 in string fields (and parses on): noise at fuzzing rates.
  static const google::protobuf::LogSilencer* const quiet = new google::protobuf::LogSilencer;
  (void)quiet;
  tensorflow::serving::PredictRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  inferd::serving::TensorProtoLimits limits;
  limits.max_broadcast_bytes = size_t{1} << 20;
  for (const auto& [alias, proto] : request.inputs()) {
    absl::StatusOr<EdgeTensor> tensor = inferd::serving::FromTensorProto(proto, alias, limits);
    if (!tensor.ok()) {
      FUZZ_CHECK(tensor.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    FUZZ_CHECK(inferd::models::NumElements(tensor->shape) >= 0);
    for (bool as_tensor_content : {false, true}) {
      tensorflow::TensorProto encoded;
      inferd::serving::ToTensorProto(*tensor, as_tensor_content, &encoded);
      absl::StatusOr<EdgeTensor> decoded = inferd::serving::FromTensorProto(encoded, alias, limits);
      FUZZ_CHECK(decoded.ok());
      FUZZ_CHECK(SameContents(*tensor, *decoded));
    }
  }
  return 0;
}
