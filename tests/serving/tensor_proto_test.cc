#include "serving/tensor_proto.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace inferd::serving {
namespace {
using tensorflow::TensorProto;

TensorProto Proto(tensorflow::DataType dtype, std::vector<int64_t> dims) {
  TensorProto p;
  p.set_dtype(dtype);
  for (int64_t d : dims) p.mutable_tensor_shape()->add_dim()->set_size(d);
  return p;
}

TEST(TensorProtoTest, TypedValuesAndContentRoundTrip) {
  TensorProto p = Proto(tensorflow::DT_FLOAT, {2, 2});
  for (float v : {1.f, 2.f, 3.f, 4.f}) p.add_float_val(v);
  auto t = FromTensorProto(p, "x");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape, (models::Shape{2, 2}));
  EXPECT_EQ(t->tensor.data<float>()[3], 4.f);
  for (bool content : {false, true}) {
    TensorProto out;
    ToTensorProto(*t, content, &out);
    auto back = FromTensorProto(out, "x");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->tensor.data<float>()[2], 3.f);
    EXPECT_EQ(out.float_val_size(), content ? 0 : 4);
    EXPECT_EQ(out.tensor_content().size(), content ? 16u : 0u);
  }
}

TEST(TensorProtoTest, EveryDtypeRoundTrips) {
  for (auto dtype : {tensorflow::DT_DOUBLE, tensorflow::DT_INT32, tensorflow::DT_UINT8,
                     tensorflow::DT_INT16, tensorflow::DT_INT8, tensorflow::DT_INT64,
                     tensorflow::DT_BOOL, tensorflow::DT_UINT16, tensorflow::DT_HALF,
                     tensorflow::DT_UINT32, tensorflow::DT_UINT64}) {
    TensorProto p = Proto(dtype, {3});
    p.set_tensor_content(std::string(3 * models::DTypeSize(*FromDataType(dtype)), '\x01'));
    auto t = FromTensorProto(p, "x");
    ASSERT_TRUE(t.ok()) << DataTypeName(dtype) << " " << t.status();
    TensorProto typed;
    ToTensorProto(*t, false, &typed);
    auto back = FromTensorProto(typed, "x");
    ASSERT_TRUE(back.ok()) << DataTypeName(dtype) << " " << back.status();
    EXPECT_EQ(std::string(static_cast<const char*>(back->tensor.raw_data()), back->tensor.byte_size()),
              p.tensor_content())
        << DataTypeName(dtype);
  }
}

// Found by fuzz/tensor_proto_fuzzer: DT_BOOL tensor_content is one byte per value, and a byte
// other than 0 or 1 copied as it was made a bool that every reader (kernels, the *_val encoder)
// would read with undefined behaviour.
TEST(TensorProtoTest, BoolTensorContentBytesOtherThanOneAreTrue) {
  TensorProto p = Proto(tensorflow::DT_BOOL, {4});
  p.set_tensor_content(std::string("\x00\x01\x03\xff", 4));
  auto t = FromTensorProto(p, "x");
  ASSERT_TRUE(t.ok()) << t.status();
  const uint8_t* bytes = static_cast<const uint8_t*>(t->tensor.raw_data());
  EXPECT_EQ(std::vector<uint8_t>(bytes, bytes + 4), (std::vector<uint8_t>{0, 1, 1, 1}));
  TensorProto typed;
  ToTensorProto(*t, false, &typed);
  ASSERT_EQ(typed.bool_val_size(), 4);
  EXPECT_FALSE(typed.bool_val(0));
  EXPECT_TRUE(typed.bool_val(2));
  EXPECT_TRUE(typed.bool_val(3));
}

TEST(TensorProtoTest, SingleValueBroadcasts) {
  TensorProto p = Proto(tensorflow::DT_INT32, {2, 3});
  p.add_int_val(7);
  auto t = FromTensorProto(p, "x");
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t->tensor.data<int32_t>()[i], 7);
}

TEST(TensorProtoTest, Strings) {
  TensorProto p = Proto(tensorflow::DT_STRING, {2});
  p.add_string_val("a");
  p.add_string_val(std::string("\0b", 2));
  auto t = FromTensorProto(p, "x");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->strings[1], std::string("\0b", 2));
}

void ExpectInvalid(const TensorProto& p, const std::string& text) {
  auto t = FromTensorProto(p, "img");
  ASSERT_FALSE(t.ok()) << text;
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find(text), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("\"img\""), std::string::npos) << t.status().message();
}

TEST(TensorProtoTest, MalformedTensorsAreClearErrors) {
  TensorProto p = Proto(tensorflow::DT_COMPLEX64, {1});
  ExpectInvalid(p, "DT_COMPLEX64 is not supported");
  p = Proto(static_cast<tensorflow::DataType>(999), {1});
  ExpectInvalid(p, "DataType(999) is not supported");
  p = Proto(tensorflow::DT_FLOAT, {});
  p.mutable_tensor_shape()->set_unknown_rank(true);
  ExpectInvalid(p, "unknown rank");
  p = Proto(tensorflow::DT_FLOAT, {2, -1});
  ExpectInvalid(p, "dimension 1 is -1");
  p = Proto(tensorflow::DT_FLOAT, {int64_t{1} << 40, int64_t{1} << 40});
  ExpectInvalid(p, "too many elements");
  p = Proto(tensorflow::DT_FLOAT, {int64_t{1} << 35});
  p.add_float_val(1);
  ExpectInvalid(p, "too large");
  p = Proto(tensorflow::DT_FLOAT, {3});
  p.add_float_val(1);
  p.add_float_val(2);
  ExpectInvalid(p, "2 values in float_val for 3 elements");
  p = Proto(tensorflow::DT_FLOAT, {3});
  p.add_int_val(1);  // the wrong field for the dtype
  ExpectInvalid(p,
                "values of DT_FLOAT go in float_val (or tensor_content), but the request set "
                "int_val");
  p = Proto(tensorflow::DT_INT64, {1});
  p.add_int_val(7);  // int32's field: int64 values go in int64_val
  ExpectInvalid(p, "DT_INT64 go in int64_val");
  p = Proto(tensorflow::DT_STRING, {1});
  p.add_float_val(1);
  ExpectInvalid(p, "DT_STRING go in string_val");
  p = Proto(tensorflow::DT_UINT8, {2});
  p.add_int_val(1);  // uint8 values are int_val, as in TensorFlow
  p.add_int_val(2);
  EXPECT_TRUE(FromTensorProto(p, "x").ok());
  p = Proto(tensorflow::DT_FLOAT, {2});
  p.set_tensor_content("abc");
  ExpectInvalid(p, "tensor_content has 3 bytes");
  p.add_float_val(1);
  ExpectInvalid(p, "both tensor_content and typed values");
  p = Proto(tensorflow::DT_UINT8, {1});
  p.add_int_val(300);
  ExpectInvalid(p, "300 at index 0 is out of range for uint8");
  p = Proto(tensorflow::DT_INT8, {1});
  p.add_int_val(-129);
  ExpectInvalid(p, "out of range");
  p = Proto(tensorflow::DT_STRING, {1});
  p.set_tensor_content("x");
  ExpectInvalid(p, "string_val");
  p = Proto(tensorflow::DT_FLOAT, {1});
  p.add_resource_handle_val();
  ExpectInvalid(p, "resource");
}

TEST(TensorProtoTest, RandomBytesNeverCrash) {
  std::mt19937 rng(3);
  TensorProto seed = Proto(tensorflow::DT_FLOAT, {2, 2});
  for (int i = 0; i < 4; ++i) seed.add_float_val(i);
  const std::string good = seed.SerializeAsString();
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (i % 3 == 0) bytes.resize(rng() % bytes.size());
    TensorProto p;
    if (!p.ParseFromString(bytes)) continue;
    ++parsed;
    (void)FromTensorProto(p, "x");
  }
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace inferd::serving
