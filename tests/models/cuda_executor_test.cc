// The CUDA executor through Model: a clear load error where there is no GPU (this runs on every
// machine with a CUDA build), and, where there is one, parity with the CPU in FP32 and FP16,
// CUDA-graph replays equal to eager runs, and concurrent runs on several lanes. GPU cases skip
// without a device.
#include <atomic>
#include <cmath>
#include <cstring>
#include <ostream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/cuda/cuda_device.h"
#include "models/model.h"
#include "models/onnx_import.h"

namespace inferd::models {

// For gtest's test names and messages.
void PrintTo(Precision p, std::ostream* os) { *os << PrecisionName(p); }

namespace {

using ::testing::HasSubstr;

const char kDigits[] = INFERD_SOURCE_DIR "/models/zoo/digits/1/model.onnx";
const char kHeldout[] = INFERD_SOURCE_DIR "/models/zoo/digits/heldout/input_0.pb";

bool HaveDevice() { return cuda::CudaDevice::Count().ok(); }

LoadOptions OnCuda(Precision precision = Precision::kFp32, std::vector<int64_t> graphs = {}) {
  LoadOptions o;
  o.executor.placement.kind = "cuda";
  o.executor.precision = precision;
  o.executor.graph_batch_sizes = std::move(graphs);
  return o;
}

Tensor FirstRows(const Tensor& t, int64_t rows) {
  Shape shape = t.shape();
  shape[0] = rows;
  auto out = Tensor::Create(t.dtype(), shape).value();
  std::memcpy(out.raw_data(), t.raw_data(), out.byte_size());
  return out;
}

double MaxAbs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) m = std::max(m, std::abs(t.ElementAsDouble(i)));
  return m;
}

double MaxDiff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    m = std::max(m, std::abs(a.ElementAsDouble(i) - b.ElementAsDouble(i)));
  }
  return m;
}

TEST(CudaExecutorTest, NoDeviceIsAClearLoadError) {
  if (HaveDevice()) GTEST_SKIP() << "a CUDA device is present";
  auto model = Model::Load(kDigits, OnCuda());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(model.status().message(), HasSubstr("no usable CUDA device"));
  LoadOptions bad = OnCuda();
  bad.executor.placement.ordinal = 7;
  EXPECT_FALSE(Model::Load(kDigits, bad).ok());
}

class CudaParityTest : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (!HaveDevice()) GTEST_SKIP() << cuda::CudaDevice::Count().status().message();
  }
};

TEST_P(CudaParityTest, DigitsMatchTheCpu) {
  auto cpu = Model::Load(kDigits);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  auto gpu = Model::Load(kDigits, OnCuda(GetParam(), {1, 8}));
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  auto images = ReadTensorFile(kHeldout);
  ASSERT_TRUE(images.ok()) << images.status();
  for (int64_t rows : {1, 8, 37}) {  // captured, captured, eager
    const Tensor x = FirstRows(*images, rows);
    auto want = (*cpu)->Run({x});
    auto got = (*gpu)->Run({x});
    ASSERT_TRUE(want.ok() && got.ok()) << got.status();
    const double bound = (GetParam() == Precision::kFp16 ? 2e-2 : 1e-4) * MaxAbs((*want)[0]);
    EXPECT_LE(MaxDiff((*got)[0], (*want)[0]), bound) << "batch " << rows;
    // The same class for every image.
    const Tensor& g = (*got)[0];
    const Tensor& w = (*want)[0];
    for (int64_t r = 0; r < rows; ++r) {
      int64_t ga = 0, wa = 0;
      for (int64_t c = 1; c < 10; ++c) {
        if (g.data<float>()[r * 10 + c] > g.data<float>()[r * 10 + ga]) ga = c;
        if (w.data<float>()[r * 10 + c] > w.data<float>()[r * 10 + wa]) wa = c;
      }
      EXPECT_EQ(ga, wa) << "row " << r;
    }
  }
}

TEST_P(CudaParityTest, GraphReplaysEqualEagerRunsAndLanesRunConcurrently) {
  auto eager = Model::Load(kDigits, OnCuda(GetParam()));
  auto graphs = Model::Load(kDigits, OnCuda(GetParam(), {8}));
  ASSERT_TRUE(eager.ok() && graphs.ok()) << graphs.status();
  EXPECT_THAT((*graphs)->PlacementDescription(), HasSubstr("CUDA graphs for batch 8"));
  auto images = ReadTensorFile(kHeldout);
  ASSERT_TRUE(images.ok());
  const Tensor x = FirstRows(*images, 8);
  auto want = (*eager)->Run({x});
  ASSERT_TRUE(want.ok()) << want.status();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto got = (*graphs)->Run({x});
        if (!got.ok() || MaxDiff((*got)[0], (*want)[0]) != 0.0) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Precisions, CudaParityTest,
                         ::testing::Values(Precision::kFp32, Precision::kFp16),
                         [](const auto& info) { return std::string(PrecisionName(info.param)); });

}  // namespace
}  // namespace inferd::models
