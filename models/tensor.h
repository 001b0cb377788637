// A dense, row-major tensor: dtype, shape and a reference-counted 64-byte aligned buffer.
// Copying a Tensor shares its buffer (cheap); Clone() copies the data. Not thread-safe for
// concurrent mutation; concurrent reads of an unchanging tensor are safe.
#ifndef INFERD_MODELS_TENSOR_H_
#define INFERD_MODELS_TENSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "models/dtype.h"

namespace inferd::models {

// Dimensions, outermost first. Inline up to rank 6, so that making, copying and reshaping the
// tensors of a model run allocates nothing for their shapes.
using Shape = absl::InlinedVector<int64_t, 6>;

// Number of elements of `shape` (1 for a scalar); -1 if a dimension is negative or the product
// overflows int64.
int64_t NumElements(absl::Span<const int64_t> shape);
// "[1,3,224,224]"
std::string ShapeToString(absl::Span<const int64_t> shape);
// Copies `n` bytes of serialized bools (TensorProto tensor_content, ONNX raw_data) into `out`:
// 0 is false and any other byte true, so that no bool holds a byte other than 0 or 1 (undefined
// behaviour for every reader).
void CopyBytesAsBools(const char* bytes, size_t n, bool* out);

// Raw aligned memory. Owned through std::shared_ptr by the tensors that view it.
class Buffer {
 public:
  static constexpr size_t kAlignment = 64;
  // Returns nullptr if the allocation fails.
  static std::shared_ptr<Buffer> Allocate(size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  Buffer(void* data, size_t capacity) : data_(data), capacity_(capacity) {}
  void* data_;
  size_t capacity_;
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates an uninitialised tensor. Fails on a negative or overflowing shape, an unsupported
  // dtype, or an allocation failure.
  static absl::StatusOr<Tensor> Create(DType dtype, Shape shape);
  // Wraps an existing buffer, which must hold at least the tensor's bytes.
  static absl::StatusOr<Tensor> FromBuffer(DType dtype, Shape shape,
                                           std::shared_ptr<Buffer> buffer);
  // A tensor with `values` copied in; for tests and small constants.
  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values);

  bool empty_handle() const { return buffer_ == nullptr && num_elements_ == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return static_cast<size_t>(num_elements_) * DTypeSize(dtype_); }

  void* raw_data() { return buffer_ ? buffer_->data() : nullptr; }
  const void* raw_data() const { return buffer_ ? buffer_->data() : nullptr; }
  template <typename T>
  T* data() {
    return static_cast<T*>(raw_data());
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(raw_data());
  }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }

  // Same buffer, another shape with the same element count.
  absl::StatusOr<Tensor> Reshaped(Shape shape) const;
  // Deep copy.
  absl::StatusOr<Tensor> Clone() const;
  // Element `i` converted to double / int64 (for small index and shape tensors).
  double ElementAsDouble(int64_t i) const;
  int64_t ElementAsInt64(int64_t i) const;

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t num_elements_ = 0;
  std::shared_ptr<Buffer> buffer_;
};

template <typename T>
Tensor Tensor::FromVector(Shape shape, const std::vector<T>& values) {
  Tensor t = Create(DTypeOf<T>::value, std::move(shape)).value();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.num_elements(); ++i) {
    t.data<T>()[i] = values[i];
  }
  return t;
}

// Calls fn(T{}) with T the C++ type of `dtype` (float, double, Half, int8_t ... uint64_t, bool).
// Returns false (and does not call fn) for types without storage (string, bfloat16, undefined).
template <typename Fn>
bool DispatchDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      fn(float{});
      return true;
    case DType::kFloat64:
      fn(double{});
      return true;
    case DType::kFloat16:
      fn(Half{});
      return true;
    case DType::kInt8:
      fn(int8_t{});
      return true;
    case DType::kInt16:
      fn(int16_t{});
      return true;
    case DType::kInt32:
      fn(int32_t{});
      return true;
    case DType::kInt64:
      fn(int64_t{});
      return true;
    case DType::kUInt8:
      fn(uint8_t{});
      return true;
    case DType::kUInt16:
      fn(uint16_t{});
      return true;
    case DType::kUInt32:
      fn(uint32_t{});
      return true;
    case DType::kUInt64:
      fn(uint64_t{});
      return true;
    case DType::kBool:
      fn(bool{});
      return true;
    default:
      return false;
  }
}

}  // namespace inferd::models

#endif  // INFERD_MODELS_TENSOR_H_
