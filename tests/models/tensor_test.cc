#include "models/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace inferd::models {
namespace {

TEST(TensorTest, CreateIsAlignedAndSized) {
  auto t = Tensor::Create(DType::kFloat32, {2, 3, 5});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->num_elements(), 30);
  EXPECT_EQ(t->byte_size(), 120u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->raw_data()) % Buffer::kAlignment, 0u);
}

TEST(TensorTest, RejectsBadShapesAndTypes) {
  EXPECT_FALSE(Tensor::Create(DType::kFloat32, {-1, 2}).ok());
  EXPECT_FALSE(Tensor::Create(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40}).ok());
  EXPECT_FALSE(Tensor::Create(DType::kString, {2}).ok());
  EXPECT_FALSE(Tensor::Create(DType::kBFloat16, {2}).ok());
}

TEST(TensorTest, ScalarsAndEmptyTensors) {
  auto s = Tensor::Create(DType::kInt64, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->num_elements(), 1);
  auto e = Tensor::Create(DType::kFloat32, {0, 4});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->num_elements(), 0);
}

TEST(TensorTest, ReshapeSharesAndChecksCount) {
  Tensor t = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto r = t.Reshaped({3, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->raw_data(), t.raw_data());
  EXPECT_FALSE(t.Reshaped({4, 2}).ok());
  auto c = t.Clone();
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->raw_data(), t.raw_data());
  EXPECT_EQ(c->data<float>()[5], 6.0f);
}

TEST(TensorTest, HalfConversionsRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    const float back = static_cast<float>(Half(f));
    EXPECT_NEAR(back, f, std::abs(f) * 1e-3 + 1e-7) << f;
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(Half(1e6f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(Half(1.0f).bits, 0x3c00);
  EXPECT_EQ(Half(-2.0f).bits, 0xc000);
}

}  // namespace
}  // namespace inferd::models
