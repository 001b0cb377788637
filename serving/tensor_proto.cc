#include "serving/tensor_proto.h"

#include <array>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/types.pb.h"

namespace inferd::serving {
namespace {
using models::DType;
using tensorflow::TensorProto;

absl::Status Invalid(absl::string_view alias, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("input \"", alias, "\": ", what));
}

// Copies `values` (possibly a single broadcast value) into `out` as T, checking ranges.
template <typename T, typename Field>
absl::Status FillFrom(const Field& values, int64_t n, absl::string_view field_name,
                      absl::string_view alias, T* out) {
  const int64_t given = values.size();
  if (given != n && !(given == 1 && n > 0)) {
    return Invalid(alias, absl::StrCat(given, " values in ", field_name, " for ", n,
                                       " elements (give all values, or one to broadcast)"));
  }
  for (int64_t i = 0; i < n; ++i) {
    auto v = values.Get(given == 1 ? 0 : static_cast<int>(i));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                  sizeof(T) < sizeof(decltype(v))) {
      if (v < static_cast<decltype(v)>(std::numeric_limits<T>::min()) ||
          v > static_cast<decltype(v)>(std::numeric_limits<T>::max())) {
        return Invalid(alias, absl::StrCat("value ", v, " at index ", i, " is out of range for ",
                                           models::DTypeName(models::DTypeOf<T>::value)));
      }
    }
    out[i] = static_cast<T>(v);
  }
  return absl::OkStatus();
}

struct TypedField {
  absl::string_view name;
  int size;
};

// TensorProto's typed value fields and how many values each holds.
std::array<TypedField, 11> TypedFields(const TensorProto& p) {
  return {{{"float_val", p.float_val_size()},
           {"double_val", p.double_val_size()},
           {"int_val", p.int_val_size()},
           {"string_val", p.string_val_size()},
           {"int64_val", p.int64_val_size()},
           {"bool_val", p.bool_val_size()},
           {"half_val", p.half_val_size()},
           {"uint32_val", p.uint32_val_size()},
           {"uint64_val", p.uint64_val_size()},
           {"scomplex_val", p.scomplex_val_size()},
           {"dcomplex_val", p.dcomplex_val_size()}}};
}

bool AnyTypedValues(const TensorProto& p) {
  for (const TypedField& f : TypedFields(p)) {
    if (f.size > 0) return true;
  }
  return false;
}

// The typed field TensorProto keeps values of `dtype` in.
absl::string_view ValueField(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float_val";
    case DType::kFloat64:
      return "double_val";
    case DType::kInt64:
      return "int64_val";
    case DType::kBool:
      return "bool_val";
    case DType::kUInt32:
      return "uint32_val";
    case DType::kUInt64:
      return "uint64_val";
    case DType::kFloat16:
      return "half_val";
    case DType::kString:
      return "string_val";
    default:
      return "int_val";  // int32, int16, int8, uint8, uint16
  }
}

// When `dtype`'s own field is empty but another typed field has values (int_val for a
// DT_FLOAT tensor, say), the error that says so; OK otherwise.
absl::Status CheckValueField(const TensorProto& p, DType dtype, absl::string_view alias) {
  const absl::string_view own = ValueField(dtype);
  const auto fields = TypedFields(p);
  for (const TypedField& f : fields) {
    if (f.name == own && f.size > 0) return absl::OkStatus();
  }
  for (const TypedField& f : fields) {
    if (f.size > 0) {
      return Invalid(alias, absl::StrCat("values of ", DataTypeName(p.dtype()), " go in ", own,
                                         " (or tensor_content), but the request set ", f.name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<DType> FromDataType(tensorflow::DataType dtype) {
  switch (dtype) {
    case tensorflow::DT_FLOAT:
      return DType::kFloat32;
    case tensorflow::DT_DOUBLE:
      return DType::kFloat64;
    case tensorflow::DT_INT32:
      return DType::kInt32;
    case tensorflow::DT_UINT8:
      return DType::kUInt8;
    case tensorflow::DT_INT16:
      return DType::kInt16;
    case tensorflow::DT_INT8:
      return DType::kInt8;
    case tensorflow::DT_STRING:
      return DType::kString;
    case tensorflow::DT_INT64:
      return DType::kInt64;
    case tensorflow::DT_BOOL:
      return DType::kBool;
    case tensorflow::DT_UINT16:
      return DType::kUInt16;
    case tensorflow::DT_HALF:
      return DType::kFloat16;
    case tensorflow::DT_UINT32:
      return DType::kUInt32;
    case tensorflow::DT_UINT64:
      return DType::kUInt64;
    default:
      return std::nullopt;
  }
}

tensorflow::DataType ToDataType(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return tensorflow::DT_FLOAT;
    case DType::kFloat64:
      return tensorflow::DT_DOUBLE;
    case DType::kInt32:
      return tensorflow::DT_INT32;
    case DType::kUInt8:
      return tensorflow::DT_UINT8;
    case DType::kInt16:
      return tensorflow::DT_INT16;
    case DType::kInt8:
      return tensorflow::DT_INT8;
    case DType::kString:
      return tensorflow::DT_STRING;
    case DType::kInt64:
      return tensorflow::DT_INT64;
    case DType::kBool:
      return tensorflow::DT_BOOL;
    case DType::kUInt16:
      return tensorflow::DT_UINT16;
    case DType::kFloat16:
      return tensorflow::DT_HALF;
    case DType::kUInt32:
      return tensorflow::DT_UINT32;
    case DType::kUInt64:
      return tensorflow::DT_UINT64;
    case DType::kBFloat16:
      return tensorflow::DT_BFLOAT16;
    default:
      return tensorflow::DT_INVALID;
  }
}

std::string DataTypeName(tensorflow::DataType dtype) {
  const std::string& name = tensorflow::DataType_Name(dtype);
  return name.empty() ? absl::StrCat("DataType(", static_cast<int>(dtype), ")") : name;
}

absl::StatusOr<EdgeTensor> FromTensorProto(const TensorProto& proto, absl::string_view alias,
                                           const TensorProtoLimits& limits) {
  std::optional<DType> dtype = FromDataType(proto.dtype());
  if (!dtype) {
    return Invalid(alias, absl::StrCat("dtype ", DataTypeName(proto.dtype()),
                                       " is not supported"));
  }
  if (proto.tensor_shape().unknown_rank()) return Invalid(alias, "the shape has unknown rank");
  EdgeTensor out;
  out.dtype = *dtype;
  for (const auto& d : proto.tensor_shape().dim()) {
    if (d.size() < 0) {
      return Invalid(alias, absl::StrCat("dimension ", out.shape.size(), " is ", d.size(),
                                         "; request shapes must be fully defined"));
    }
    out.shape.push_back(d.size());
  }
  const int64_t n = models::NumElements(out.shape);
  if (n < 0) return Invalid(alias, absl::StrCat("shape ", models::ShapeToString(out.shape),
                                                " has too many elements"));
  if (!proto.tensor_content().empty() && AnyTypedValues(proto)) {
    return Invalid(alias, "both tensor_content and typed values are set; use one");
  }
  if (proto.resource_handle_val_size() || proto.variant_val_size()) {
    return Invalid(alias, "resource and variant values are not supported");
  }

  if (absl::Status s = CheckValueField(proto, *dtype, alias); !s.ok()) return s;
  if (out.is_string()) {
    if (!proto.tensor_content().empty()) {
      return Invalid(alias, "DT_STRING values must be in string_val, not tensor_content");
    }
    const int64_t given = proto.string_val_size();
    if (given != n && !(given == 1 && n > 0)) {
      return Invalid(alias, absl::StrCat(given, " values in string_val for ", n, " elements"));
    }
    if (given == 1 && static_cast<size_t>(n) * proto.string_val(0).size() >
                          limits.max_broadcast_bytes) {
      return Invalid(alias, "broadcasting one value to this shape is too large");
    }
    out.strings.reserve(n);
    for (int64_t i = 0; i < n; ++i) out.strings.push_back(proto.string_val(given == 1 ? 0 : i));
    return out;
  }

  const size_t elem = models::DTypeSize(*dtype);
  if (static_cast<uint64_t>(n) > limits.max_broadcast_bytes / elem &&
      static_cast<uint64_t>(n) * elem != proto.tensor_content().size()) {
    return Invalid(alias, absl::StrCat("shape ", models::ShapeToString(out.shape),
                                       " is too large for the values given"));
  }
  auto tensor = models::Tensor::Create(*dtype, out.shape);
  if (!tensor.ok()) return Invalid(alias, tensor.status().message());
  if (!proto.tensor_content().empty()) {
    if (proto.tensor_content().size() != static_cast<size_t>(n) * elem) {
      return Invalid(alias, absl::StrCat("tensor_content has ", proto.tensor_content().size(),
                                         " bytes; shape ", models::ShapeToString(out.shape),
                                         " of ", models::DTypeName(*dtype), " needs ", n * elem));
    }
    if (*dtype == DType::kBool) {
      models::CopyBytesAsBools(proto.tensor_content().data(), proto.tensor_content().size(),
                               tensor->data<bool>());
    } else {
      std::memcpy(tensor->raw_data(), proto.tensor_content().data(), proto.tensor_content().size());
    }
    out.tensor = std::move(*tensor);
    return out;
  }
  const absl::string_view field = ValueField(*dtype);
  absl::Status s;
  switch (*dtype) {
    case DType::kFloat32:
      s = FillFrom(proto.float_val(), n, field, alias, tensor->data<float>());
      break;
    case DType::kFloat64:
      s = FillFrom(proto.double_val(), n, field, alias, tensor->data<double>());
      break;
    case DType::kInt32:
      s = FillFrom(proto.int_val(), n, field, alias, tensor->data<int32_t>());
      break;
    case DType::kInt16:
      s = FillFrom(proto.int_val(), n, field, alias, tensor->data<int16_t>());
      break;
    case DType::kInt8:
      s = FillFrom(proto.int_val(), n, field, alias, tensor->data<int8_t>());
      break;
    case DType::kUInt8:
      s = FillFrom(proto.int_val(), n, field, alias, tensor->data<uint8_t>());
      break;
    case DType::kUInt16:
      s = FillFrom(proto.int_val(), n, field, alias, tensor->data<uint16_t>());
      break;
    case DType::kInt64:
      s = FillFrom(proto.int64_val(), n, field, alias, tensor->data<int64_t>());
      break;
    case DType::kBool:
      s = FillFrom(proto.bool_val(), n, field, alias, tensor->data<bool>());
      break;
    case DType::kUInt32:
      s = FillFrom(proto.uint32_val(), n, field, alias, tensor->data<uint32_t>());
      break;
    case DType::kUInt64:
      s = FillFrom(proto.uint64_val(), n, field, alias, tensor->data<uint64_t>());
      break;
    case DType::kFloat16: {
      uint16_t* bits = static_cast<uint16_t*>(tensor->raw_data());
      s = FillFrom(proto.half_val(), n, field, alias, bits);
      break;
    }
    default:
      s = Invalid(alias, "unsupported dtype");
  }
  if (!s.ok()) return s;
  out.tensor = std::move(*tensor);
  return out;
}

void ToTensorProto(const EdgeTensor& t, bool as_tensor_content, TensorProto* proto) {
  proto->set_dtype(ToDataType(t.dtype));
  auto* shape = proto->mutable_tensor_shape();
  for (int64_t d : t.shape) shape->add_dim()->set_size(d);
  if (t.is_string()) {
    for (const std::string& s : t.strings) proto->add_string_val(s);
    return;
  }
  const int64_t n = t.tensor.num_elements();
  if (as_tensor_content) {
    proto->set_tensor_content(t.tensor.raw_data(), t.tensor.byte_size());
    return;
  }
  auto copy = [n](const auto* src, auto* field) {
    field->Reserve(static_cast<int>(n));
    for (int64_t i = 0; i < n; ++i) field->AddAlreadyReserved(src[i]);
  };
  switch (t.dtype) {
    case DType::kFloat32:
      copy(t.tensor.data<float>(), proto->mutable_float_val());
      break;
    case DType::kFloat64:
      copy(t.tensor.data<double>(), proto->mutable_double_val());
      break;
    case DType::kInt32:
      copy(t.tensor.data<int32_t>(), proto->mutable_int_val());
      break;
    case DType::kInt16:
      copy(t.tensor.data<int16_t>(), proto->mutable_int_val());
      break;
    case DType::kInt8:
      copy(t.tensor.data<int8_t>(), proto->mutable_int_val());
      break;
    case DType::kUInt8:
      copy(t.tensor.data<uint8_t>(), proto->mutable_int_val());
      break;
    case DType::kUInt16:
      copy(t.tensor.data<uint16_t>(), proto->mutable_int_val());
      break;
    case DType::kInt64:
      copy(t.tensor.data<int64_t>(), proto->mutable_int64_val());
      break;
    case DType::kBool:
      copy(t.tensor.data<bool>(), proto->mutable_bool_val());
      break;
    case DType::kUInt32:
      copy(t.tensor.data<uint32_t>(), proto->mutable_uint32_val());
      break;
    case DType::kUInt64:
      copy(t.tensor.data<uint64_t>(), proto->mutable_uint64_val());
      break;
    case DType::kFloat16:
      copy(static_cast<const uint16_t*>(t.tensor.raw_data()), proto->mutable_half_val());
      break;
    default:
      proto->set_tensor_content(t.tensor.raw_data(), t.tensor.byte_size());
  }
}

}  // namespace inferd::serving
