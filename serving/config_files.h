// Reading TF Serving's text-format config files: --model_config_file (ModelServerConfig),
// --batching_parameters_file (BatchingParameters), --monitoring_config_file (MonitoringConfig).
#ifndef INFERD_SERVING_CONFIG_FILES_H_
#define INFERD_SERVING_CONFIG_FILES_H_

#include <string>

#include <google/protobuf/message.h>

#include "absl/status/statusor.h"
#include "serving/batch_scheduler.h"
#include "tensorflow_serving/servables/tensorflow/session_bundle_config.pb.h"

namespace inferd::serving {

// Parses `text` as a text-format `message`; errors name `source`, the line and the column.
absl::Status ParseTextProto(const std::string& text, const std::string& source,
                            google::protobuf::Message* message);
// Reads and parses a file.
absl::Status ReadTextProtoFile(const std::string& path, google::protobuf::Message* message);

struct BatchingConfig {
  BatchQueueOptions queue;
  int num_batch_threads = 0;  // 0: not set in the file
};
// Validates and converts BatchingParameters (TF Serving's defaults for unset fields; the last
// allowed batch size must equal max_batch_size).
absl::StatusOr<BatchingConfig> ToBatchingConfig(
    const tensorflow::serving::BatchingParameters& params);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_CONFIG_FILES_H_
