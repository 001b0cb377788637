// Element types of tensors. Numeric values equal ONNX's TensorProto.DataType so conversion at
// the import boundary is a range check, not a table.
#ifndef INFERD_MODELS_DTYPE_H_
#define INFERD_MODELS_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace inferd::models {

enum class DType : int {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // recognised so errors can name it; no kernel supports it
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,  // recognised so errors can name it; no kernel supports it
};

// Bytes per element; 0 for kUndefined, kString and values outside the enum.
size_t DTypeSize(DType dtype);
// Lower-case name as TF Serving and ONNX users write it ("float32", "int64", ...).
std::string DTypeName(DType dtype);
// True for the types tensors can hold in inferd (every numeric type and bool).
bool IsSupportedDType(DType dtype);
// Maps an ONNX TensorProto.DataType value; kUndefined for values inferd does not know.
DType DTypeFromOnnx(int onnx_type);

// IEEE 754 binary16 storage with conversions through float. Arithmetic is done in float.
struct Half {
  uint16_t bits = 0;
  Half() = default;
  explicit Half(float f) : bits(FloatToHalfBits(f)) {}
  operator float() const { return HalfBitsToFloat(bits); }  // NOLINT: implicit by design

  static uint16_t FloatToHalfBits(float f);
  static float HalfBitsToFloat(uint16_t h);
};

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<Half> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr DType value = DType::kInt8;
};
template <>
struct DTypeOf<int16_t> {
  static constexpr DType value = DType::kInt16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kInt64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::kUInt8;
};
template <>
struct DTypeOf<uint16_t> {
  static constexpr DType value = DType::kUInt16;
};
template <>
struct DTypeOf<uint32_t> {
  static constexpr DType value = DType::kUInt32;
};
template <>
struct DTypeOf<uint64_t> {
  static constexpr DType value = DType::kUInt64;
};
template <>
struct DTypeOf<bool> {
  static constexpr DType value = DType::kBool;
};

}  // namespace inferd::models

#endif  // INFERD_MODELS_DTYPE_H_
