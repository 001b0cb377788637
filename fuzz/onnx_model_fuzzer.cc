// Fuzz target: a model file (<base_path>/<version>/model.onnx), as a version's load reads it:
// ONNX import (protobuf, initializers, attributes, opset checks), then planning (shape checks,
// kernel selection, load-time rewrites) on a shared one-thread CPU device; a model that plans
// is then run once, single-threaded, on zeros (dynamic dimensions 1, at most 2^16 values per
// input), as warmup and the first request would: the kernels meet whatever attributes and
// shapes the planner let through.
//
// External data is not allowed (no base directory), so the target touches no files. Run with
// ASAN_OPTIONS=allocator_may_return_null=1 (scripts/fuzz does) so that a model asking for a
// huge tensor gets the error inferd gives when an allocation fails. Properties: no crash or
// sanitizer report; a model that plans has at least one output; a run that succeeds returns
// one tensor per output.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "models/cpu/cpu_device.h"
#include "models/model.h"
#include "models/onnx_import.h"
#include "models/tensor.h"

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

  constexpr int64_t kMaxInputElements = int64_t{1} << 16;
  std::vector<inferd::models::Tensor> inputs;
  for (const inferd::models::TensorInfo& info : (*model)->inputs()) {
    if (!info.has_shape) return 0;
    inferd::models::Shape shape;
    for (int64_t d : info.dims) shape.push_back(d < 0 ? 1 : d);
    const int64_t n = inferd::models::NumElements(shape);
    if (n < 0 || n > kMaxInputElements) return 0;
    absl::StatusOr<inferd::models::Tensor> t = inferd::models::Tensor::Create(info.dtype, shape);
    if (!t.ok()) return 0;
    if (t->byte_size() > 0) std::memset(t->raw_data(), 0, t->byte_size());
    inputs.push_back(*std::move(t));
  }
  inferd::models::RunOptions run_options;
  run_options.single_threaded = true;
  absl::StatusOr<std::vector<inferd::models::Tensor>> outputs = (*model)->Run(inputs, run_options);
  if (outputs.ok()) {
    FUZZ_CHECK(outputs->size() == (*model)->outputs().size());
  } else {
    FUZZ_CHECK(!outputs.status().message().empty());
  }
  return 0;
}
