// Pre- and postprocessing a model version declares in `<version>/inferd.json`, beside
// model.onnx, so that clients can send encoded images and get the top classes back:
//
//   {
//     "inputs": {                       // keyed by the model's input name
//       "input": {"image": {
//         "height": 299, "width": 299,  // the model's H x W (required)
//         "channels": 3,                // 3: RGB, 1: grayscale (default 3)
//         "central_crop": 0.875,        // keep this central fraction of each side first (default 1)
//         "scale": 0.00392156862745098, // pixel (0..255) * scale ... (default 1/255)
//         "mean": [0.485, 0.456, 0.406],//  ... - mean[c] ... (default 0)
//         "std": [0.229, 0.224, 0.225], //  ... / std[c] (default 1)
//         "layout": "NCHW",             // or "NHWC" (default NCHW)
//         "max_pixels": 50000000        // larger images are refused (default 50 M)
//       }}
//     },
//     "outputs": {                      // keyed by the model's output name
//       "output": {"top_k": 5, "softmax": true, "labels": "labels.txt"}
//     }
//   }
//
// An image input becomes a DT_STRING input of shape [-1] in the served signature: one encoded
// JPEG or PNG per row, decoded (serving/image_decode.h), centrally cropped, resized to H x W
// (bilinear, half-pixel centres), scaled, normalised and laid out as the model wants. A top-k
// output is replaced by "classes" (DT_INT64 [-1,k], class indices), "scores" (DT_FLOAT [-1,k],
// softmax probabilities when "softmax", else the raw values) and, with a labels file (one label
// per line, line i names class i), "labels" (DT_STRING [-1,k]). Other inputs and outputs are
// served as the model has them. Unknown keys are errors, so typos do not pass silently.
//
// Immutable after Load(); Preprocess and Postprocess are thread-safe.
#ifndef INFERD_SERVING_PIPELINE_H_
#define INFERD_SERVING_PIPELINE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "models/tensor.h"
#include "serving/edge_tensor.h"
#include "serving/image_decode.h"
#include "serving/signature.h"

namespace inferd::serving {

inline constexpr char kPipelineFile[] = "inferd.json";

struct ImageInputSpec {
  int height = 0;
  int width = 0;
  int channels = 3;
  double central_crop = 1.0;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean;  // `channels` values
  std::vector<float> std;   // `channels` values, all > 0
  bool nchw = true;
  int64_t max_pixels = 50'000'000;
};

struct TopKSpec {
  int k = 0;
  bool softmax = false;
  std::vector<std::string> labels;  // empty: no "labels" output
};

class ModelPipeline {
 public:
  // Reads `dir`/inferd.json and checks it against the model's own signature; null when the file
  // does not exist (the model is served as it is). Errors name the file and what is wrong; they
  // fail the version's load.
  static absl::StatusOr<std::shared_ptr<const ModelPipeline>> Load(const std::filesystem::path& dir,
                                                                   const Signature& model);
  // The same from the file's text; `dir` resolves the labels file.
  static absl::StatusOr<std::shared_ptr<const ModelPipeline>> Parse(
      std::string_view json, const std::filesystem::path& dir, const Signature& model);

  // The signature clients see.
  const Signature& signature() const { return served_; }
  // The image spec of model input `index`, or null when that input takes tensors as they are.
  const ImageInputSpec* image_input(int index) const;

  // Decodes and preprocesses a batch of encoded images for model input `index` into the
  // model's float tensor [N,C,H,W] (or [N,H,W,C]). INVALID_ARGUMENT names the row and why.
  absl::StatusOr<models::Tensor> Preprocess(int index, const std::vector<std::string>& images) const;
  // The model's outputs (in model order) -> the served outputs (in signature order).
  absl::StatusOr<std::vector<EdgeTensor>> Postprocess(std::vector<models::Tensor> outputs) const;

 private:
  struct OutputRule {
    int model_output = -1;
    bool top_k = false;
    TopKSpec spec;
  };

  ModelPipeline() = default;

  Signature served_;
  std::vector<std::unique_ptr<ImageInputSpec>> images_;  // per model input, null: passed through
  std::vector<OutputRule> outputs_;                      // per model output
};

// One image, decoded, into `out` (spec.channels * height * width floats in the spec's layout).
// Exposed for tests and inferd-run.
void ResizeAndNormalize(const DecodedImage& image, const ImageInputSpec& spec, float* out);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_PIPELINE_H_
