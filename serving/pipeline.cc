#include "serving/pipeline.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace inferd::serving {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kMaxSide = 16384;     // H or W a model may ask for
constexpr size_t kMaxLabels = 1 << 20;

absl::Status Bad(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kPipelineFile, ": ", where, ": ", what));
}

// Keys of `obj` must be among `allowed`.
absl::Status OnlyKeys(const json& obj, absl::string_view where,
                      std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(where, absl::StrCat("unknown key \"", key, "\" (known: ",
                                     absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Number(const json& obj, const char* key, double fallback,
                              absl::string_view where) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj[key];
  if (!v.is_number()) return Bad(where, absl::StrCat("\"", key, "\" must be a number"));
  return v.get<double>();
}

absl::StatusOr<int64_t> Integer(const json& obj, const char* key, int64_t fallback,
                                absl::string_view where) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj[key];
  if (!v.is_number_integer()) return Bad(where, absl::StrCat("\"", key, "\" must be an integer"));
  return v.get<int64_t>();
}

// A per-channel list ("mean", "std"): `channels` numbers, or one number for all.
absl::StatusOr<std::vector<float>> PerChannel(const json& obj, const char* key, float fallback,
                                              int channels, absl::string_view where) {
  if (!obj.contains(key)) return std::vector<float>(channels, fallback);
  const json& v = obj[key];
  if (v.is_number()) return std::vector<float>(channels, v.get<float>());
  if (!v.is_array() || v.size() != static_cast<size_t>(channels)) {
    return Bad(where, absl::StrCat("\"", key, "\" must be a number or a list of ", channels,
                                   " numbers (one per channel)"));
  }
  std::vector<float> out;
  for (const json& x : v) {
    if (!x.is_number()) return Bad(where, absl::StrCat("\"", key, "\" holds a non-number"));
    out.push_back(x.get<float>());
  }
  return out;
}

absl::StatusOr<ImageInputSpec> ParseImage(const json& obj, absl::string_view where) {
  if (!obj.is_object()) return Bad(where, "\"image\" must be an object");
  RETURN_IF_ERROR(OnlyKeys(obj, where,
                           {"height", "width", "channels", "central_crop", "scale", "mean", "std",
                            "layout", "max_pixels"}));
  ImageInputSpec spec;
  for (const char* key : {"height", "width"}) {
    if (!obj.contains(key)) return Bad(where, absl::StrCat("\"", key, "\" is required"));
    ASSIGN_OR_RETURN(int64_t v, Integer(obj, key, 0, where));
    if (v < 1 || v > kMaxSide) {
      return Bad(where, absl::StrCat("\"", key, "\" must be in [1, ", kMaxSide, "], got ", v));
    }
    (std::string_view(key) == "height" ? spec.height : spec.width) = static_cast<int>(v);
  }
  ASSIGN_OR_RETURN(int64_t channels, Integer(obj, "channels", 3, where));
  if (channels != 1 && channels != 3) return Bad(where, "\"channels\" must be 1 or 3");
  spec.channels = static_cast<int>(channels);
  ASSIGN_OR_RETURN(spec.central_crop, Number(obj, "central_crop", 1.0, where));
  if (!(spec.central_crop > 0.0 && spec.central_crop <= 1.0)) {
    return Bad(where, "\"central_crop\" must be in (0, 1]");
  }
  ASSIGN_OR_RETURN(double scale, Number(obj, "scale", 1.0 / 255.0, where));
  if (!std::isfinite(scale)) return Bad(where, "\"scale\" must be finite");
  spec.scale = static_cast<float>(scale);
  ASSIGN_OR_RETURN(spec.mean, PerChannel(obj, "mean", 0.0f, spec.channels, where));
  ASSIGN_OR_RETURN(spec.std, PerChannel(obj, "std", 1.0f, spec.channels, where));
  for (float s : spec.std) {
    if (!(s > 0.0f) || !std::isfinite(s)) return Bad(where, "\"std\" values must be > 0");
  }
  for (float m : spec.mean) {
    if (!std::isfinite(m)) return Bad(where, "\"mean\" values must be finite");
  }
  if (obj.contains("layout")) {
    const json& v = obj["layout"];
    if (!v.is_string() || (v != "NCHW" && v != "NHWC")) {
      return Bad(where, "\"layout\" must be \"NCHW\" or \"NHWC\"");
    }
    spec.nchw = v == "NCHW";
  }
  ASSIGN_OR_RETURN(spec.max_pixels, Integer(obj, "max_pixels", spec.max_pixels, where));
  if (spec.max_pixels < 1) return Bad(where, "\"max_pixels\" must be positive");
  return spec;
}

absl::StatusOr<std::vector<std::string>> ReadLabels(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read labels file ", file.string()));
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
    if (labels.size() > kMaxLabels) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels file ", file.string(), " has more than ", kMaxLabels, " lines"));
    }
  }
  return labels;
}

absl::StatusOr<TopKSpec> ParseTopK(const json& obj, const fs::path& dir, absl::string_view where) {
  if (!obj.is_object()) return Bad(where, "must be an object");
  RETURN_IF_ERROR(OnlyKeys(obj, where, {"top_k", "softmax", "labels"}));
  TopKSpec spec;
  if (!obj.contains("top_k")) return Bad(where, "\"top_k\" is required");
  ASSIGN_OR_RETURN(int64_t k, Integer(obj, "top_k", 0, where));
  if (k < 1 || k > 1000000) return Bad(where, "\"top_k\" must be in [1, 1000000]");
  spec.k = static_cast<int>(k);
  if (obj.contains("softmax")) {
    if (!obj["softmax"].is_boolean()) return Bad(where, "\"softmax\" must be true or false");
    spec.softmax = obj["softmax"].get<bool>();
  }
  if (obj.contains("labels")) {
    if (!obj["labels"].is_string()) return Bad(where, "\"labels\" must be a file name");
    const fs::path file = dir / obj["labels"].get<std::string>();
    auto labels = ReadLabels(file);
    if (!labels.ok()) return Bad(where, labels.status().message());
    spec.labels = std::move(*labels);
  }
  return spec;
}

TensorSpec Spec(std::string name, models::DType dtype, models::Shape shape) {
  TensorSpec s;
  s.name = std::move(name);
  s.dtype = dtype;
  s.shape = std::move(shape);
  return s;
}

// Checks the model's input against the image spec: float, rank 4, fixed dims equal to ours.
absl::Status CheckImageInput(const TensorSpec& input, const ImageInputSpec& spec,
                             absl::string_view where) {
  if (input.dtype != models::DType::kFloat32) {
    return Bad(where, "the model input is not float32; image inputs must be");
  }
  const models::Shape want = spec.nchw ? models::Shape{-1, spec.channels, spec.height, spec.width}
                                       : models::Shape{-1, spec.height, spec.width, spec.channels};
  if (!input.has_shape || input.shape.size() != 4) {
    return Bad(where, absl::StrCat("the model input must be rank 4 (", spec.nchw ? "NCHW" : "NHWC",
                                   ")"));
  }
  for (size_t d = 1; d < 4; ++d) {
    if (input.shape[d] >= 0 && input.shape[d] != want[d]) {
      return Bad(where, absl::StrCat("the model input has shape ",
                                     models::ShapeToString(input.shape), ", the image spec gives ",
                                     models::ShapeToString(want)));
    }
  }
  return absl::OkStatus();
}

// Softmax of one row in place (max subtracted first, so large logits do not overflow).
void SoftmaxRow(float* v, int64_t n) {
  const float max = *std::max_element(v, v + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - max);
    sum += v[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) v[i] *= inv;
}

}  // namespace

void ResizeAndNormalize(const DecodedImage& image, const ImageInputSpec& spec, float* out) {
  // Central crop as tf.image.central_crop: an equal margin on both sides, rounded down.
  const int crop_y = static_cast<int>((image.height - image.height * spec.central_crop) / 2);
  const int crop_x = static_cast<int>((image.width - image.width * spec.central_crop) / 2);
  const int in_h = image.height - 2 * crop_y, in_w = image.width - 2 * crop_x;
  const int c = spec.channels, out_h = spec.height, out_w = spec.width;
  // Source coordinates in double: they are computed once per row and column, not per pixel.
  const double sy = static_cast<double>(in_h) / out_h, sx = static_cast<double>(in_w) / out_w;
  // Per output column: the two source columns and the weight of the second.
  std::vector<int> x0(out_w), x1(out_w);
  std::vector<float> wx(out_w);
  for (int x = 0; x < out_w; ++x) {
    const double src = std::clamp((x + 0.5) * sx - 0.5, 0.0, in_w - 1.0);
    x0[x] = static_cast<int>(src);
    x1[x] = std::min(x0[x] + 1, in_w - 1);
    wx[x] = static_cast<float>(src - x0[x]);
  }
  std::vector<float> mul(c), add(c);  // value = pixel * mul + add
  for (int ch = 0; ch < c; ++ch) {
    mul[ch] = spec.scale / spec.std[ch];
    add[ch] = -spec.mean[ch] / spec.std[ch];
  }
  const size_t stride = static_cast<size_t>(image.width) * c;
  const size_t plane = static_cast<size_t>(out_h) * out_w;
  for (int y = 0; y < out_h; ++y) {
    const double src = std::clamp((y + 0.5) * sy - 0.5, 0.0, in_h - 1.0);
    const int y0 = static_cast<int>(src), y1 = std::min(y0 + 1, in_h - 1);
    const float wy = static_cast<float>(src - y0);
    const uint8_t* r0 = image.pixels.data() + (y0 + crop_y) * stride + static_cast<size_t>(crop_x) * c;
    const uint8_t* r1 = image.pixels.data() + (y1 + crop_y) * stride + static_cast<size_t>(crop_x) * c;
    for (int x = 0; x < out_w; ++x) {
      const int a = x0[x] * c, b = x1[x] * c;
      for (int ch = 0; ch < c; ++ch) {
        const float top = r0[a + ch] + (r0[b + ch] - r0[a + ch]) * wx[x];
        const float bottom = r1[a + ch] + (r1[b + ch] - r1[a + ch]) * wx[x];
        const float v = (top + (bottom - top) * wy) * mul[ch] + add[ch];
        const size_t at = spec.nchw ? ch * plane + static_cast<size_t>(y) * out_w + x
                                    : (static_cast<size_t>(y) * out_w + x) * c + ch;
        out[at] = v;
      }
    }
  }
}

absl::StatusOr<std::shared_ptr<const ModelPipeline>> ModelPipeline::Load(const fs::path& dir,
                                                                         const Signature& model) {
  const fs::path file = dir / kPipelineFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::shared_ptr<const ModelPipeline>();
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", file.string()));
  auto pipeline = Parse(text.str(), dir, model);
  if (!pipeline.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(dir.string(), "/", pipeline.status().message()));
  }
  return pipeline;
}

absl::StatusOr<std::shared_ptr<const ModelPipeline>> ModelPipeline::Parse(
    std::string_view text, const fs::path& dir, const Signature& model) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Bad("not valid JSON", e.what());
  }
  if (!doc.is_object()) return Bad("top level", "must be an object");
  RETURN_IF_ERROR(OnlyKeys(doc, "top level", {"inputs", "outputs"}));
  std::shared_ptr<ModelPipeline> p(new ModelPipeline());
  p->images_.resize(model.inputs.size());
  p->outputs_.resize(model.outputs.size());
  if (doc.contains("inputs")) {
    const json& inputs = doc["inputs"];
    if (!inputs.is_object()) return Bad("\"inputs\"", "must be an object keyed by input name");
    for (const auto& [name, value] : inputs.items()) {
      const std::string where = absl::StrCat("input \"", name, "\"");
      const int index = model.InputIndex(name);
      if (index < 0) return Bad(where, "the model has no input of that name");
      if (!value.is_object()) return Bad(where, "must be an object");
      RETURN_IF_ERROR(OnlyKeys(value, where, {"image"}));
      if (!value.contains("image")) return Bad(where, "\"image\" is required");
      ASSIGN_OR_RETURN(ImageInputSpec spec, ParseImage(value["image"], where));
      RETURN_IF_ERROR(CheckImageInput(model.inputs[index], spec, where));
      p->images_[index] = std::make_unique<ImageInputSpec>(std::move(spec));
    }
  }
  for (size_t i = 0; i < model.outputs.size(); ++i) p->outputs_[i].model_output = static_cast<int>(i);
  if (doc.contains("outputs")) {
    const json& outputs = doc["outputs"];
    if (!outputs.is_object()) return Bad("\"outputs\"", "must be an object keyed by output name");
    if (outputs.size() > 1) return Bad("\"outputs\"", "at most one output may have top_k");
    for (const auto& [name, value] : outputs.items()) {
      const std::string where = absl::StrCat("output \"", name, "\"");
      const int index = model.OutputIndex(name);
      if (index < 0) return Bad(where, "the model has no output of that name");
      ASSIGN_OR_RETURN(TopKSpec spec, ParseTopK(value, dir, where));
      const TensorSpec& out = model.outputs[index];
      if (out.dtype != models::DType::kFloat32 || !out.has_shape || out.shape.size() != 2) {
        return Bad(where, "top_k needs a float32 output of rank 2 [batch, classes]");
      }
      const int64_t classes = out.shape[1];
      if (classes >= 0 && spec.k > classes) {
        return Bad(where, absl::StrCat("top_k ", spec.k, " exceeds the ", classes, " classes"));
      }
      if (!spec.labels.empty() && classes >= 0 &&
          spec.labels.size() != static_cast<size_t>(classes)) {
        return Bad(where, absl::StrCat("the labels file has ", spec.labels.size(),
                                       " lines, the output has ", classes, " classes"));
      }
      p->outputs_[index].top_k = true;
      p->outputs_[index].spec = std::move(spec);
    }
  }
  // The served signature.
  for (size_t i = 0; i < model.inputs.size(); ++i) {
    p->served_.inputs.push_back(p->images_[i] ? Spec(model.inputs[i].name, models::DType::kString, {-1})
                                              : model.inputs[i]);
  }
  for (size_t i = 0; i < model.outputs.size(); ++i) {
    const OutputRule& rule = p->outputs_[i];
    if (!rule.top_k) {
      p->served_.outputs.push_back(model.outputs[i]);
      continue;
    }
    const int64_t k = rule.spec.k;
    p->served_.outputs.push_back(Spec("classes", models::DType::kInt64, {-1, k}));
    p->served_.outputs.push_back(Spec("scores", models::DType::kFloat32, {-1, k}));
    if (!rule.spec.labels.empty()) {
      p->served_.outputs.push_back(Spec("labels", models::DType::kString, {-1, k}));
    }
  }
  for (size_t i = 0; i < p->served_.outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (p->served_.outputs[i].name == p->served_.outputs[j].name) {
        return Bad("\"outputs\"", absl::StrCat("the served output \"", p->served_.outputs[i].name,
                                               "\" would exist twice (the model has an output of "
                                               "that name)"));
      }
    }
  }
  return std::shared_ptr<const ModelPipeline>(std::move(p));
}

const ImageInputSpec* ModelPipeline::image_input(int index) const {
  return index >= 0 && static_cast<size_t>(index) < images_.size() ? images_[index].get() : nullptr;
}

absl::StatusOr<models::Tensor> ModelPipeline::Preprocess(
    int index, const std::vector<std::string>& images) const {
  const ImageInputSpec* spec = image_input(index);
  if (spec == nullptr) return absl::InternalError("Preprocess called for a non-image input");
  const int64_t n = static_cast<int64_t>(images.size());
  const models::Shape shape = spec->nchw
                                  ? models::Shape{n, spec->channels, spec->height, spec->width}
                                  : models::Shape{n, spec->height, spec->width, spec->channels};
  ASSIGN_OR_RETURN(models::Tensor out, models::Tensor::Create(models::DType::kFloat32, shape));
  const size_t per_image = static_cast<size_t>(spec->channels) * spec->height * spec->width;
  DecodeOptions options;
  options.channels = spec->channels;
  options.max_pixels = spec->max_pixels;
  for (int64_t i = 0; i < n; ++i) {
    auto image = DecodeImage(images[i], options);
    if (!image.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input \"", served_.inputs[index].name, "\"", n > 1 ? absl::StrCat(", image ", i) : "",
          ": ", image.status().message()));
    }
    ResizeAndNormalize(*image, *spec, out.data<float>() + per_image * i);
  }
  return out;
}

absl::StatusOr<std::vector<EdgeTensor>> ModelPipeline::Postprocess(
    std::vector<models::Tensor> outputs) const {
  if (outputs.size() != outputs_.size()) {
    return absl::InternalError("the model returned an unexpected number of outputs");
  }
  std::vector<EdgeTensor> served;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputRule& rule = outputs_[i];
    if (!rule.top_k) {
      served.push_back(EdgeTensor::FromTensor(std::move(outputs[i])));
      continue;
    }
    models::Tensor& t = outputs[i];
    if (t.dtype() != models::DType::kFloat32 || t.rank() != 2) {
      return absl::InternalError("top_k output is not a float32 matrix");
    }
    const int64_t rows = t.dim(0), classes = t.dim(1);
    const int64_t k = std::min<int64_t>(rule.spec.k, classes);
    if (!rule.spec.labels.empty() && static_cast<int64_t>(rule.spec.labels.size()) != classes) {
      return absl::InternalError(absl::StrCat("the output has ", classes,
                                              " classes, the labels file ",
                                              rule.spec.labels.size()));
    }
    ASSIGN_OR_RETURN(models::Tensor classes_t,
                     models::Tensor::Create(models::DType::kInt64, {rows, k}));
    ASSIGN_OR_RETURN(models::Tensor scores_t,
                     models::Tensor::Create(models::DType::kFloat32, {rows, k}));
    EdgeTensor labels_t;
    labels_t.dtype = models::DType::kString;
    labels_t.shape = {rows, k};
    std::vector<float> row(classes);
    std::vector<int64_t> order(classes);
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(t.data<float>() + r * classes, classes, row.data());
      if (rule.spec.softmax) SoftmaxRow(row.data(), classes);
      std::iota(order.begin(), order.end(), 0);
      // Highest first; equal scores keep the lower class index first; NaN sorts last.
      auto key = [&](int64_t i) { return std::isnan(row[i]) ? -INFINITY : row[i]; };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
        return key(a) > key(b) || (key(a) == key(b) && a < b);
      });
      for (int64_t j = 0; j < k; ++j) {
        classes_t.data<int64_t>()[r * k + j] = order[j];
        scores_t.data<float>()[r * k + j] = row[order[j]];
        if (!rule.spec.labels.empty()) labels_t.strings.push_back(rule.spec.labels[order[j]]);
      }
    }
    served.push_back(EdgeTensor::FromTensor(std::move(classes_t)));
    served.push_back(EdgeTensor::FromTensor(std::move(scores_t)));
    if (!rule.spec.labels.empty()) served.push_back(std::move(labels_t));
  }
  return served;
}

}  // namespace inferd::serving
