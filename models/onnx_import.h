// ONNX import: ModelProto (Debian's libonnx-dev classes) -> Graph, and TensorProto <-> Tensor.
// Every function validates its untrusted input and returns an error naming what was wrong.
#ifndef INFERD_MODELS_ONNX_IMPORT_H_
#define INFERD_MODELS_ONNX_IMPORT_H_

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "models/graph.h"
#include "models/tensor.h"

namespace onnx {
class ModelProto;
class TensorProto;
}  // namespace onnx

namespace inferd::models {

// Reads and parses `path`; external tensor data is resolved relative to its directory.
absl::StatusOr<Graph> ImportOnnxFile(const std::filesystem::path& path);
// Parses serialized ModelProto bytes. `base_dir` resolves external data ("" forbids it).
absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes,
                                      const std::filesystem::path& base_dir);
absl::StatusOr<Graph> ImportOnnxModel(const onnx::ModelProto& model,
                                      const std::filesystem::path& base_dir);

// TensorProto -> Tensor (raw_data, typed fields or external data).
absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto,
                                      const std::filesystem::path& base_dir);
void TensorToOnnx(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto);

// A serialized TensorProto file (the ONNX test-data layout's input_0.pb).
absl::StatusOr<Tensor> ReadTensorFile(const std::filesystem::path& path);
absl::Status WriteTensorFile(const Tensor& tensor, const std::string& name,
                             const std::filesystem::path& path);

}  // namespace inferd::models

#endif  // INFERD_MODELS_ONNX_IMPORT_H_
