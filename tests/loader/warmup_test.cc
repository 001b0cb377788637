#include "loader/warmup.h"

#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "tests/testing/model_builder.h"

namespace inferd::loader {
namespace {
namespace fs = std::filesystem;

TEST(Crc32cTest, KnownValues) {
  // RFC 3720 test vector: 32 bytes of zeros.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
}

TEST(TfRecordTest, RoundTrip) {
  std::vector<std::string> records = {"", "a", std::string(1000, 'x')};
  auto parsed = ParseTfRecords(WriteTfRecords(records), 10);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, records);
}

TEST(TfRecordTest, MalformedFilesAreErrorsNeverCrashes) {
  const std::string good = WriteTfRecords({"hello", "world"});
  const size_t first_record = 8 + 4 + 5 + 4;  // a prefix ending there is a valid file
  for (size_t n = 1; n < good.size(); ++n) {
    if (n == first_record) continue;
    auto r = ParseTfRecords(good.substr(0, n), 10);
    EXPECT_FALSE(r.ok()) << "prefix " << n;
  }
  std::string bad_len = good;
  bad_len[0] ^= 1;
  EXPECT_NE(ParseTfRecords(bad_len, 10).status().message().find("length checksum"),
            std::string::npos);
  std::string bad_data = good;
  bad_data[13] ^= 1;
  EXPECT_NE(ParseTfRecords(bad_data, 10).status().message().find("data checksum"),
            std::string::npos);
  EXPECT_NE(ParseTfRecords(good, 1).status().message().find("more than 1"), std::string::npos);
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    (void)ParseTfRecords(junk, 1000);
  }
}

TEST(WarmupTest, MissingFileIsZeroRecordsAndBadRecordsFail) {
  const fs::path dir = testing::MakeTempDir("warmup");
  auto none = ForEachWarmupRecord(dir, [](const auto&) { return absl::OkStatus(); });
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);

  fs::create_directories(dir / "assets.extra");
  tensorflow::serving::PredictionLog log;
  log.mutable_predict_log()->mutable_request()->mutable_model_spec()->set_name("m");
  std::ofstream(dir / kWarmupFile, std::ios::binary)
      << WriteTfRecords({log.SerializeAsString(), log.SerializeAsString()});
  int seen = 0;
  auto two = ForEachWarmupRecord(dir, [&](const tensorflow::serving::PredictionLog& l) {
    EXPECT_EQ(l.predict_log().request().model_spec().name(), "m");
    ++seen;
    return absl::OkStatus();
  });
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, 2);
  EXPECT_EQ(seen, 2);

  auto failing = ForEachWarmupRecord(
      dir, [](const auto&) { return absl::InvalidArgumentError("bad input"); });
  EXPECT_EQ(failing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(failing.status().message().find("warmup record 0"), std::string::npos);

  std::ofstream(dir / kWarmupFile, std::ios::binary) << WriteTfRecords({"\xff\xff\xff"});
  auto garbage = ForEachWarmupRecord(dir, [](const auto&) { return absl::OkStatus(); });
  EXPECT_FALSE(garbage.ok());
}

}  // namespace
}  // namespace inferd::loader
