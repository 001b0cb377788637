// Warmup requests: <version>/assets.extra/tf_serving_warmup_requests, a TFRecord file of
// tensorflow.serving.PredictionLog records (TF Serving's format, at most 1000 records).
#ifndef INFERD_LOADER_WARMUP_H_
#define INFERD_LOADER_WARMUP_H_

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tensorflow_serving/apis/prediction_log.pb.h"

namespace inferd::loader {

inline constexpr char kWarmupFile[] = "assets.extra/tf_serving_warmup_requests";
inline constexpr int kMaxWarmupRecords = 1000;

// CRC-32C (Castagnoli) and TFRecord's masked form of it.
uint32_t Crc32c(std::string_view data);
uint32_t MaskCrc(uint32_t crc);

// Splits a TFRecord byte string into its records, checking both CRCs of every record. Errors
// name the record index and byte offset (truncated length, bad CRC, truncated data).
absl::StatusOr<std::vector<std::string>> ParseTfRecords(std::string_view file, int max_records);
// Frames records as TFRecord (used by tests and tools that write warmup files).
std::string WriteTfRecords(const std::vector<std::string>& records);

// Calls `fn` for each record of the version's warmup file, parsed as a PredictionLog. A missing
// file is zero records. A malformed file or record, more than kMaxWarmupRecords records, or an
// error from `fn` fails the call (and so the version's load). Returns the number of records.
absl::StatusOr<int> ForEachWarmupRecord(
    const std::filesystem::path& version_dir,
    const std::function<absl::Status(const tensorflow::serving::PredictionLog&)>& fn);

}  // namespace inferd::loader

#endif  // INFERD_LOADER_WARMUP_H_
