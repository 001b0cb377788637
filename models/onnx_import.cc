#include "models/onnx_import.h"

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/json_escape.h"
#include "common/status_macros.h"

namespace inferd::models {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path.string(), "'"));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read '", path.string(), "'"));
  return ss.str();
}

// The tensor of `dtype` and `shape` (`count` elements) from a repeated field, converting element
// type. The field's size is checked before anything is allocated, so that a few bytes of file
// claiming a huge shape allocate nothing.
template <typename T, typename Field>
absl::StatusOr<Tensor> CopyTyped(const Field& field, DType dtype, const Shape& shape, int64_t count,
                                 const std::string& name) {
  if (field.size() != count) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has ", field.size(),
                                                   " values but its shape needs ", count));
  }
  ASSIGN_OR_RETURN(Tensor t, Tensor::Create(dtype, shape));
  T* out = t.data<T>();
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<T>(field.Get(static_cast<int>(i)));
  return t;
}

absl::StatusOr<std::string> ReadExternalData(const onnx::TensorProto& proto, const fs::path& base,
                                             size_t expected_bytes) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset" || kv.key() == "length") {
      char* end = nullptr;
      const long long v = std::strtoll(kv.value().c_str(), &end, 10);
      if (end == kv.value().c_str() || *end != '\0' || v < 0) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has invalid ",
                                                       kv.key(), " '", kv.value(), "'"));
      }
      (kv.key() == "offset" ? offset : length) = v;
    }
  }
  if (base.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", proto.name(), "' uses external data, which needs a model file"));
  }
  const fs::path rel(location);
  if (location.empty() || rel.is_absolute() || location.find("..") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", proto.name(), "' has an invalid external data location '", location, "'"));
  }
  const fs::path file = base / rel;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("external data file '", file.string(), "' of tensor '",
                                            proto.name(), "' cannot be opened"));
  }
  in.seekg(0, std::ios::end);
  const int64_t file_size = in.tellg();
  if (length < 0) length = static_cast<int64_t>(expected_bytes);
  if (static_cast<size_t>(length) != expected_bytes || offset + length > file_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "external data of tensor '", proto.name(), "' is ", length, " bytes at offset ", offset,
        " in a file of ", file_size, " bytes; the tensor needs ", expected_bytes));
  }
  std::string data(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(data.data(), length);
  if (!in) return absl::DataLossError(absl::StrCat("cannot read '", file.string(), "'"));
  return data;
}

absl::StatusOr<Attribute> ConvertAttribute(const onnx::AttributeProto& a, const fs::path& base) {
  Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT:
      out.type = Attribute::Type::kFloat;
      out.f = a.f();
      break;
    case onnx::AttributeProto::INT:
      out.type = Attribute::Type::kInt;
      out.i = a.i();
      break;
    case onnx::AttributeProto::STRING:
      out.type = Attribute::Type::kString;
      out.s = a.s();
      break;
    case onnx::AttributeProto::TENSOR: {
      out.type = Attribute::Type::kTensor;
      ASSIGN_OR_RETURN(out.t, TensorFromOnnx(a.t(), base));
      break;
    }
    case onnx::AttributeProto::FLOATS:
      out.type = Attribute::Type::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      out.type = Attribute::Type::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      out.type = Attribute::Type::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    default:
      out.type = Attribute::Type::kOther;  // graphs, sparse tensors: no supported op uses them
      break;
  }
  return out;
}

absl::StatusOr<TensorInfo> ConvertValueInfo(const onnx::ValueInfoProto& v) {
  TensorInfo info;
  info.name = v.name();
  if (!v.type().has_tensor_type()) {
    return absl::InvalidArgumentError(absl::StrCat("value '", v.name(),
                                                   "' is not a tensor (sequence, map and optional "
                                                   "values are not supported)"));
  }
  const auto& tt = v.type().tensor_type();
  info.dtype = DTypeFromOnnx(tt.elem_type());
  if (tt.has_shape()) {
    info.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      info.dims.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value() : -1);
    }
  }
  return info;
}

// Initializers larger than this go to shape inference without their data (it needs their
// types and dims; data only for small shape-like constants).
constexpr size_t kInferenceDataLimit = 4096;

// ONNX 1.13's inference for Conv, ConvTranspose, ConvInteger and QLinearConv without a
// kernel_shape attribute takes the kernel's rank from the weight's shape and indexes the
// dilations and strides, sized by the input's rank, with it: a weight of another rank than the
// input reads past those vectors (a crash found by fuzz/onnx_model_fuzzer, in libonnx). So the
// inference copy of such a node gets kernel_shape from the weight's shape (which the spec says
// it is), which ONNX checks against the input's rank. Returns false when a weight's shape is
// not known before inference (a computed weight): the caller then skips ONNX's inference.
bool SetKernelShapesForInference(onnx::GraphProto* g) {
  std::map<std::string, std::vector<int64_t>> known;  // fully known shapes by value name
  for (const auto& init : g->initializer()) {
    known[init.name()].assign(init.dims().begin(), init.dims().end());
  }
  for (const auto* list : {&g->input(), &g->value_info()}) {
    for (const auto& v : *list) {
      if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) continue;
      std::vector<int64_t> dims;
      bool all = true;
      for (const auto& d : v.type().tensor_type().shape().dim()) {
        all = all && d.has_dim_value();
        dims.push_back(d.dim_value());
      }
      if (all) known.emplace(v.name(), std::move(dims));
    }
  }
  for (onnx::NodeProto& node : *g->mutable_node()) {
    if (!node.domain().empty() && node.domain() != "ai.onnx") continue;
    int weight;
    if (node.op_type() == "Conv" || node.op_type() == "ConvTranspose" ||
        node.op_type() == "ConvInteger") {
      weight = 1;
    } else if (node.op_type() == "QLinearConv") {
      weight = 3;
    } else {
      continue;
    }
    bool has_kernel_shape = false;
    for (const auto& a : node.attribute()) has_kernel_shape |= a.name() == "kernel_shape";
    if (has_kernel_shape || node.input_size() <= weight) continue;
    auto it = known.find(node.input(weight));
    if (it == known.end()) return false;
    onnx::AttributeProto* a = node.add_attribute();
    a->set_name("kernel_shape");
    a->set_type(onnx::AttributeProto::INTS);
    for (size_t i = 2; i < it->second.size(); ++i) a->add_ints(it->second[i]);
  }
  return true;
}

// True when every node has a schema in ONNX's registry for its domain's opset. A node without
// one (an op ONNX does not know, or a custom domain) gets no output types from inference, and
// ONNX 1.13's data propagation for Shape-15 and later dereferences the missing type of its
// input (SIGSEGV in libonnx; found by fuzz/onnx_model_fuzzer). Such a model cannot be planned
// anyway (no kernel), so inference is skipped and planning names the op.
bool EveryNodeHasASchema(const onnx::ModelProto& model) {
  std::map<std::string, int64_t> opsets;
  for (const auto& o : model.opset_import()) {
    opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = o.version();
  }
  for (const auto& node : model.graph().node()) {
    const std::string domain = node.domain() == "ai.onnx" ? "" : node.domain();
    auto it = opsets.find(domain);
    if (it == opsets.end() || it->second > std::numeric_limits<int>::max() ||
        onnx::OpSchemaRegistry::Schema(node.op_type(), static_cast<int>(it->second), domain) ==
            nullptr) {
      return false;
    }
  }
  return true;
}

// ONNX's own shape inference over a data-light copy of `model`: every value gets a dtype and
// dims, the batch dimension kept symbolic (-1). Fails, naming the node, where the graph's
// shapes or types are inconsistent. `ids` maps names to `graph`'s value ids.
absl::Status InferShapes(const onnx::ModelProto& model, const std::map<std::string, int>& ids,
                         Graph& graph) {
  onnx::ModelProto light;
  light.set_ir_version(model.ir_version());
  *light.mutable_opset_import() = model.opset_import();
  onnx::GraphProto* g = light.mutable_graph();
  const onnx::GraphProto& src = model.graph();
  *g->mutable_node() = src.node();
  *g->mutable_input() = src.input();
  *g->mutable_output() = src.output();
  *g->mutable_value_info() = src.value_info();
  for (const auto& init : src.initializer()) {
    onnx::TensorProto* t = g->add_initializer();
    if (init.data_location() != onnx::TensorProto::EXTERNAL &&
        static_cast<size_t>(init.ByteSizeLong()) <= kInferenceDataLimit) {
      *t = init;
    } else {
      t->set_name(init.name());
      t->set_data_type(init.data_type());
      *t->mutable_dims() = init.dims();
    }
  }
  if (!EveryNodeHasASchema(model)) return absl::OkStatus();      // planning names the op
  if (!SetKernelShapesForInference(g)) return absl::OkStatus();  // shapes found at run time
  // Without data propagation (values of small shape tensors carried through Shape, Gather,
  // Concat, ...): ONNX 1.13's propagators dereference their inputs' types unchecked, so an
  // omitted required input ("") or an untyped one crashed the process in libonnx (found by
  // fuzz/onnx_model_fuzzer). Shapes it would have found are found when the model runs.
  try {
    onnx::shape_inference::InferShapes(light, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true,
                                                                   /*error_mode=*/1,
                                                                   /*data_prop=*/false));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("shape inference failed: ", e.what()));
  }
  for (const auto* list : {&g->value_info(), &g->output()}) {
    for (const auto& v : *list) {
      auto it = ids.find(v.name());
      if (it == ids.end() || graph.values[it->second].info.has_value()) continue;
      auto info = ConvertValueInfo(v);
      if (info.ok() && info->dtype != DType::kUndefined) graph.values[it->second].info = *info;
    }
  }
  return absl::OkStatus();
}

// Names must be UTF-8: they end up in protobuf string fields (model metadata, error messages)
// that clients cannot parse otherwise. Shown with the offending bytes escaped.
absl::Status CheckNamesAreUtf8(const onnx::GraphProto& g) {
  auto check = [](const std::string& name, absl::string_view what) -> absl::Status {
    if (IsValidUtf8(name)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", absl::CHexEscape(name), "\" is not valid UTF-8"));
  };
  for (const auto& v : g.input()) RETURN_IF_ERROR(check(v.name(), "graph input"));
  for (const auto& v : g.output()) RETURN_IF_ERROR(check(v.name(), "graph output"));
  for (const auto& t : g.initializer()) RETURN_IF_ERROR(check(t.name(), "initializer"));
  for (const auto& n : g.node()) {
    RETURN_IF_ERROR(check(n.name(), "node name"));
    RETURN_IF_ERROR(check(n.op_type(), "operator"));
    RETURN_IF_ERROR(check(n.domain(), "operator domain"));
    for (const auto& name : n.input()) RETURN_IF_ERROR(check(name, "node input"));
    for (const auto& name : n.output()) RETURN_IF_ERROR(check(name, "node output"));
    for (const auto& a : n.attribute()) RETURN_IF_ERROR(check(a.name(), "attribute name"));
  }
  return absl::OkStatus();
}

// Window attributes that ONNX's shape inference divides by or sizes with, unchecked (a stride
// of 0 raises SIGFPE inside libonnx, taking the server with it): refused before it runs.
absl::Status CheckWindowAttributes(const Node& n) {
  if (!n.domain.empty() && n.domain != "ai.onnx") return absl::OkStatus();
  static constexpr const char* kWindowOps[] = {"Conv",        "ConvTranspose", "ConvInteger",
                                               "QLinearConv", "MaxPool",       "AveragePool",
                                               "LpPool",      "MaxUnpool"};
  if (std::find(std::begin(kWindowOps), std::end(kWindowOps), n.op_type) == std::end(kWindowOps)) {
    return absl::OkStatus();
  }
  for (const auto& [name, least] :
       {std::pair<const char*, int64_t>{"strides", 1}, {"dilations", 1}, {"kernel_shape", 1},
        {"pads", 0}, {"output_padding", 0}}) {
    if (!n.attrs.Has(name)) continue;
    auto values = n.attrs.GetInts(name, {});
    if (!values.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(n.Describe(), ": attribute '", name, "': ", values.status().message()));
    }
    for (int64_t v : *values) {
      if (v < least) {
        return absl::InvalidArgumentError(absl::StrCat(n.Describe(), ": attribute '", name,
                                                       "' has ", v,
                                                       "; its values must be at least ", least));
      }
    }
  }
  if (n.attrs.Has("group")) {
    auto group = n.attrs.GetInt("group", 1);
    if (!group.ok() || *group < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(n.Describe(), ": attribute 'group' must be a positive integer"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto, const fs::path& base_dir) {
  const DType dtype = DTypeFromOnnx(proto.data_type());
  if (!IsSupportedDType(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", proto.name(), "' has type ",
                                                   DTypeName(dtype), ", which is not supported"));
  }
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", proto.name(), "' has a negative dimension in ", ShapeToString(shape)));
    }
  }
  const int64_t count = NumElements(shape);
  if (count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", proto.name(), "' has an overflowing shape"));
  }
  const size_t elem = DTypeSize(dtype);
  const size_t bytes = static_cast<size_t>(count) * elem;

  const bool external = proto.data_location() == onnx::TensorProto::EXTERNAL;
  std::string external_bytes;
  const std::string* raw = nullptr;
  if (external) {
    ASSIGN_OR_RETURN(external_bytes, ReadExternalData(proto, base_dir, bytes));
    raw = &external_bytes;
  } else if (proto.has_raw_data()) {
    raw = &proto.raw_data();
  }
  if (raw != nullptr && raw->size() != bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", proto.name(), "' has ", raw->size(), " bytes of data but its shape ",
        ShapeToString(shape), " of ", DTypeName(dtype), " needs ", bytes));
  }
  if (raw != nullptr) {
    ASSIGN_OR_RETURN(Tensor t, Tensor::Create(dtype, shape));
    if (dtype == DType::kBool) {
      CopyBytesAsBools(raw->data(), bytes, t.data<bool>());
    } else if (bytes > 0) {
      std::memcpy(t.raw_data(), raw->data(), bytes);
    }
    return t;
  }
  const std::string& name = proto.name();
  switch (dtype) {
    case DType::kFloat32:
      return CopyTyped<float>(proto.float_data(), dtype, shape, count, name);
    case DType::kFloat64:
      return CopyTyped<double>(proto.double_data(), dtype, shape, count, name);
    case DType::kInt64:
      return CopyTyped<int64_t>(proto.int64_data(), dtype, shape, count, name);
    case DType::kUInt32:
      return CopyTyped<uint32_t>(proto.uint64_data(), dtype, shape, count, name);
    case DType::kUInt64:
      return CopyTyped<uint64_t>(proto.uint64_data(), dtype, shape, count, name);
    case DType::kInt32:
      return CopyTyped<int32_t>(proto.int32_data(), dtype, shape, count, name);
    case DType::kInt16:
      return CopyTyped<int16_t>(proto.int32_data(), dtype, shape, count, name);
    case DType::kInt8:
      return CopyTyped<int8_t>(proto.int32_data(), dtype, shape, count, name);
    case DType::kUInt16:
      return CopyTyped<uint16_t>(proto.int32_data(), dtype, shape, count, name);
    case DType::kUInt8:
      return CopyTyped<uint8_t>(proto.int32_data(), dtype, shape, count, name);
    case DType::kBool:
      return CopyTyped<bool>(proto.int32_data(), dtype, shape, count, name);
    case DType::kFloat16:
      // float16 values travel as their bit patterns in int32_data.
      return CopyTyped<uint16_t>(proto.int32_data(), dtype, shape, count, name);
    default:
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has no data"));
  }
}

void TensorToOnnx(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto) {
  proto->Clear();
  proto->set_name(name);
  proto->set_data_type(static_cast<int>(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto->add_dims(d);
  proto->set_raw_data(tensor.raw_data(), tensor.byte_size());
}

absl::StatusOr<Tensor> ReadTensorFile(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path.string(), "' is not a serialized TensorProto"));
  }
  return TensorFromOnnx(proto, path.parent_path());
}

absl::Status WriteTensorFile(const Tensor& tensor, const std::string& name, const fs::path& path) {
  onnx::TensorProto proto;
  TensorToOnnx(tensor, name, &proto);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !proto.SerializeToOstream(&out)) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write '", path.string(), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Graph> ImportOnnxFile(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto graph =
      ImportOnnxBytes(bytes, path.parent_path().empty() ? fs::path(".") : path.parent_path());
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path.string(), ": ", graph.status().message()));
  }
  return graph;
}

absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const fs::path& base_dir) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(
        "not a valid ONNX model: the file does not parse as a ModelProto (truncated or corrupt)");
  }
  return ImportOnnxModel(model, base_dir);
}

absl::StatusOr<Graph> ImportOnnxModel(const onnx::ModelProto& model, const fs::path& base_dir) {
  if (!model.has_graph()) {
    return absl::InvalidArgumentError("not a valid ONNX model: it has no graph");
  }
  int64_t opset = -1;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < 0) {
    // IR version 3+ must declare the opset; older files meant opset 1.
    opset = model.opset_import_size() == 0 && model.ir_version() < 3 ? 1 : -1;
    if (opset < 0) return absl::InvalidArgumentError("the model declares no ai.onnx opset");
  }
  const onnx::GraphProto& g = model.graph();
  RETURN_IF_ERROR(CheckNamesAreUtf8(g));
  Graph graph;
  std::map<std::string, int> ids;
  auto id_of = [&](const std::string& name) {
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    const int id = graph.AddValue(name);
    ids.emplace(name, id);
    return id;
  };

  for (const auto& init : g.initializer()) {
    if (init.name().empty()) return absl::InvalidArgumentError("an initializer has no name");
    ASSIGN_OR_RETURN(Tensor t, TensorFromOnnx(init, base_dir));
    graph.constants[id_of(init.name())] = std::move(t);
  }
  for (const auto& in : g.input()) {
    const int id = id_of(in.name());
    if (graph.constants.count(id)) continue;  // an initializer listed as an input: a constant
    ASSIGN_OR_RETURN(TensorInfo info, ConvertValueInfo(in));
    if (!IsSupportedDType(info.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat("graph input '", in.name(), "' has type ",
                                                     DTypeName(info.dtype),
                                                     ", which is not supported"));
    }
    graph.values[id].info = info;
    graph.inputs.push_back(id);
  }
  std::vector<bool> produced(graph.values.size(), false);
  for (const auto& node : g.node()) {
    Node n;
    n.name = node.name();
    n.op_type = node.op_type();
    n.domain = node.domain();
    n.opset = opset;
    if (!n.domain.empty() && n.domain != "ai.onnx") {
      n.opset = 0;
      for (const auto& o : model.opset_import()) {
        if (o.domain() == n.domain) n.opset = o.version();
      }
    }
    for (const auto& name : node.input()) n.inputs.push_back(name.empty() ? kNoValue : id_of(name));
    for (const auto& name : node.output()) {
      n.outputs.push_back(name.empty() ? kNoValue : id_of(name));
    }
    for (const auto& a : node.attribute()) {
      auto attr = ConvertAttribute(a, base_dir);
      if (!attr.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(n.Describe(), ": attribute '", a.name(), "': ", attr.status().message()));
      }
      n.attrs.Set(a.name(), *std::move(attr));
    }
    graph.nodes.push_back(std::move(n));
  }
  produced.assign(graph.values.size(), false);
  for (int id : graph.inputs) produced[id] = true;
  for (const auto& [id, t] : graph.constants) produced[id] = true;
  for (const Node& n : graph.nodes) {
    for (int out : n.outputs) {
      if (out == kNoValue) continue;
      if (produced[out]) {
        return absl::InvalidArgumentError(absl::StrCat("value '", graph.values[out].name,
                                                       "' is produced twice (by ", n.Describe(),
                                                       " and another node or input)"));
      }
      produced[out] = true;
    }
  }
  for (const Node& n : graph.nodes) {
    for (int in : n.inputs) {
      if (in != kNoValue && !produced[in]) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", graph.values[in].name, "' of ", n.Describe(),
                         " is not a graph input, an initializer or the output of any node "
                         "(missing initializer?)"));
      }
    }
  }
  for (const auto& out : g.output()) {
    auto it = ids.find(out.name());
    if (it == ids.end() || !produced[it->second]) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", out.name(), "' is not produced by any node"));
    }
    auto info = ConvertValueInfo(out);
    if (info.ok()) graph.values[it->second].info = *info;
    graph.outputs.push_back(it->second);
  }
  if (graph.outputs.empty()) return absl::InvalidArgumentError("the graph has no outputs");
  for (const Node& n : graph.nodes) RETURN_IF_ERROR(CheckWindowAttributes(n));
  RETURN_IF_ERROR(InferShapes(model, ids, graph));
  return graph;
}

}  // namespace inferd::models
