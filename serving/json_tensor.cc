#include "serving/json_tensor.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "models/dtype.h"
#include "models/tensor.h"

namespace inferd::serving {
namespace {

using models::DType;
using models::Shape;
using Path = std::vector<int64_t>;

// This absl's string_view is its own type, not std::string_view.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Client-supplied text quoted for an error message, cut short if long.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 100;
  if (s.size() <= kMax) return absl::StrCat("'", AV(s), "'");
  return absl::StrCat("'", AV(s.substr(0, kMax)), "...'");
}

// " at [0][2]", or "" for the whole value.
std::string At(const Path& path) {
  if (path.empty()) return "";
  std::string s = " at ";
  for (int64_t i : path) absl::StrAppend(&s, "[", i, "]");
  return s;
}

std::string ListOf(int64_t n) {
  return absl::StrCat("a list of ", n, n == 1 ? " element" : " elements");
}

// "a string", "a list of 3 elements", "the number 1.5", "null", ...
std::string Describe(JsonValue v) {
  switch (v.type()) {
    case JsonType::kNull:
      return "null";
    case JsonType::kBool:
      return v.bool_value() ? "true" : "false";
    case JsonType::kNumber: {
      std::string_view text = v.number_text();
      if (text.size() > 40) return absl::StrCat("the number ", AV(text.substr(0, 40)), "...");
      return absl::StrCat("the number ", AV(text));
    }
    case JsonType::kString:
      return "a string";
    case JsonType::kArray:
      return ListOf(static_cast<int64_t>(v.size()));
    case JsonType::kObject:
      return v.IsBase64Object() ? "a {\"b64\": ...} object" : "an object";
  }
  return "?";
}

std::string InputNames(const Signature& signature) {
  if (signature.inputs.empty()) return "it has no inputs";
  std::string s = "its inputs are ";
  for (size_t i = 0; i < signature.inputs.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", Quote(signature.inputs[i].name));
  }
  return s;
}

// The signature's input named `name`, or an error listing the inputs.
absl::StatusOr<const TensorSpec*> FindInput(const Signature& signature, std::string_view name) {
  for (const TensorSpec& spec : signature.inputs) {
    if (spec.name == name) return &spec;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("Input ", Quote(name), " is not in the signature; ", InputNames(signature)));
}

// Error context for one input.
struct InputContext {
  std::string_view name;
  DType dtype;

  absl::Status TypeError(const Path& path, JsonValue v) const {
    std::string hint;
    if (v.IsBase64Object() || v.is_string()) hint = "; strings and b64 are for string inputs only";
    return absl::InvalidArgumentError(absl::StrCat("Input ", Quote(name), " has dtype ",
                                                   models::DTypeName(dtype), " but the value",
                                                   At(path), " is ", Describe(v), hint));
  }
  absl::Status NumberError(const Path& path, JsonValue v, JsonNumberStatus status) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "Input ", Quote(name), " has dtype ", models::DTypeName(dtype), " but the value", At(path),
        " (", Describe(v), ")",
        status == JsonNumberStatus::kNotInteger ? " is not an integer" : " is out of range"));
  }
  absl::Status Ragged(const Path& path, JsonValue v, std::string_view expected) const {
    return absl::InvalidArgumentError(
        absl::StrCat("Input ", Quote(name), " must be a rectangular nested list: the value",
                     At(path), " is ", Describe(v), ", expected ", AV(expected)));
  }
};

// Shape of a nested list, read along the first elements; {} for a scalar.
Shape InferShape(JsonValue v) {
  Shape shape;
  while (v.is_array()) {
    shape.push_back(static_cast<int64_t>(v.size()));
    if (v.size() == 0) break;
    v = v.front();
  }
  return shape;
}

// Calls leaf(value, path) for each scalar of `v`, which must be a nested list of exactly `dims`,
// in row-major order. `path` is v's position on entry and on return.
template <typename Leaf>
absl::Status Walk(const InputContext& ctx, JsonValue v, absl::Span<const int64_t> dims, Path* path,
                  Leaf& leaf) {
  if (dims.empty()) {
    if (v.is_array()) return ctx.Ragged(*path, v, "a scalar");
    return leaf(v, *path);
  }
  if (!v.is_array() || static_cast<int64_t>(v.size()) != dims[0]) {
    return ctx.Ragged(*path, v, ListOf(dims[0]));
  }
  path->push_back(0);
  if (dims.size() == 1) {
    for (JsonValue e : v.elements()) {
      if (e.is_array()) return ctx.Ragged(*path, e, "a scalar");
      if (absl::Status s = leaf(e, *path); !s.ok()) return s;
      ++path->back();
    }
  } else {
    for (JsonValue e : v.elements()) {
      if (absl::Status s = Walk(ctx, e, dims.subspan(1), path, leaf); !s.ok()) return s;
      ++path->back();
    }
  }
  path->pop_back();
  return absl::OkStatus();
}

// Writes numbers (or bools) converted to T at `out`, advancing it.
template <typename T>
struct NumericLeaf {
  const InputContext* ctx;
  T* out;

  absl::Status operator()(JsonValue v, const Path& path) {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_bool()) return ctx->TypeError(path, v);
      *out++ = v.bool_value();
    } else {
      if (!v.is_number()) return ctx->TypeError(path, v);
      using Parsed = std::conditional_t<std::is_same_v<T, models::Half>, float, T>;
      Parsed x;
      JsonNumberStatus status = v.GetNumber(&x);
      if (status != JsonNumberStatus::kOk) return ctx->NumberError(path, v, status);
      *out++ = T(x);
    }
    return absl::OkStatus();
  }
};

// Appends strings, raw or decoded from {"b64": ...}, to `out`.
struct StringLeaf {
  const InputContext* ctx;
  std::vector<std::string>* out;

  absl::Status operator()(JsonValue v, const Path& path) {
    if (v.is_string()) {
      out->emplace_back(v.string_value());
      return absl::OkStatus();
    }
    if (!v.IsBase64Object()) return ctx->TypeError(path, v);
    JsonValue encoded = (*v.members().begin()).value;
    if (!encoded.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("Input ", Quote(ctx->name),
                                                     ": the \"b64\" value", At(path), " is ",
                                                     Describe(encoded), ", expected a string"));
    }
    std::string decoded;
    if (!absl::Base64Unescape(AV(encoded.string_value()), &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Input ", Quote(ctx->name), ": the \"b64\" value", At(path), " is not valid base64"));
    }
    out->push_back(std::move(decoded));
    return absl::OkStatus();
  }
};

struct NoopLeaf {
  absl::Status operator()(JsonValue, const Path&) { return absl::OkStatus(); }
};

// Builds the tensor of one input from `parts`: the whole value (stacked false, one part) or one
// value per row, stacked along a new dimension 0 (stacked true). Every part must have the shape
// of the first. `max_elements` bounds the element count before anything is allocated.
absl::StatusOr<EdgeTensor> ConvertInput(const TensorSpec& spec, absl::Span<const JsonValue> parts,
                                        bool stacked, size_t max_elements) {
  const InputContext ctx{spec.name, spec.dtype};
  const Shape part_shape = InferShape(parts[0]);
  Shape shape = part_shape;
  if (stacked) shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));

  auto walk_all = [&](auto& leaf) -> absl::Status {
    Path path;
    for (size_t r = 0; r < parts.size(); ++r) {
      if (stacked) path.assign(1, static_cast<int64_t>(r));
      RETURN_IF_ERROR(Walk(ctx, parts[r], part_shape, &path, leaf));
    }
    return absl::OkStatus();
  };

  // Each element is a distinct node of the document, so a larger count means the lists are
  // ragged; find where before allocating anything.
  const int64_t n = models::NumElements(shape);
  if (n < 0 || static_cast<uint64_t>(n) > max_elements) {
    NoopLeaf noop;
    RETURN_IF_ERROR(walk_all(noop));
    return absl::InvalidArgumentError(
        absl::StrCat("Input ", Quote(spec.name), " has too many elements"));
  }

  EdgeTensor e;
  e.dtype = spec.dtype;
  e.shape = shape;
  if (spec.dtype == DType::kString) {
    e.strings.reserve(static_cast<size_t>(n));
    StringLeaf leaf{&ctx, &e.strings};
    RETURN_IF_ERROR(walk_all(leaf));
    return e;
  }
  absl::Status status;
  const bool supported = models::DispatchDType(spec.dtype, [&](auto tag) {
    using T = decltype(tag);
    absl::StatusOr<models::Tensor> t = models::Tensor::Create(spec.dtype, shape);
    if (!t.ok()) {
      status = t.status();
      return;
    }
    NumericLeaf<T> leaf{&ctx, t->template data<T>()};
    status = walk_all(leaf);
    if (status.ok()) e.tensor = *std::move(t);
  });
  if (!supported) {
    return absl::InvalidArgumentError(absl::StrCat("Input ", Quote(spec.name), " has dtype ",
                                                   models::DTypeName(spec.dtype),
                                                   ", which JSON requests cannot carry"));
  }
  RETURN_IF_ERROR(status);
  return e;
}

bool IsNamedRow(JsonValue v) { return v.is_object() && !v.IsBase64Object(); }

absl::Status ParseRows(JsonValue instances, const Signature& signature, size_t max_elements,
                       NamedTensors* inputs) {
  if (!instances.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'instances' must be a list, got ", Describe(instances)));
  }
  if (instances.size() == 0) {
    return absl::InvalidArgumentError(
        "'instances' is an empty list: a request needs at least one row (empty batch)");
  }
  const JsonValue first = instances.front();
  if (!IsNamedRow(first)) {
    if (signature.inputs.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "The rows of 'instances' are values, not objects naming inputs, which needs a "
          "signature with exactly one input; ",
          InputNames(signature)));
    }
    const TensorSpec& spec = signature.inputs[0];
    ASSIGN_OR_RETURN(EdgeTensor e, ConvertInput(spec, {instances}, false, max_elements));
    inputs->emplace_back(spec.name, std::move(e));
    return absl::OkStatus();
  }

  // Rows are objects {input: value}; the first row fixes the inputs and their order.
  std::vector<const TensorSpec*> specs;
  for (const JsonValue::Member& m : first.members()) {
    ASSIGN_OR_RETURN(const TensorSpec* spec, FindInput(signature, m.key));
    specs.push_back(spec);
  }
  if (specs.empty()) {
    return absl::InvalidArgumentError("instances[0] is an empty object; name at least one input");
  }
  std::vector<std::vector<JsonValue>> columns(specs.size());
  for (auto& column : columns) column.reserve(instances.size());
  size_t r = 0;
  for (JsonValue row : instances.elements()) {
    if (!IsNamedRow(row)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "instances[", r, "] is ", Describe(row),
          ", but instances[0] is an object naming inputs: every row must be such an object"));
    }
    for (const JsonValue::Member& m : row.members()) {
      size_t k = 0;
      while (k < specs.size() && specs[k]->name != m.key) ++k;
      if (k == specs.size()) {
        RETURN_IF_ERROR(FindInput(signature, m.key).status());
        return absl::InvalidArgumentError(
            absl::StrCat("instances[", r, "] has input ", Quote(m.key),
                         " which instances[0] does not have: every row must name the same inputs"));
      }
      if (columns[k].size() > r) {
        return absl::InvalidArgumentError(
            absl::StrCat("Input ", Quote(m.key), " is given twice in instances[", r, "]"));
      }
      columns[k].push_back(m.value);
    }
    for (size_t k = 0; k < specs.size(); ++k) {
      if (columns[k].size() <= r) {
        return absl::InvalidArgumentError(
            absl::StrCat("instances[", r, "] lacks input ", Quote(specs[k]->name),
                         " which instances[0] has: every row must name the same inputs"));
      }
    }
    ++r;
  }
  for (size_t k = 0; k < specs.size(); ++k) {
    ASSIGN_OR_RETURN(EdgeTensor e, ConvertInput(*specs[k], columns[k], true, max_elements));
    inputs->emplace_back(specs[k]->name, std::move(e));
  }
  return absl::OkStatus();
}

absl::Status ParseColumns(JsonValue value, const Signature& signature, size_t max_elements,
                          NamedTensors* inputs) {
  if (!IsNamedRow(value)) {
    if (signature.inputs.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'inputs' is a value, not an object naming inputs, which needs a signature with "
          "exactly one input; ",
          InputNames(signature)));
    }
    const TensorSpec& spec = signature.inputs[0];
    ASSIGN_OR_RETURN(EdgeTensor e, ConvertInput(spec, {value}, false, max_elements));
    inputs->emplace_back(spec.name, std::move(e));
    return absl::OkStatus();
  }
  if (value.size() == 0) {
    return absl::InvalidArgumentError("'inputs' is an empty object; name at least one input");
  }
  for (const JsonValue::Member& m : value.members()) {
    ASSIGN_OR_RETURN(const TensorSpec* spec, FindInput(signature, m.key));
    for (const auto& [name, unused] : *inputs) {
      if (name == m.key) {
        return absl::InvalidArgumentError(
            absl::StrCat("Input ", Quote(m.key), " is given twice in 'inputs'"));
      }
    }
    ASSIGN_OR_RETURN(EdgeTensor e, ConvertInput(*spec, {m.value}, false, max_elements));
    inputs->emplace_back(spec->name, std::move(e));
  }
  return absl::OkStatus();
}

// ---- Output ----

template <typename T>
void AppendScalar(T v, std::string* out) {
  if constexpr (std::is_same_v<T, float>) {
    AppendJsonFloat(v, out);
  } else if constexpr (std::is_same_v<T, double>) {
    AppendJsonDouble(v, out);
  } else if constexpr (std::is_same_v<T, models::Half>) {
    AppendJsonFloat(static_cast<float>(v), out);
  } else if constexpr (std::is_same_v<T, bool>) {
    out->append(v ? "true" : "false");
  } else {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    (void)ec;  // 24 bytes hold any 64-bit integer
    out->append(buf, static_cast<size_t>(end - buf));
  }
}

// Appends the prod(dims) elements from `data` as nested lists (a scalar for rank 0); returns the
// element after the last one written.
template <typename T, typename Elem>
const T* AppendNested(const T* data, absl::Span<const int64_t> dims, const Elem& elem,
                      std::string* out) {
  if (dims.empty()) {
    elem(*data, out);
    return data + 1;
  }
  out->push_back('[');
  if (dims.size() == 1) {
    for (int64_t i = 0; i < dims[0]; ++i) {
      if (i > 0) out->push_back(',');
      elem(data[i], out);
    }
    if (dims[0] > 0) data += dims[0];
  } else {
    for (int64_t i = 0; i < dims[0]; ++i) {
      if (i > 0) out->push_back(',');
      data = AppendNested(data, dims.subspan(1), elem, out);
    }
  }
  out->push_back(']');
  return data;
}

// One output, checked: its shape and whether strings are written as {"b64": ...}.
struct OutputView {
  const std::string* alias;
  const EdgeTensor* tensor;
  Shape shape;
  bool b64;
};

absl::StatusOr<OutputView> ViewOutput(const std::string& alias, const EdgeTensor& e) {
  OutputView view{&alias, &e, {}, false};
  if (e.is_string()) {
    const int64_t n = models::NumElements(e.shape);
    if (n < 0 || static_cast<uint64_t>(n) != e.strings.size()) {
      return absl::InternalError(absl::StrCat("Output ", Quote(alias), " has shape ",
                                              models::ShapeToString(e.shape), " but ",
                                              e.strings.size(), " strings"));
    }
    view.shape = e.shape;
    view.b64 = absl::EndsWith(alias, "_bytes");
    return view;
  }
  const models::Tensor& t = e.tensor;
  if (!models::DispatchDType(t.dtype(), [](auto) {})) {
    return absl::InvalidArgumentError(absl::StrCat("Output ", Quote(alias), " has dtype ",
                                                   models::DTypeName(t.dtype()),
                                                   ", which has no JSON form"));
  }
  if (t.num_elements() > 0 && t.raw_data() == nullptr) {
    return absl::InternalError(absl::StrCat("Output ", Quote(alias), " has no data"));
  }
  view.shape = t.shape();
  return view;
}

// Appends the sub-value of `v` that starts at element `first` and has shape `dims`.
void AppendOutputValue(const OutputView& v, int64_t first, absl::Span<const int64_t> dims,
                       std::string* out) {
  if (v.tensor->is_string()) {
    const std::string* data = v.tensor->strings.data() + first;
    if (v.b64) {
      AppendNested(
          data, dims,
          [](const std::string& s, std::string* o) {
            o->append("{\"b64\":\"");
            AppendBase64(s, o);
            o->append("\"}");
          },
          out);
    } else {
      AppendNested(
          data, dims, [](const std::string& s, std::string* o) { AppendJsonString(s, o); }, out);
    }
    return;
  }
  models::DispatchDType(v.tensor->tensor.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* data = v.tensor->tensor.template data<T>() + first;
    AppendNested(
        data, dims, [](T x, std::string* o) { AppendScalar(x, o); }, out);
  });
}

}  // namespace

absl::StatusOr<JsonPredictRequest> ParseJsonPredictRequest(std::string_view body,
                                                           const Signature& signature) {
  ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::Parse(body));
  const JsonValue root = doc.root();
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("The request body must be a JSON object, got ", Describe(root)));
  }
  JsonPredictRequest request;
  bool has_signature_name = false;
  std::optional<JsonValue> instances;
  std::optional<JsonValue> inputs;
  for (const JsonValue::Member& m : root.members()) {
    if (m.key == "signature_name") {
      if (has_signature_name) return absl::InvalidArgumentError("'signature_name' is given twice");
      if (!m.value.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'signature_name' must be a string, got ", Describe(m.value)));
      }
      has_signature_name = true;
      request.signature_name = std::string(m.value.string_value());
    } else if (m.key == "instances" || m.key == "inputs") {
      std::optional<JsonValue>& slot = m.key == "instances" ? instances : inputs;
      if (slot.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat("'", AV(m.key), "' is given twice"));
      }
      slot = m.value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("Unknown key ", Quote(m.key),
                       " in the request body; expected 'signature_name' and one of 'instances' "
                       "or 'inputs'"));
    }
  }
  if (instances.has_value() && inputs.has_value()) {
    return absl::InvalidArgumentError(
        "The request has both 'instances' and 'inputs'; give exactly one of them");
  }
  if (!instances.has_value() && !inputs.has_value()) {
    return absl::InvalidArgumentError(
        "The request has neither 'instances' nor 'inputs'; give exactly one of them");
  }
  const size_t max_elements = doc.node_count();
  if (instances.has_value()) {
    request.row_format = true;
    RETURN_IF_ERROR(ParseRows(*instances, signature, max_elements, &request.inputs));
  } else {
    RETURN_IF_ERROR(ParseColumns(*inputs, signature, max_elements, &request.inputs));
  }
  return request;
}

absl::StatusOr<std::string> WriteJsonPredictResponse(bool row_format, const NamedTensors& outputs) {
  if (outputs.empty()) return absl::InvalidArgumentError("The model returned no outputs");
  std::vector<OutputView> views;
  views.reserve(outputs.size());
  int64_t total = 0;
  for (const auto& [alias, tensor] : outputs) {
    ASSIGN_OR_RETURN(OutputView v, ViewOutput(alias, tensor));
    total += std::max<int64_t>(models::NumElements(v.shape), 0);
    views.push_back(std::move(v));
  }
  std::string out;
  out.reserve(static_cast<size_t>(total) * 12 + 64);

  if (!row_format) {
    out.append("{\"outputs\":");
    if (views.size() == 1) {
      AppendOutputValue(views[0], 0, views[0].shape, &out);
    } else {
      out.push_back('{');
      for (size_t k = 0; k < views.size(); ++k) {
        if (k > 0) out.push_back(',');
        AppendJsonString(*views[k].alias, &out);
        out.push_back(':');
        AppendOutputValue(views[k], 0, views[k].shape, &out);
      }
      out.push_back('}');
    }
    out.push_back('}');
    return out;
  }

  for (const OutputView& v : views) {
    if (v.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Output ", Quote(*v.alias),
          " is a scalar, which has no batch dimension for a row format ('instances') response"));
    }
    if (v.shape[0] != views[0].shape[0]) {
      return absl::InvalidArgumentError(
          absl::StrCat("Outputs have inconsistent batch size: ", Quote(*views[0].alias), " has ",
                       views[0].shape[0], " rows but ", Quote(*v.alias), " has ", v.shape[0]));
    }
  }
  out.append("{\"predictions\":");
  if (views.size() == 1) {
    AppendOutputValue(views[0], 0, views[0].shape, &out);
  } else {
    out.push_back('[');
    const int64_t rows = views[0].shape[0];
    for (int64_t r = 0; r < rows; ++r) {
      if (r > 0) out.push_back(',');
      out.push_back('{');
      for (size_t k = 0; k < views.size(); ++k) {
        const absl::Span<const int64_t> row_dims = absl::MakeConstSpan(views[k].shape).subspan(1);
        const int64_t row_elements = models::NumElements(row_dims);
        if (k > 0) out.push_back(',');
        AppendJsonString(*views[k].alias, &out);
        out.push_back(':');
        AppendOutputValue(views[k], r * row_elements, row_dims, &out);
      }
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}


}  // namespace inferd::serving
