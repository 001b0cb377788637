// Fuzz target: a REST :predict body, as inferd-server's HTTP handler reads it.
//
// Parses the bytes as JSON and, when they parse, reads every value of the document with every
// accessor its type has (numbers converted to each arithmetic type, float32 checked against
// std::from_chars). Then decodes the body as a :predict request against three signatures (one
// float input of known shape, like the digits model's; inputs of every JSON-capable dtype with
// unknown shapes; none), and writes whatever it decoded back as a response. Properties: no
// crash or sanitizer report; float32 values round as from_chars rounds them; every decoded
// input holds as many values as its shape says; a response that is written is valid JSON.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "models/dtype.h"
#include "models/tensor.h"
#include "serving/json.h"
#include "serving/json_tensor.h"
#include "serving/signature.h"

namespace {

using inferd::models::DType;
using inferd::serving::EdgeTensor;
using inferd::serving::JsonDocument;
using inferd::serving::JsonNumberStatus;
using inferd::serving::JsonPredictRequest;
using inferd::serving::JsonValue;
using inferd::serving::Signature;
using inferd::serving::TensorSpec;

TensorSpec Spec(std::string name, DType dtype, inferd::models::Shape shape, bool has_shape) {
  TensorSpec spec;
  spec.name = std::move(name);
  spec.dtype = dtype;
  spec.shape = std::move(shape);
  spec.has_shape = has_shape;
  return spec;
}

const Signature* const kSignatures[] = {
    new Signature{{Spec("image", DType::kFloat32, {-1, 8, 8}, true)}, {}},
    new Signature{{Spec("f32", DType::kFloat32, {}, false), Spec("f64", DType::kFloat64, {}, false),
                   Spec("f16", DType::kFloat16, {}, false), Spec("i8", DType::kInt8, {-1}, true),
                   Spec("i64", DType::kInt64, {}, false), Spec("u8", DType::kUInt8, {}, false),
                   Spec("u64", DType::kUInt64, {}, false), Spec("b", DType::kBool, {}, false),
                   Spec("s", DType::kString, {}, false)},
                  {}},
    new Signature{},
};

template <typename T>
void Convert(JsonValue v) {
  T out;
  (void)v.GetNumber(&out);
}

// float32 conversion rounds as std::from_chars does (the parser converts most numbers while
// scanning them, through a double and an error margin); from_chars errors where GetNumber
// saturates out of range, and does not read NaN or Infinity.
void CheckFloatRounding(JsonValue v) {
  float got = 0;
  const JsonNumberStatus status = v.GetNumber(&got);
  const std::string_view text = v.number_text();
  const char* first = text.data() + (text[0] == '-' ? 1 : 0);
  if (*first == 'N' || *first == 'I') return;
  FUZZ_CHECK(status == JsonNumberStatus::kOk || status == JsonNumberStatus::kOutOfRange);
  float want = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), want).ec == std::errc()) {
    FUZZ_CHECK(status == JsonNumberStatus::kOk);
    FUZZ_CHECK(std::memcmp(&got, &want, sizeof(float)) == 0);
  }
}

// Reads every value under `v` with the accessors of its type.
void Visit(JsonValue v) {
  (void)v.offset();
  switch (v.type()) {
    case inferd::serving::JsonType::kNull:
      break;
    case inferd::serving::JsonType::kBool:
      (void)v.bool_value();
      break;
    case inferd::serving::JsonType::kNumber:
      FUZZ_CHECK(!v.number_text().empty());
      CheckFloatRounding(v);
      Convert<double>(v);
      Convert<int8_t>(v);
      Convert<int16_t>(v);
      Convert<int32_t>(v);
      Convert<int64_t>(v);
      Convert<uint8_t>(v);
      Convert<uint16_t>(v);
      Convert<uint32_t>(v);
      Convert<uint64_t>(v);
      break;
    case inferd::serving::JsonType::kString:
      (void)v.string_value();
      break;
    case inferd::serving::JsonType::kArray: {
      size_t n = 0;
      for (JsonValue e : v.elements()) {
        Visit(e);
        ++n;
      }
      FUZZ_CHECK(n == v.size());
      if (n > 0) Visit(v.front());
      break;
    }
    case inferd::serving::JsonType::kObject: {
      size_t n = 0;
      (void)v.IsBase64Object();
      for (const JsonValue::Member& m : v.members()) {
        (void)m.key;
        Visit(m.value);
        ++n;
      }
      FUZZ_CHECK(n == v.size());
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(body);
  if (doc.ok()) {
    FUZZ_CHECK(doc->node_count() > 0);
    Visit(doc->root());
  } else {
    FUZZ_CHECK(!doc.status().message().empty());
  }

  for (const Signature* signature : kSignatures) {
    absl::StatusOr<JsonPredictRequest> request =
        inferd::serving::ParseJsonPredictRequest(body, *signature);
    if (!request.ok()) {
      FUZZ_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    FUZZ_CHECK(doc.ok());  // a body that decodes is JSON
    for (const auto& [name, tensor] : request->inputs) {
      FUZZ_CHECK(signature->InputIndex(name) >= 0);
      const int64_t n = inferd::models::NumElements(tensor.shape);
      FUZZ_CHECK(n >= 0);
      if (tensor.is_string()) {
        FUZZ_CHECK(tensor.strings.size() == static_cast<size_t>(n));
      } else {
        FUZZ_CHECK(tensor.tensor.dtype() == tensor.dtype);
        FUZZ_CHECK(tensor.tensor.num_elements() == n);
      }
    }
    if (request->inputs.empty()) continue;
    for (bool row_format : {true, false}) {
      absl::StatusOr<std::string> response =
          inferd::serving::WriteJsonPredictResponse(row_format, request->inputs);
      if (!response.ok()) {
        FUZZ_CHECK(response.status().code() == absl::StatusCode::kInvalidArgument);
        continue;
      }
      FUZZ_CHECK(JsonDocument::Parse(*response).ok());
    }
  }
  return 0;
}
