#include "models/tensor.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace inferd::models {

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > INT64_MAX / d) return -1;
    n *= d;
  }
  return n;
}

void CopyBytesAsBools(const char* bytes, size_t n, bool* out) {
  for (size_t i = 0; i < n; ++i) out[i] = bytes[i] != 0;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

std::shared_ptr<Buffer> Buffer::Allocate(size_t bytes) {
  const size_t capacity = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, capacity == 0 ? kAlignment : capacity);
  if (p == nullptr) return nullptr;
  return std::shared_ptr<Buffer>(new Buffer(p, capacity));
}

Buffer::~Buffer() { std::free(data_); }

absl::StatusOr<Tensor> Tensor::Create(DType dtype, Shape shape) {
  if (!IsSupportedDType(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensors of type ", DTypeName(dtype), " are not supported"));
  }
  const int64_t n = NumElements(shape);
  const size_t elem = DTypeSize(dtype);
  // Cap at 2^40 bytes: anything larger is a corrupt shape, not a tensor.
  if (n < 0 || static_cast<uint64_t>(n) > (uint64_t{1} << 40) / elem) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid or too large tensor shape ", ShapeToString(shape)));
  }
  auto buffer = Buffer::Allocate(static_cast<size_t>(n) * elem);
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", n * elem, " bytes for a tensor of shape ", ShapeToString(shape)));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = n;
  t.buffer_ = std::move(buffer);
  return t;
}

absl::StatusOr<Tensor> Tensor::FromBuffer(DType dtype, Shape shape,
                                          std::shared_ptr<Buffer> buffer) {
  const int64_t n = NumElements(shape);
  if (!IsSupportedDType(dtype) || n < 0 || buffer == nullptr ||
      static_cast<uint64_t>(n) * DTypeSize(dtype) > buffer->capacity()) {
    return absl::InvalidArgumentError(absl::StrCat("buffer does not fit a ", DTypeName(dtype),
                                                   " tensor of shape ", ShapeToString(shape)));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = n;
  t.buffer_ = std::move(buffer);
  return t;
}

absl::StatusOr<Tensor> Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != num_elements_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape ", ShapeToString(shape_), " to ", ShapeToString(shape)));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

absl::StatusOr<Tensor> Tensor::Clone() const {
  auto t = Create(dtype_, shape_);
  if (!t.ok()) return t.status();
  if (byte_size() > 0) std::memcpy(t->raw_data(), raw_data(), byte_size());
  return t;
}

double Tensor::ElementAsDouble(int64_t i) const {
  double v = 0;
  DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(static_cast<const T*>(raw_data())[i]);
  });
  return v;
}

int64_t Tensor::ElementAsInt64(int64_t i) const {
  int64_t v = 0;
  DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, Half>) {
      v = static_cast<int64_t>(static_cast<float>(static_cast<const T*>(raw_data())[i]));
    } else {
      v = static_cast<int64_t>(static_cast<const T*>(raw_data())[i]);
    }
  });
  return v;
}

}  // namespace inferd::models
