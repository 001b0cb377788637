// Fuzz target: a warmup file (assets.extra/tf_serving_warmup_requests), as a version's load
// reads it: TFRecord framing, then each record as a PredictionLog.
//
// Properties: no crash or sanitizer report; errors are INVALID_ARGUMENT (too many records) or
// DATA_LOSS (framing, checksums); records that parse are framed again byte for byte as they were
// read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "loader/warmup.h"
#include "tensorflow_serving/apis/prediction_log.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs invalid UTF-8 in string fields (and parses on): noise at fuzzing rates.
  static const google::protobuf::LogSilencer* const quiet = new google::protobuf::LogSilencer;
  (void)quiet;
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  constexpr int kMaxRecords = 1000;
  absl::StatusOr<std::vector<std::string>> records =
      inferd::loader::ParseTfRecords(file, kMaxRecords);
  if (!records.ok()) {
    FUZZ_CHECK(records.status().code() == absl::StatusCode::kInvalidArgument ||
               records.status().code() == absl::StatusCode::kDataLoss);
    return 0;
  }
  FUZZ_CHECK(records->size() <= static_cast<size_t>(kMaxRecords));
  FUZZ_CHECK(inferd::loader::WriteTfRecords(*records) == file);
  for (const std::string& record : *records) {
    tensorflow::serving::PredictionLog log;
    (void)log.ParseFromString(record);
  }
  return 0;
}
