#include "common/flags.h"

#include "gtest/gtest.h"

namespace inferd {
namespace {

struct Parsed {
  int32_t port = 8500;
  std::string name = "default";
  bool batching = false;
  double ratio = 0.5;
  int64_t bytes = 10;
};

absl::Status Parse(std::vector<const char*> args, Parsed* p, FlagSet* flags) {
  flags->Int32("port", &p->port, "port");
  flags->String("model_name", &p->name, "name");
  flags->Bool("enable_batching", &p->batching, "batching");
  flags->Double("ratio", &p->ratio, "ratio");
  flags->Int64("bytes", &p->bytes, "bytes");
  flags->Ignored("tensorflow_session_parallelism", "ignored");
  args.insert(args.begin(), "prog");
  return flags->Parse(static_cast<int>(args.size()), args.data());
}

TEST(FlagsTest, ParsesTfServingStyles) {
  Parsed p;
  FlagSet flags("prog", "test");
  ASSERT_TRUE(Parse({"--port=9000", "--model_name", "m", "--enable_batching", "-ratio=0.25",
                     "--tensorflow_session_parallelism=4", "--bytes", "77"},
                    &p, &flags).ok());
  EXPECT_EQ(p.port, 9000);
  EXPECT_EQ(p.name, "m");
  EXPECT_TRUE(p.batching);
  EXPECT_EQ(p.ratio, 0.25);
  EXPECT_EQ(p.bytes, 77);
  ASSERT_EQ(flags.warnings().size(), 1u);
  EXPECT_NE(flags.warnings()[0].find("tensorflow_session_parallelism"), std::string::npos);
  EXPECT_TRUE(flags.WasSet("port"));
  EXPECT_FALSE(flags.help_requested());
  EXPECT_NE(flags.Help().find("--port (int, default 8500)"), std::string::npos);
}

TEST(FlagsTest, BadFlagsAreErrorsNamingTheFlag) {
  for (auto args : std::vector<std::vector<const char*>>{{"--prot=1"},
                                                         {"--port=abc"},
                                                         {"--port=99999999999"},
                                                         {"--enable_batching=maybe"},
                                                         {"--model_name"},
                                                         {"positional"},
                                                         {"--ratio=x"}}) {
    Parsed p;
    FlagSet flags("prog", "test");
    absl::Status s = Parse(args, &p, &flags);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << args[0];
  }
  Parsed p;
  FlagSet flags("prog", "test");
  EXPECT_NE(Parse({"--prot=1"}, &p, &flags).message().find("unknown flag --prot"), std::string::npos);
}

TEST(FlagsTest, NegatedBoolAndHelp) {
  Parsed p;
  p.batching = true;
  FlagSet flags("prog", "test");
  ASSERT_TRUE(Parse({"--noenable_batching", "--help"}, &p, &flags).ok());
  EXPECT_FALSE(p.batching);
  EXPECT_TRUE(flags.help_requested());
}

}  // namespace
}  // namespace inferd
