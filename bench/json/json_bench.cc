// Decoding a REST :predict body into a float tensor: inferd's JSON codec against RapidJSON, the
// parser TF Serving's REST API uses, on the same bodies in one process.
//
//   json_bench [--side N] [--rounds R] [--min_seconds S] [--format python|short|pixels]
//
// Bodies are {"instances": [IMAGE]} with IMAGE an N x N x 3 nested list (default 224: a
// ResNet-50 request), written three ways clients write them:
//   python   float32 values as Python's json.dumps writes them after numpy's tolist(): the
//            shortest repr of the double, typically 17 significant digits (0.30000001192092896)
//   short    the shortest decimal that rounds back to the float32 (0.3), as float32-aware
//            encoders write
//   pixels   integers 0..255, the raw pixel values of an image sent as DT_FLOAT
// with ", " after every comma, as json.dumps does.
//
// inferd: ParseJsonPredictRequest against a signature with one DT_FLOAT input [-1, N, N, 3].
// RapidJSON: Document::Parse with kParseNanAndInfFlag (TF Serving accepts NaN and Infinity),
// then a walk that checks the shape and writes GetFloat() of each number into a float buffer:
// the work TF Serving's JSON-to-TensorProto conversion does, without the proto. Also with
// kParseFullPrecisionFlag, which makes RapidJSON round decimal numbers correctly as inferd does;
// without it, RapidJSON's result can be off by an ulp of the double (counted below).
//
// Rounds interleave the sides; each measurement repeats a decode for at least --min_seconds and
// keeps the mean; the best round per side is reported. Output: one line per format and side,
// then a JSON line per format with the numbers (for scripts).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "rapidjson/document.h"
#include "serving/json_tensor.h"
#include "serving/signature.h"

namespace {

using inferd::models::DType;

enum class Format { kPython, kShort, kPixels };
const char* FormatName(Format f) {
  switch (f) {
    case Format::kPython:
      return "python";
    case Format::kShort:
      return "short";
    case Format::kPixels:
      return "pixels";
  }
  return "?";
}

// Values as a normalized image would hold them, and the body that carries them.
struct Body {
  std::string text;
  std::vector<float> values;  // what a correctly rounding decoder must produce
};

Body MakeBody(Format format, int side, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> normalized(-2.2f, 2.7f);
  std::uniform_int_distribution<int> pixel(0, 255);
  Body body;
  body.text = "{\"instances\": [";
  char buf[64];
  body.text += "[";
  for (int y = 0; y < side; ++y) {
    body.text += y ? ", [" : "[";
    for (int x = 0; x < side; ++x) {
      body.text += x ? ", [" : "[";
      for (int c = 0; c < 3; ++c) {
        if (c) body.text += ", ";
        char* end = buf;
        float v = 0;
        switch (format) {
          case Format::kPython:
            v = normalized(rng);
            end = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(v)).ptr;
            break;
          case Format::kShort:
            v = normalized(rng);
            end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
            break;
          case Format::kPixels:
            v = static_cast<float>(pixel(rng));
            end = std::to_chars(buf, buf + sizeof(buf), static_cast<int>(v)).ptr;
            break;
        }
        body.text.append(buf, end);
        body.values.push_back(v);
      }
      body.text += "]";
    }
    body.text += "]";
  }
  body.text += "]]}";
  return body;
}

// RapidJSON's side: parse, check the [1, side, side, 3] nesting, convert.
template <unsigned kFlags>
bool RapidJsonDecode(const std::string& text, int side, std::vector<float>* out) {
  rapidjson::Document doc;
  doc.Parse<kFlags>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  auto it = doc.FindMember("instances");
  if (it == doc.MemberEnd() || !it->value.IsArray()) return false;
  out->clear();
  for (const auto& image : it->value.GetArray()) {
    if (!image.IsArray() || static_cast<int>(image.Size()) != side) return false;
    for (const auto& row : image.GetArray()) {
      if (!row.IsArray() || static_cast<int>(row.Size()) != side) return false;
      for (const auto& px : row.GetArray()) {
        if (!px.IsArray() || px.Size() != 3) return false;
        for (const auto& v : px.GetArray()) {
          if (!v.IsNumber()) return false;
          out->push_back(v.GetFloat());
        }
      }
    }
  }
  return true;
}

struct Side {
  const char* name;
  std::function<bool(const std::string&, std::vector<float>*)> decode;
  double best_s = 1e9;
  int64_t wrong = -1;  // values that differ from the correctly rounded ones
};

double MeasureOnce(Side& side, const Body& body, double min_seconds) {
  std::vector<float> out;
  int runs = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    if (!side.decode(body.text, &out)) {
      std::fprintf(stderr, "json_bench: %s failed to decode the body\n", side.name);
      std::exit(1);
    }
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_seconds);
  if (side.wrong < 0) {
    if (out.size() != body.values.size()) {
      std::fprintf(stderr, "json_bench: %s decoded %zu values, want %zu\n", side.name, out.size(),
                   body.values.size());
      std::exit(1);
    }
    side.wrong = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      side.wrong += std::memcmp(&out[i], &body.values[i], sizeof(float)) != 0;
    }
  }
  return elapsed / runs;
}

}  // namespace

int main(int argc, char** argv) {
  int side = 224, rounds = 5;
  std::string only;  // one format, or all
  double min_seconds = 0.5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--side") {
      side = std::atoi(argv[i + 1]);
    } else if (flag == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else if (flag == "--min_seconds") {
      min_seconds = std::atof(argv[i + 1]);
    } else if (flag == "--format") {
      only = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: json_bench [--side N] [--rounds R] [--min_seconds S] "
                   "[--format python|short|pixels]\n");
      return 2;
    }
  }
  if (side < 1 || rounds < 1 || !(min_seconds > 0)) {
    std::fprintf(stderr, "json_bench: --side, --rounds and --min_seconds must be positive\n");
    return 2;
  }

  inferd::serving::Signature signature;
  inferd::serving::TensorSpec spec;
  spec.name = "image";
  spec.dtype = DType::kFloat32;
  spec.shape = {-1, side, side, 3};
  signature.inputs.push_back(spec);

  for (Format format : {Format::kPython, Format::kShort, Format::kPixels}) {
    if (!only.empty() && only != FormatName(format)) continue;
    const Body body = MakeBody(format, side, 7);
    std::vector<Side> sides;
    sides.push_back({"inferd", [&](const std::string& text, std::vector<float>* out) {
                       auto r = inferd::serving::ParseJsonPredictRequest(text, signature);
                       if (!r.ok() || r->inputs.size() != 1) return false;
                       const inferd::models::Tensor& t = r->inputs[0].second.tensor;
                       out->assign(t.data<float>(), t.data<float>() + t.num_elements());
                       return true;
                     }});
    sides.push_back({"rapidjson", [&](const std::string& text, std::vector<float>* out) {
                       return RapidJsonDecode<rapidjson::kParseNanAndInfFlag>(text, side, out);
                     }});
    sides.push_back(
        {"rapidjson-full-precision", [&](const std::string& text, std::vector<float>* out) {
           return RapidJsonDecode<rapidjson::kParseNanAndInfFlag |
                                  rapidjson::kParseFullPrecisionFlag>(text, side, out);
         }});
    for (int r = 0; r < rounds; ++r) {
      for (Side& s : sides) s.best_s = std::min(s.best_s, MeasureOnce(s, body, min_seconds));
    }
    const double n = static_cast<double>(body.values.size());
    std::printf("%-7s %zu bytes, %.0f numbers\n", FormatName(format), body.text.size(), n);
    for (const Side& s : sides) {
      std::printf(
          "  %-25s %8.3f ms  %6.1f ns/number  %6.0f MB/s  %lld values not correctly "
          "rounded  inferd speed / this %.2f\n",
          s.name, s.best_s * 1e3, s.best_s * 1e9 / n, body.text.size() / s.best_s / 1e6,
          static_cast<long long>(s.wrong), s.best_s / sides[0].best_s);
    }
    std::printf("{\"format\":\"%s\",\"bytes\":%zu,\"numbers\":%.0f", FormatName(format),
                body.text.size(), n);
    for (const Side& s : sides) {
      std::printf(",\"%s_ms\":%.4f,\"%s_wrong\":%lld", s.name, s.best_s * 1e3, s.name,
                  static_cast<long long>(s.wrong));
    }
    std::printf("}\n");
  }
  return 0;
}
