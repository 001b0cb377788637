// The vector layer's masked and strided forms (models/cpu/simd.h) for the instruction set this
// build uses and for the emulated shapes of the others, against plain loops: every lane range,
// and that lanes outside it are neither read nor written.
#include "models/cpu/simd.h"

#include <gtest/gtest.h>

#include <vector>

namespace inferd::models::cpu::simd {
namespace {

template <typename S>
class SimdTest : public ::testing::Test {};

using Targets = ::testing::Types<Isa, Emulated<4, 16>, Emulated<8, 16>, Emulated<16, 32>>;
TYPED_TEST_SUITE(SimdTest, Targets);

template <typename S>
std::vector<float> Lanes(typename S::V v) {
  std::vector<float> out(S::kLanes);
  S::Store(out.data(), v);
  return out;
}

// 0.5, 1.5, ... in a buffer with a canary in front and after.
std::vector<float> Counting(int n) {
  std::vector<float> v(n + 2, -99.0f);
  for (int i = 0; i < n; ++i) v[i + 1] = i + 0.5f;
  return v;
}

TYPED_TEST(SimdTest, RangesReadAndWriteOnlyTheirLanes) {
  using S = TypeParam;
  constexpr int L = S::kLanes;
  const std::vector<float> src = Counting(L);
  for (int lo = 0; lo <= L; ++lo) {
    for (int hi = lo; hi <= L; ++hi) {
      // Reading: the lanes outside [lo, hi) are zero even where the source has values.
      const std::vector<float> got = Lanes<S>(S::LoadRange(src.data() + 1, lo, hi));
      for (int i = 0; i < L; ++i) {
        ASSERT_EQ(got[i], i >= lo && i < hi ? i + 0.5f : 0.0f) << lo << ".." << hi << " " << i;
      }
      // Writing: only [lo, hi) changes; the canaries stay.
      std::vector<float> dst(L + 2, -1.0f);
      S::StoreRange(dst.data() + 1, lo, hi, S::Load(src.data() + 1));
      for (int i = -1; i <= L; ++i) {
        ASSERT_EQ(dst[i + 1], i >= lo && i < hi ? i + 0.5f : -1.0f) << lo << ".." << hi << " " << i;
      }
    }
    std::vector<float> dst(L + 2, -1.0f);
    S::StoreFirst(dst.data() + 1, lo, S::Load(src.data() + 1));
    const std::vector<float> first = Lanes<S>(S::LoadFirst(src.data() + 1, lo));
    for (int i = 0; i < L; ++i) {
      ASSERT_EQ(first[i], i < lo ? i + 0.5f : 0.0f) << lo;
      ASSERT_EQ(dst[i + 1], i < lo ? i + 0.5f : -1.0f) << lo;
    }
    ASSERT_EQ(dst[0], -1.0f);
    ASSERT_EQ(dst[L + 1], -1.0f);
  }
}

TYPED_TEST(SimdTest, LoadEvenTakesEveryOtherFloat) {
  using S = TypeParam;
  const std::vector<float> src = Counting(2 * S::kLanes);
  const std::vector<float> got = Lanes<S>(S::LoadEven(src.data() + 1));
  for (int i = 0; i < S::kLanes; ++i) EXPECT_EQ(got[i], 2 * i + 0.5f) << i;
}

TYPED_TEST(SimdTest, TransposeSwapsRowsAndColumnsOfOneBlock) {
  using S = TypeParam;
  constexpr int L = S::kLanes;
  // Rows further apart than the block is wide, on both sides; the gaps stay untouched.
  const int64_t ss = L + 3, ds = L + 5;
  std::vector<float> src(L * ss), dst(L * ds, -1.0f);
  for (int i = 0; i < L; ++i) {
    for (int j = 0; j < ss; ++j) src[i * ss + j] = j < L ? 100 * i + j : -2.0f;
  }
  S::Transpose(src.data(), ss, dst.data(), ds);
  for (int j = 0; j < L; ++j) {
    for (int i = 0; i < ds; ++i) {
      ASSERT_EQ(dst[j * ds + i], i < L ? 100 * i + j : -1.0f) << j << " " << i;
    }
  }
}

TYPED_TEST(SimdTest, Arithmetic) {
  using S = TypeParam;
  const std::vector<float> x = Counting(S::kLanes);
  const typename S::V v = S::Load(x.data() + 1), two = S::Set1(2.0f);
  const std::vector<float> fma = Lanes<S>(S::Fma(v, two, S::Set1(1.0f)));
  const std::vector<float> sum = Lanes<S>(S::Add(S::Mul(v, two), S::Zero()));
  const std::vector<float> difference = Lanes<S>(S::Sub(v, two));
  const std::vector<float> clamped = Lanes<S>(S::Min(S::Set1(3.0f), S::Max(S::Set1(1.0f), v)));
  for (int i = 0; i < S::kLanes; ++i) {
    const float xi = i + 0.5f;
    EXPECT_EQ(fma[i], 2 * xi + 1);
    EXPECT_EQ(sum[i], 2 * xi);
    EXPECT_EQ(difference[i], xi - 2);
    EXPECT_EQ(clamped[i], xi < 1 ? 1.0f : (xi > 3 ? 3.0f : xi));
  }
}

}  // namespace
}  // namespace inferd::models::cpu::simd
