// Kernel parity: one table of cases per optimised path (packed GEMM, im2col and pointwise
// Conv, depthwise Conv, 2-D pooling), each run through a one-node model and compared with a
// plain reference implementation written here.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "models/cpu/sgemm.h"
#include "models/cpu/small_rows_gemm.h"
#include "models/model.h"
#include "models/onnx_import.h"
#include "tests/testing/model_builder.h"

namespace inferd::models {
namespace {

using ::inferd::testing::ModelBuilder;
using ::inferd::testing::SetAttr;

Tensor Random(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  Tensor t = Tensor::Create(DType::kFloat32, std::move(shape)).value();
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

std::vector<Tensor> RunOne(const ModelBuilder& b, const std::vector<Tensor>& inputs, int threads) {
  auto g = ImportOnnxBytes(b.Serialize(), "");
  EXPECT_TRUE(g.ok()) << g.status();
  LoadOptions o;
  o.device = std::make_shared<CpuDevice>(threads);
  auto m = Model::FromGraph(*std::move(g), o);
  EXPECT_TRUE(m.ok()) << m.status();
  auto out = (*m)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>{};
}

// The model run on "cuda": its outputs, or why it could not run there (no CUDA in this build,
// no device) in `skip`.
std::vector<Tensor> RunOnCuda(const ModelBuilder& b, const std::vector<Tensor>& inputs,
                              std::string* skip) {
  if (BuiltInExecutors().Find("cuda") == nullptr) {
    *skip = "this build has no CUDA executor";
    return {};
  }
  auto g = ImportOnnxBytes(b.Serialize(), "");
  EXPECT_TRUE(g.ok()) << g.status();
  LoadOptions o;
  o.executor.placement.kind = "cuda";
  auto m = Model::FromGraph(*std::move(g), o);
  if (!m.ok() && m.status().code() == absl::StatusCode::kFailedPrecondition) {
    *skip = std::string(m.status().message());
    return {};
  }
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) return {};
  auto out = (*m)->Run(inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : std::vector<Tensor>{};
}

// Root mean square of a float tensor: the scale errors of a sum of many products grow with.
float Rms(const Tensor& t) {
  double sum = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) sum += double{t.data<float>()[i]} * t.data<float>()[i];
  return t.num_elements() ? static_cast<float>(std::sqrt(sum / t.num_elements())) : 0.0f;
}

void ExpectNear(const Tensor& got, const Tensor& want, float tol) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], tol) << "element " << i;
  }
}

TEST(SgemmTest, MatchesNaiveProductAtPanelEdges) {
  for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {9, 31, 257}, {17, 65, 600}, {64, 100, 3}}) {
    Tensor a = Random({m, k}, 1), b = Random({k, n}, 2);
    cpu::PackedA pa(a.data<float>(), k, m, k);
    std::vector<float> pb(cpu::PackedBSize(k, n) + 16);
    float* aligned = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(pb.data()) + 63) & ~63);
    cpu::PackB(b.data<float>(), n, k, n, aligned);
    std::vector<float> c(m * n, -7.0f);
    cpu::SgemmPacked(pa, 0, pa.panels(), n, aligned, c.data(), n);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double want = 0;
        for (int64_t p = 0; p < k; ++p)
          want += a.data<float>()[i * k + p] * b.data<float>()[p * n + j];
        ASSERT_NEAR(c[i * n + j], want, 1e-4 * (1 + std::abs(want))) << m << "x" << n << "x" << k;
      }
    }
  }
}

TEST(SmallRowsGemmTest, MatchesNaiveProductForEveryRowBlockAndColumnTail) {
  // Rows: each block size (1..6) and blocks plus remainders; columns: tails of 1..4 vectors
  // (AVX-512's blocks are 4 vectors wide, AVX2's 2) and partial vectors; both layouts of B.
  for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{
           {1, 64, 512}, {5, 64, 512}, {6, 10, 64}, {7, 70, 33}, {13, 130, 9}, {32, 1, 5},
           {4, 47, 1}, {12, 16, 100}, {3, 60, 7}, {2, 125, 3}, {7, 24, 2}}) {
    for (bool transposed : {false, true}) {
      Tensor a = Random({m, k}, 1);
      Tensor b = transposed ? Random({n, k}, 2) : Random({k, n}, 2);
      const cpu::KMajorMatrix packed(b.data<float>(), b.dim(1), k, n, transposed);
      for (bool accumulate : {false, true}) {
        std::vector<float> c(m * n, 0.25f);
        // Two column ranges, as the pool would split them.
        const int64_t split = n > 64 ? 64 : n;
        cpu::SmallRowsGemm(m, 0, split, 0.5f, a.data<float>(), k, packed, accumulate, c.data(), n);
        cpu::SmallRowsGemm(m, split, n, 0.5f, a.data<float>(), k, packed, accumulate, c.data(), n);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            double want = 0;
            for (int64_t p = 0; p < k; ++p) {
              const float bv = transposed ? b.data<float>()[j * k + p] : b.data<float>()[p * n + j];
              want += a.data<float>()[i * k + p] * bv;
            }
            want = 0.5 * want + (accumulate ? 0.25 : 0.0);
            ASSERT_NEAR(c[i * n + j], want, 1e-4 * (1 + std::abs(want)))
                << m << "x" << n << "x" << k << (transposed ? " B^T" : "") << " row " << i
                << " column " << j;
          }
        }
      }
    }
  }
}

TEST(GemmOpTest, ConstantWeightsGiveTheSameResultsAtEveryBatchSize) {
  // A fully connected layer (constant B, transB) takes SmallRowsGemm up to 32 rows and Eigen's
  // product beyond: both against the naive product, on one and two threads.
  const int64_t k = 70, n = 20;
  Tensor w = Random({n, k}, 5), bias = Random({n}, 6);
  for (int64_t m : {1, 5, 6, 31, 32, 33, 40}) {
    ModelBuilder mb;
    mb.Input("x", DType::kFloat32, {m, k}).Output("y", DType::kFloat32);
    mb.Initializer("w", w).Initializer("bias", bias);
    SetAttr(mb.Node("Gemm", {"x", "w", "bias"}, {"y"}), "transB", int64_t{1});
    Tensor x = Random({m, k}, 7);
    Tensor want = Tensor::Create(DType::kFloat32, {m, n}).value();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = bias.data<float>()[j];
        for (int64_t p = 0; p < k; ++p) {
          acc += x.data<float>()[i * k + p] * w.data<float>()[j * k + p];
        }
        want.data<float>()[i * n + j] = static_cast<float>(acc);
      }
    }
    for (int threads : {1, 2}) {
      auto out = RunOne(mb, {x}, threads);
      ASSERT_EQ(out.size(), 1u);
      ExpectNear(out[0], want, 1e-4f);
    }
  }
}

struct ConvCase {
  const char* name;
  int64_t n, c, h, w, m, kh, kw;
  int64_t sh, sw, dh, dw;
  std::vector<int64_t> pads;  // top, left, bottom, right
  int64_t group;
  bool bias;
};

Tensor NaiveConv(const ConvCase& k, const Tensor& x, const Tensor& wt, const Tensor* b) {
  const int64_t oh = (k.h + k.pads[0] + k.pads[2] - k.dh * (k.kh - 1) - 1) / k.sh + 1;
  const int64_t ow = (k.w + k.pads[1] + k.pads[3] - k.dw * (k.kw - 1) - 1) / k.sw + 1;
  Tensor y = Tensor::Create(DType::kFloat32, {k.n, k.m, oh, ow}).value();
  const int64_t cg = k.c / k.group, mg = k.m / k.group;
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t m = 0; m < k.m; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b ? b->data<float>()[m] : 0.0;
          const int64_t g = m / mg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t a = 0; a < k.kh; ++a)
              for (int64_t e = 0; e < k.kw; ++e) {
                const int64_t ih = i * k.sh - k.pads[0] + a * k.dh;
                const int64_t iw = j * k.sw - k.pads[1] + e * k.dw;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                acc += x.data<float>()[((n * k.c + g * cg + c) * k.h + ih) * k.w + iw] *
                       wt.data<float>()[((m * cg + c) * k.kh + a) * k.kw + e];
              }
          y.data<float>()[((n * k.m + m) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class ConvParityTest : public ::testing::TestWithParam<ConvCase> {};

// One Conv node; weights as an initializer, or as a second input when not `constant_weights`.
ModelBuilder ConvModel(const ConvCase& k, bool constant_weights, const Tensor& w, const Tensor& b) {
  ModelBuilder mb;
  mb.Input("x", DType::kFloat32, {-1, k.c, k.h, k.w}).Output("y", DType::kFloat32);
  if (constant_weights) {
    mb.Initializer("w", w);
  } else {
    mb.Input("w", DType::kFloat32, {k.m, k.c / k.group, k.kh, k.kw});
  }
  if (k.bias) mb.Initializer("b", b);
  auto& node = mb.Node(
      "Conv", k.bias ? std::vector<std::string>{"x", "w", "b"} : std::vector<std::string>{"x", "w"},
      {"y"});
  SetAttr(node, "strides", std::vector<int64_t>{k.sh, k.sw});
  SetAttr(node, "dilations", std::vector<int64_t>{k.dh, k.dw});
  SetAttr(node, "pads", k.pads);
  SetAttr(node, "group", k.group);
  return mb;
}

TEST_P(ConvParityTest, MatchesNaiveConvolution) {
  const ConvCase& k = GetParam();
  Tensor x = Random({k.n, k.c, k.h, k.w}, 3);
  Tensor w = Random({k.m, k.c / k.group, k.kh, k.kw}, 4);
  Tensor b = Random({k.m}, 5);
  Tensor want = NaiveConv(k, x, w, k.bias ? &b : nullptr);
  // 1e-4 of the outputs' scale (at least 1e-4): Winograd F(4x4, 3x3) rounds its transforms'
  // larger intermediate values (relative errors near 2e-5 with 40 input channels).
  const float tol = 1e-4f * std::max(1.0f, Rms(want));
  for (bool constant_weights : {true, false}) {
    const ModelBuilder mb = ConvModel(k, constant_weights, w, b);
    std::vector<Tensor> inputs = {x};
    if (!constant_weights) inputs.push_back(w);
    for (int threads : {1, 2, 3}) {
      auto out = RunOne(mb, inputs, threads);
      ASSERT_EQ(out.size(), 1u);
      ExpectNear(out[0], want, tol);
    }
  }
}

// The same table on the GPU against the CPU (skipped without one).
TEST_P(ConvParityTest, CudaMatchesCpu) {
  const ConvCase& k = GetParam();
  Tensor x = Random({k.n, k.c, k.h, k.w}, 3);
  const ModelBuilder mb =
      ConvModel(k, true, Random({k.m, k.c / k.group, k.kh, k.kw}, 4), Random({k.m}, 5));
  std::string skip;
  auto gpu = RunOnCuda(mb, {x}, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_EQ(gpu.size(), 1u);
  ExpectNear(gpu[0], RunOne(mb, {x}, 2)[0], 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConvParityTest,
    ::testing::Values(
        ConvCase{"pointwise", 2, 16, 7, 9, 24, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, true},
        ConvCase{"pointwise_wide", 1, 8, 20, 20, 9, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, false},
        ConvCase{"im2col_3x3", 2, 5, 11, 13, 17, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        // Small planes are im2col'ed from a zero-bordered copy; this one is too large for it.
        ConvCase{"small_plane_8x8", 3, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        // More zero-bordered planes: several images of 4x4, dilated 8x8, a 1x3 kernel on 16x16,
        // and 32x32 split into column blocks (tasks starting inside an image).
        ConvCase{"whole_rows_4x4", 3, 5, 4, 4, 12, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        ConvCase{"whole_rows_8x8_dilated", 2, 6, 8, 8, 10, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, 1, true},
        ConvCase{"whole_rows_16_1x3", 2, 4, 16, 16, 8, 1, 3, 1, 1, 1, 1, {0, 1, 0, 1}, 1, false},
        ConvCase{"whole_rows_32_blocks", 1, 3, 32, 32, 8, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, 1, true},
        ConvCase{"large_plane_5x5", 1, 2, 66, 66, 3, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, 1, true},
        ConvCase{"strided_asymmetric", 1, 3, 15, 14, 8, 7, 7, 2, 2, 1, 1, {3, 2, 1, 3}, 1, true},
        ConvCase{"dilated", 1, 4, 12, 12, 6, 3, 3, 1, 1, 2, 3, {2, 3, 2, 3}, 1, false},
        ConvCase{"asymmetric_kernel_1x7", 1, 6, 9, 17, 10, 1, 7, 1, 1, 1, 1, {0, 3, 0, 3}, 1, true},
        ConvCase{"groups", 2, 8, 6, 6, 12, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 4, true},
        ConvCase{"depthwise", 2, 12, 10, 10, 12, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 12, true},
        ConvCase{"depthwise_strided", 1, 7, 15, 16, 7, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 7, false},
        ConvCase{"depthwise_multiplier", 1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 4, true},
        ConvCase{
            "many_outputs_small_image", 1, 32, 3, 3, 70, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        // Winograd F(2x2, 3x3): odd sizes, asymmetric pads, channels not a panel multiple.
        ConvCase{"winograd", 2, 19, 30, 37, 21, 3, 3, 1, 1, 1, 1, {1, 0, 2, 1}, 1, true},
        ConvCase{"winograd_no_pad", 1, 8, 17, 16, 40, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, 1, false},
        // Positions as GEMM rows (7x7 outputs, channels a multiple of 32; with 96 input
        // channels the direct kernel's shifted planes would not fit in cache).
        ConvCase{"transposed_3x3", 2, 96, 7, 7, 64, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        // The direct kernel (constant weights; the same cases with weights as inputs take
        // im2col): output channels not a multiple of 16 over 1-3 blocks, outputs not a
        // multiple of 16, rows wider than 16, pads wider than the kernel reaches, no bias.
        ConvCase{"direct_8x8", 2, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        ConvCase{"direct_odd_sizes", 3, 7, 5, 11, 37, 3, 3, 1, 1, 1, 1, {1, 0, 2, 1}, 1, false},
        ConvCase{"direct_wide_rows_5x5", 1, 3, 9, 21, 18, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, 1, true},
        ConvCase{"direct_wide_pads", 1, 2, 4, 4, 5, 2, 2, 1, 1, 1, 1, {3, 3, 3, 3}, 1, true},
        ConvCase{"transposed_pointwise", 3, 32, 7, 7, 96, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, true},
        // Winograd for small maps (3x3, 8 to 4096 / M input channels, fewer than 32 tiles), in
        // 4x4 tiles where they take fewer multiplies, else (6x6) 2x2: odd output sides and
        // asymmetric pads (partial tiles), channels that are not whole vectors, no padding, and
        // images too large to be run together (one group each).
        ConvCase{"small_winograd_2x2", 2, 10, 6, 6, 12, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true},
        ConvCase{"small_winograd_odd", 3, 9, 7, 5, 33, 3, 3, 1, 1, 1, 1, {1, 0, 2, 1}, 1, true},
        ConvCase{"small_winograd_no_pad", 2, 12, 10, 9, 7, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, 1, false},
        ConvCase{"small_winograd_groups", 3, 40, 10, 12, 40, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

// A 3x3 Conv with `c` input and `m` output channels whose spatial dims are unknown at load, run
// at each of `sizes` (square) against the naive convolution.
void ExpectDynamicSizesMatch(int64_t c, int64_t m, std::initializer_list<int64_t> sizes) {
  ModelBuilder mb;
  mb.Input("x", DType::kFloat32, {1, c, -1, -1}).Output("y", DType::kFloat32);
  Tensor w = Random({m, c, 3, 3}, 21), b = Random({m}, 22);
  mb.Initializer("w", w).Initializer("b", b);
  SetAttr(mb.Node("Conv", {"x", "w", "b"}, {"y"}), "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto g = ImportOnnxBytes(mb.Serialize(), "");
  ASSERT_TRUE(g.ok()) << g.status();
  auto model = Model::FromGraph(*std::move(g));
  ASSERT_TRUE(model.ok()) << model.status();
  for (int64_t size : sizes) {
    ConvCase k{"dynamic", 1, c, size, size, m, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true};
    Tensor x = Random({1, c, size, size}, 23);
    auto out = (*model)->Run({x});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectNear((*out)[0], NaiveConv(k, x, w, &b), 1e-4f);
  }
}

TEST(ConvTest, KernelShapeThatDisagreesWithTheWeightsIsAnError) {
  // A malformed model: kernel_shape says 5x5, the weights are 3x3. Loading it (constant
  // weights) or running it (weights as an input) fails with a message naming both; nothing
  // reads past the weights.
  for (bool constant_weights : {true, false}) {
    ConvCase k{"mismatch", 1, 4, 8, 8, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, true};
    Tensor w = Random({8, 4, 3, 3}, 31);
    ModelBuilder mb = ConvModel(k, constant_weights, w, Random({8}, 32));
    SetAttr(*mb.mutable_proto().mutable_graph()->mutable_node(0), "kernel_shape",
            std::vector<int64_t>{5, 5});
    std::vector<Tensor> inputs = {Random({1, 4, 8, 8}, 33)};
    if (!constant_weights) inputs.push_back(w);
    auto g = ImportOnnxBytes(mb.Serialize(), "");
    absl::Status status = g.status();
    if (g.ok()) {
      auto m = Model::FromGraph(*std::move(g));
      status = m.status();
      if (m.ok()) status = (*m)->Run(inputs).status();
    }
    ASSERT_FALSE(status.ok()) << constant_weights;
    EXPECT_NE(std::string(status.message()).find("kernel_shape"), std::string::npos) << status;
  }
}

TEST(ConvTest, DynamicImageSizeKeepsEveryPathReady) {
  // With the spatial dims unknown at load, one kernel must serve sizes that pick the
  // transposed GEMM (7x7), Winograd (16x16) and the plain GEMM (5x5: too few tiles for
  // Winograd, and 25 positions pad alike in either GEMM orientation). These weights are too
  // large for the direct kernel to be prepared without a known output size.
  ExpectDynamicSizesMatch(128, 64, {7, 16, 5});
}

TEST(ConvTest, DynamicImageSizeSmallLayerTakesTheSmallMapKernelsWhereTheyFit) {
  // Small weights: the small-map kernels (Winograd with vector registers, else the direct
  // kernel) are prepared, and serve 5x5 and 7x7; 40x40 is beyond them.
  ExpectDynamicSizesMatch(16, 24, {5, 7, 40});
}

struct PoolCase {
  const char* name;
  bool max;
  int64_t h, w, kh, kw, sh, sw;
  std::vector<int64_t> pads;
  bool ceil;
  bool include_pad;
};

Tensor NaivePool(const PoolCase& p, const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t planes = x.dim(0) * x.dim(1);
  Tensor y = Tensor::Create(DType::kFloat32, {x.dim(0), x.dim(1), oh, ow}).value();
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double acc = p.max ? -std::numeric_limits<double>::infinity() : 0;
        int64_t count = 0, padded_count = 0;
        for (int64_t a = 0; a < p.kh; ++a)
          for (int64_t e = 0; e < p.kw; ++e) {
            const int64_t ih = i * p.sh - p.pads[0] + a, iw = j * p.sw - p.pads[1] + e;
            if (ih < p.h + p.pads[2] && iw < p.w + p.pads[3]) ++padded_count;
            if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
            const float v = x.data<float>()[(pl * p.h + ih) * p.w + iw];
            acc = p.max ? std::max<double>(acc, v) : acc + v;
            ++count;
          }
        y.data<float>()[(pl * oh + i) * ow + j] =
            static_cast<float>(p.max ? acc : acc / (p.include_pad ? padded_count : count));
      }
  return y;
}

void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }

class PoolParityTest : public ::testing::TestWithParam<PoolCase> {};

ModelBuilder PoolModel(const PoolCase& p) {
  ModelBuilder mb;
  mb.Input("x", DType::kFloat32, {2, 3, p.h, p.w}).Output("y", DType::kFloat32);
  auto& node = mb.Node(p.max ? "MaxPool" : "AveragePool", {"x"}, {"y"});
  SetAttr(node, "kernel_shape", std::vector<int64_t>{p.kh, p.kw});
  SetAttr(node, "strides", std::vector<int64_t>{p.sh, p.sw});
  SetAttr(node, "pads", p.pads);
  SetAttr(node, "ceil_mode", int64_t{p.ceil});
  if (!p.max) SetAttr(node, "count_include_pad", int64_t{p.include_pad});
  return mb;
}

TEST_P(PoolParityTest, MatchesNaivePooling) {
  const PoolCase& p = GetParam();
  Tensor x = Random({2, 3, p.h, p.w}, 8);
  auto out = RunOne(PoolModel(p), {x}, 2);
  ASSERT_EQ(out.size(), 1u);
  ExpectNear(out[0], NaivePool(p, x, out[0].dim(2), out[0].dim(3)), 1e-5f);
}

TEST_P(PoolParityTest, CudaMatchesCpu) {
  const PoolCase& p = GetParam();
  Tensor x = Random({2, 3, p.h, p.w}, 8);
  const ModelBuilder mb = PoolModel(p);
  std::string skip;
  auto gpu = RunOnCuda(mb, {x}, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_EQ(gpu.size(), 1u);
  ExpectNear(gpu[0], RunOne(mb, {x}, 2)[0], 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PoolParityTest,
    ::testing::Values(
        PoolCase{"max_3x3_s2", true, 13, 13, 3, 3, 2, 2, {0, 0, 0, 0}, false, false},
        PoolCase{"max_padded_ceil", true, 12, 11, 3, 3, 2, 2, {1, 1, 1, 1}, true, false},
        PoolCase{"avg_excl_pad", false, 9, 10, 3, 3, 1, 1, {1, 1, 1, 1}, false, false},
        PoolCase{"avg_incl_pad", false, 9, 10, 3, 3, 1, 1, {1, 1, 1, 1}, false, true},
        PoolCase{"avg_ceil_incl_pad", false, 8, 8, 3, 3, 2, 2, {1, 0, 1, 0}, true, true},
        PoolCase{"avg_asymmetric", false, 7, 12, 2, 5, 1, 3, {0, 2, 1, 1}, false, false},
        // 2x2 windows tiling the input, reduced over the whole tensor at once.
        PoolCase{"max_2x2_tiling", true, 8, 8, 2, 2, 2, 2, {0, 0, 0, 0}, false, false},
        PoolCase{"avg_2x2_tiling", false, 6, 10, 2, 2, 2, 2, {0, 0, 0, 0}, false, false},
        // Windows inside the input reduced where they lie (odd sizes, 1xN).
        PoolCase{"max_2x2_odd", true, 7, 9, 2, 2, 2, 2, {0, 0, 0, 0}, false, false},
        PoolCase{"avg_1x3_strided", false, 5, 9, 1, 3, 1, 2, {0, 0, 0, 0}, false, true},
        PoolCase{"max_2x2_ceil", true, 7, 7, 2, 2, 2, 2, {0, 0, 0, 0}, true, false}),
    [](const ::testing::TestParamInfo<PoolCase>& info) { return info.param.name; });

TEST(GemmOpTest, TransposesAndBroadcastsBias) {
  Tensor a = Random({5, 3}, 1), b = Random({4, 5}, 2), c = Random({4}, 3);
  ModelBuilder mb;
  mb.Input("a", DType::kFloat32, {5, 3}).Output("y", DType::kFloat32);
  mb.Initializer("b", b).Initializer("c", c);
  auto& node = mb.Node("Gemm", {"a", "b", "c"}, {"y"});
  SetAttr(node, "transA", int64_t{1});
  SetAttr(node, "transB", int64_t{1});
  SetAttr(node, "alpha", 0.5f);
  SetAttr(node, "beta", 2.0f);
  auto out = RunOne(mb, {a}, 2);
  ASSERT_EQ(out.size(), 1u);
  Tensor want = Tensor::Create(DType::kFloat32, {3, 4}).value();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) {
      double acc = 0;
      for (int p = 0; p < 5; ++p) acc += a.data<float>()[p * 3 + i] * b.data<float>()[j * 5 + p];
      want.data<float>()[i * 4 + j] = static_cast<float>(0.5 * acc + 2.0 * c.data<float>()[j]);
    }
  ExpectNear(out[0], want, 1e-5f);
}

TEST(ArithmeticTest, IntegerDivisionByZeroIsAnError) {
  ModelBuilder mb;
  mb.Input("a", DType::kInt32, {2}).Input("b", DType::kInt32, {2});
  mb.Output("y", DType::kInt32, {2});
  mb.Node("Div", {"a", "b"}, {"y"});
  auto g = ImportOnnxBytes(mb.Serialize(), "");
  auto m = Model::FromGraph(*std::move(g));
  ASSERT_TRUE(m.ok());
  auto out = (*m)->Run(
      {Tensor::FromVector<int32_t>({2}, {4, 5}), Tensor::FromVector<int32_t>({2}, {2, 0})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("division by zero"), std::string::npos);
  auto overflow =
      (*m)->Run({Tensor::FromVector<int32_t>({2}, {std::numeric_limits<int32_t>::min(), 1}),
                 Tensor::FromVector<int32_t>({2}, {-1, 1})});
  EXPECT_FALSE(overflow.ok());
}

TEST(GatherTest, OutOfRangeIndexIsAnError) {
  ModelBuilder mb;
  mb.Input("x", DType::kFloat32, {3, 2}).Input("i", DType::kInt64, {1});
  mb.Output("y", DType::kFloat32);
  mb.Node("Gather", {"x", "i"}, {"y"});
  auto g = ImportOnnxBytes(mb.Serialize(), "");
  auto m = Model::FromGraph(*std::move(g));
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE((*m)->Run({Random({3, 2}, 1), Tensor::FromVector<int64_t>({1}, {3})}).ok());
  EXPECT_TRUE((*m)->Run({Random({3, 2}, 1), Tensor::FromVector<int64_t>({1}, {-3})}).ok());
}

}  // namespace
}  // namespace inferd::models
