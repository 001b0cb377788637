#include "serving/config_files.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace inferd::serving {
namespace {

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::string source) : source_(std::move(source)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string source_;
  std::string first_;
};

}  // namespace

absl::Status ParseTextProto(const std::string& text, const std::string& source,
                            google::protobuf::Message* message) {
  Collector errors(source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, message)) {
    return absl::InvalidArgumentError(
        errors.first().empty() ? absl::StrCat(source, ": not a valid ",
                                              message->GetDescriptor()->full_name())
                               : errors.first());
  }
  return absl::OkStatus();
}

absl::Status ReadTextProtoFile(const std::string& path, google::protobuf::Message* message) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseTextProto(buffer.str(), path, message);
}

absl::StatusOr<BatchingConfig> ToBatchingConfig(
    const tensorflow::serving::BatchingParameters& p) {
  BatchingConfig c;
  c.queue.merge = true;
  c.queue.max_batch_size = p.has_max_batch_size() ? p.max_batch_size().value() : 1000;
  c.queue.batch_timeout =
      absl::Microseconds(p.has_batch_timeout_micros() ? p.batch_timeout_micros().value() : 0);
  c.queue.max_enqueued_batches =
      p.has_max_enqueued_batches() ? p.max_enqueued_batches().value() : 10;
  c.num_batch_threads = p.has_num_batch_threads() ? static_cast<int>(p.num_batch_threads().value())
                                                  : 0;
  if (c.queue.max_batch_size <= 0) {
    return absl::InvalidArgumentError("batching parameters: max_batch_size must be positive");
  }
  if (c.queue.batch_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("batching parameters: batch_timeout_micros is negative");
  }
  if (c.queue.max_enqueued_batches <= 0) {
    return absl::InvalidArgumentError("batching parameters: max_enqueued_batches must be positive");
  }
  if (p.has_num_batch_threads() && (c.num_batch_threads <= 0 || c.num_batch_threads > 1024)) {
    return absl::InvalidArgumentError("batching parameters: num_batch_threads must be in [1, 1024]");
  }
  int64_t last = 0;
  for (int64_t size : p.allowed_batch_sizes()) {
    if (size <= last) {
      return absl::InvalidArgumentError(
          "batching parameters: allowed_batch_sizes must be positive and increasing");
    }
    last = size;
    c.queue.allowed_batch_sizes.push_back(size);
  }
  if (!c.queue.allowed_batch_sizes.empty() && last != c.queue.max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batching parameters: the last entry of allowed_batch_sizes (", last,
        ") must equal max_batch_size (", c.queue.max_batch_size, ")"));
  }
  if (p.has_enable_large_batch_splitting() && p.enable_large_batch_splitting().value()) {
    return absl::InvalidArgumentError(
        "batching parameters: enable_large_batch_splitting is not supported by inferd; send "
        "requests of at most max_batch_size rows");
  }
  return c;
}

}  // namespace inferd::serving
