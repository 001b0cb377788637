// Fuzz target: a model file (<base_path>/<version>/model.onnx), as a version's load reads it:
// ONNX import (protobuf, initializers, attributes, opset checks), then planning (shape checks,
// kernel selection, load-time rewrites) on a shared one-thread CPU device.
//
// External data is not allowed (no base directory), so the target touches no files. Properties:
// no crash or sanitizer report; a model that plans has at least one output.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "models/cpu/cpu_device.h"
#include "models/model.h"
#include "models/onnx_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // protobuf logs invalid UTF-8 in string fields (and parses on): noise at fuzzing rates.
  static const google::protobuf::LogSilencer* const quiet = new google::protobuf::LogSilencer;
  (void)quiet;
  static const std::shared_ptr<inferd::models::CpuDevice> device =
      std::make_shared<inferd::models::CpuDevice>(1);
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<inferd::models::Graph> graph = inferd::models::ImportOnnxBytes(bytes, "");
  if (!graph.ok()) {
    FUZZ_CHECK(!graph.status().message().empty());
    return 0;
  }
  inferd::models::LoadOptions options;
  options.device = device;
  absl::StatusOr<std::unique_ptr<inferd::models::Model>> model =
      inferd::models::Model::FromGraph(*std::move(graph), options);
  if (!model.ok()) {
    FUZZ_CHECK(!model.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(!(*model)->outputs().empty());
  return 0;
}
