#include "serving/json_tensor.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/dtype.h"
#include "models/tensor.h"
#include "serving/json.h"

namespace inferd::serving {
namespace {

using models::DType;
using models::Half;
using models::Shape;
using models::Tensor;
using ::testing::HasSubstr;

TensorSpec Spec(std::string name, DType dtype) {
  TensorSpec spec;
  spec.name = std::move(name);
  spec.dtype = dtype;
  spec.has_shape = false;
  return spec;
}

Signature Sig(std::vector<TensorSpec> inputs) {
  Signature sig;
  sig.inputs = std::move(inputs);
  return sig;
}

Signature OneInput(DType dtype) { return Sig({Spec("x", dtype)}); }

template <typename T>
std::vector<T> Values(const EdgeTensor& e) {
  const T* p = e.tensor.data<T>();
  return std::vector<T>(p, p + e.tensor.num_elements());
}

// Parses `body` and expects it to fail with InvalidArgument mentioning `substring`.
void ExpectParseError(std::string_view body, const Signature& sig, std::string_view substring) {
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(body, sig);
  ASSERT_FALSE(r.ok()) << "body: " << body;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(std::string(substring))) << "body: " << body;
}

// Parses a columnar body and writes the one input back as a columnar response.
std::string RoundTrip(DType dtype, std::string_view value_text) {
  std::string body = "{\"inputs\":" + std::string(value_text) + "}";
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(body, OneInput(dtype));
  EXPECT_TRUE(r.ok()) << r.status() << " body: " << body;
  if (!r.ok()) return "";
  EXPECT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0].second.dtype, dtype);
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(false, r->inputs);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// ---- JSON reader ----

TEST(JsonDocumentTest, ParsesAllValueKinds) {
  std::string text = R"( {"a": [1, -2.5e3, true, false, null, "s"], "b": {}, "c": []} )";
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(text);
  ASSERT_TRUE(doc.ok()) << doc.status();
  JsonValue root = doc->root();
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.size(), 3u);
  EXPECT_EQ(root.offset(), 1u);
  std::vector<std::string> keys;
  for (const JsonValue::Member& m : root.members()) keys.emplace_back(m.key);
  EXPECT_THAT(keys, ::testing::ElementsAre("a", "b", "c"));
  JsonValue a = (*root.members().begin()).value;
  ASSERT_TRUE(a.is_array());
  std::vector<JsonType> types;
  for (JsonValue v : a.elements()) types.push_back(v.type());
  EXPECT_THAT(types, ::testing::ElementsAre(JsonType::kNumber, JsonType::kNumber, JsonType::kBool,
                                            JsonType::kBool, JsonType::kNull, JsonType::kString));
  auto it = a.elements().begin();
  int32_t i = 0;
  EXPECT_EQ((*it).GetNumber(&i), JsonNumberStatus::kOk);
  EXPECT_EQ(i, 1);
  ++it;
  double d = 0;
  EXPECT_EQ((*it).number_text(), "-2.5e3");
  EXPECT_EQ((*it).GetNumber(&d), JsonNumberStatus::kOk);
  EXPECT_EQ(d, -2500.0);
  ++it;
  EXPECT_TRUE((*it).bool_value());
  ++it;
  EXPECT_FALSE((*it).bool_value());
}

TEST(JsonDocumentTest, DecodesEscapes) {
  absl::StatusOr<JsonDocument> doc =
      JsonDocument::Parse(R"(["\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00\u0041", "plain", "\u0000"])");
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::vector<std::string> s;
  for (JsonValue v : doc->root().elements()) s.emplace_back(v.string_value());
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0], "\"\\/\b\f\n\r\t");
  EXPECT_EQ(s[1],
            "\xC3\xA9\xF0\x9F\x98\x80"
            "A");
  EXPECT_EQ(s[2], "plain");
  EXPECT_EQ(s[3], std::string(1, '\0'));
}

TEST(JsonDocumentTest, NonFiniteLiterals) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse("[NaN, Infinity, -Infinity, Inf, -Inf]");
  ASSERT_TRUE(doc.ok()) << doc.status();
  std::vector<double> v;
  for (JsonValue e : doc->root().elements()) {
    double d = 0;
    ASSERT_EQ(e.GetNumber(&d), JsonNumberStatus::kOk);
    v.push_back(d);
  }
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[3], std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[4], -std::numeric_limits<double>::infinity());
}

TEST(JsonDocumentTest, DepthLimit) {
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(JsonDocument::Parse(ok).ok());
  std::string deep = std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']');
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(deep);
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(doc.status().message(), HasSubstr("nesting is deeper than 100"));
  EXPECT_THAT(doc.status().message(), HasSubstr("byte offset 100"));
}

TEST(JsonDocumentTest, SyntaxErrorsNameOffsets) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "byte offset 0: empty document"},
      {"   ", "empty document"},
      {"nope", "byte offset 0: invalid literal"},
      {"[1,]", "byte offset 3: unexpected character ']', expected a value"},
      {"[1 2]", "byte offset 3: unexpected character '2' in a list, expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{1: 2}", "expected '\"' to start a member name"},
      {"{\"a\": 1,}", "expected '\"' to start a member name"},
      {"[1] x", "byte offset 4: unexpected character 'x' after the JSON value"},
      {"01", "byte offset 1: unexpected character '1' after the JSON value"},
      {"1.", "after '.', expected a digit"},
      {".5", "unexpected character '.', expected a value"},
      {"+1", "unexpected character '+', expected a value"},
      {"-", "unexpected end of input in a number"},
      {"-x", "in a number, expected a digit"},
      {"1e", "in an exponent, expected a digit"},
      {"1e+", "in an exponent, expected a digit"},
      {"tru", "expected 'true'"},
      {"nul", "expected 'null'"},
      {"fals", "expected 'false'"},
      {"Infinit", "expected NaN, Infinity or -Infinity"},
      {"Na", "expected NaN, Infinity or -Infinity"},
      {"\"abc", "byte offset 0: unterminated string"},
      {"\"ab\\", "unterminated string"},
      {"\"a\\qb\"", "byte offset 2: invalid escape: character 'q'"},
      {"\"\\u12G4\"", "is not a hexadecimal digit"},
      {"\"\\u12", "unterminated \\u escape"},
      {"\"\\uD800\"", "high surrogate \\uD800 is not followed by a \\u low surrogate"},
      {"\"\\uD800\\u0041\"", "is followed by \\u0041, not a low surrogate"},
      {"\"\\uDC00\"", "lone low surrogate \\uDC00"},
      {"\"a\nb\"", "unescaped control byte 0x0a in a string"},
      {"\"a\\n\tb\"", "unescaped control byte 0x09 in a string"},
      {"[\x01]", "byte 0x01"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(c.text);
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(doc.status().message(), HasSubstr("Invalid JSON at byte offset")) << c.text;
    EXPECT_THAT(doc.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(JsonDocumentTest, NumberConversions) {
  auto number = [](const std::string& text, auto* out) {
    absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(text);
    EXPECT_TRUE(doc.ok()) << text;
    return doc->root().GetNumber(out);
  };
  int32_t i = 0;
  EXPECT_EQ(number("3.0", &i), JsonNumberStatus::kOk);
  EXPECT_EQ(i, 3);
  EXPECT_EQ(number("1e2", &i), JsonNumberStatus::kOk);
  EXPECT_EQ(i, 100);
  EXPECT_EQ(number("1.5", &i), JsonNumberStatus::kNotInteger);
  EXPECT_EQ(number("1e-400", &i), JsonNumberStatus::kNotInteger);
  EXPECT_EQ(number("NaN", &i), JsonNumberStatus::kNotInteger);
  EXPECT_EQ(number("2147483648", &i), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("2147483648.0", &i), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("-2147483648.0", &i), JsonNumberStatus::kOk);
  EXPECT_EQ(i, std::numeric_limits<int32_t>::min());
  uint8_t u8 = 1;
  EXPECT_EQ(number("-0", &u8), JsonNumberStatus::kOk);
  EXPECT_EQ(u8, 0);
  EXPECT_EQ(number("-1", &u8), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("256", &u8), JsonNumberStatus::kOutOfRange);
  int64_t i64 = 0;
  EXPECT_EQ(number("9223372036854775807", &i64), JsonNumberStatus::kOk);
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(number("9223372036854775808", &i64), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("9.3e18", &i64), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("-9.223372036854775808e18", &i64), JsonNumberStatus::kOk);
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  uint64_t u64 = 0;
  EXPECT_EQ(number("18446744073709551615", &u64), JsonNumberStatus::kOk);
  EXPECT_EQ(u64, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(number("18446744073709551616", &u64), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("1.8446744073709551616e19", &u64), JsonNumberStatus::kOutOfRange);
  double d = 0;
  EXPECT_EQ(number("1e400", &d), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("-1e400", &d), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("1e-400", &d), JsonNumberStatus::kOk);
  EXPECT_EQ(d, 0.0);
  EXPECT_EQ(number("-0.0000000001e-400", &d), JsonNumberStatus::kOk);
  EXPECT_TRUE(std::signbit(d));
  float f = 0;
  EXPECT_EQ(number("1e39", &f), JsonNumberStatus::kOk);  // float overflow saturates
  EXPECT_EQ(f, std::numeric_limits<float>::infinity());
  EXPECT_EQ(number("1e-50", &f), JsonNumberStatus::kOk);
  EXPECT_EQ(f, 0.0f);
  EXPECT_EQ(number("1e400", &f), JsonNumberStatus::kOutOfRange);
  EXPECT_EQ(number("0.1", &f), JsonNumberStatus::kOk);
  EXPECT_EQ(f, 0.1f);  // rounded once, straight to float
}

// GetNumber's fast path must round exactly like std::from_chars.
TEST(JsonDocumentTest, NumbersRoundLikeFromChars) {
  std::mt19937_64 rng(99);
  std::vector<std::string> texts;
  for (int i = 0; i < 20000; ++i) {
    std::string t = rng() % 2 ? "-" : "";
    const int int_digits = 1 + static_cast<int>(rng() % 10);
    const int frac_digits = static_cast<int>(rng() % 12);
    t += std::to_string(1 + rng() % 9);
    for (int k = 1; k < int_digits; ++k) t += static_cast<char>('0' + rng() % 10);
    if (frac_digits > 0) {
      t += '.';
      for (int k = 0; k < frac_digits; ++k) t += static_cast<char>('0' + rng() % 10);
    }
    if (rng() % 3 == 0) t += "e" + std::to_string(static_cast<int>(rng() % 60) - 30);
    texts.push_back(t);
  }
  // Float midpoints as exact decimals (the double-rounding hazard), and shortest floats.
  for (int i = 0; i < 2000; ++i) {
    const float f = std::uniform_real_distribution<float>(-1000, 1000)(rng);
    const float g = std::nextafter(f, 2000.0f);
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), (static_cast<double>(f) + g) / 2);
    texts.emplace_back(buf, end);
    auto [end2, ec2] = std::to_chars(buf, buf + sizeof(buf), f);
    texts.emplace_back(buf, end2);
  }
  // 17 to 19 significant digits, which the parser converts from a rounded double with an error
  // margin: float32 values as Python writes them (the double's shortest repr), and decimals a
  // few units of the 19th digit either side of float midpoints, where the margin must send
  // them to the exact path.
  for (int i = 0; i < 4000; ++i) {
    const float f = std::uniform_real_distribution<float>(-3, 3)(rng);
    const float g = std::nextafter(f, 4.0f);
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(f));
    texts.emplace_back(buf, end);
    const double mid = (static_cast<double>(f) + g) / 2;
    for (int digits : {17, 18, 19}) {
      std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, mid);
      texts.emplace_back(buf);
      std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, std::nextafter(mid, 10.0));
      texts.emplace_back(buf);
      std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, std::nextafter(mid, -10.0));
      texts.emplace_back(buf);
    }
  }
  texts.push_back("16777217");  // 2^24 + 1: halfway between two floats
  texts.push_back("0.16777217000000000001e8");  // just above it, 20 digits
  texts.push_back("1677721699999999999e-11");   // just below it, 19 digits
  texts.push_back("0.1");
  texts.push_back("9007199254740993");
  for (const std::string& t : texts) {
    absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(t);
    ASSERT_TRUE(doc.ok()) << t;
    float f = 0, f_ref = 0;
    double d = 0, d_ref = 0;
    ASSERT_EQ(doc->root().GetNumber(&f), JsonNumberStatus::kOk) << t;
    ASSERT_EQ(doc->root().GetNumber(&d), JsonNumberStatus::kOk) << t;
    // Out of float range, from_chars reports an error where GetNumber saturates (tested above).
    if (std::from_chars(t.data(), t.data() + t.size(), f_ref).ec == std::errc()) {
      ASSERT_EQ(f, f_ref) << t;
    }
    ASSERT_EQ(std::from_chars(t.data(), t.data() + t.size(), d_ref).ec, std::errc()) << t;
    ASSERT_EQ(d, d_ref) << t;
  }
}

// ---- Writers ----

TEST(JsonWriterTest, FloatFormatting) {
  auto f = [](float v) {
    std::string s;
    AppendJsonFloat(v, &s);
    return s;
  };
  auto d = [](double v) {
    std::string s;
    AppendJsonDouble(v, &s);
    return s;
  };
  EXPECT_EQ(f(1.0f), "1.0");
  EXPECT_EQ(f(0.1f), "0.1");
  EXPECT_EQ(f(-2.5f), "-2.5");
  EXPECT_EQ(f(1e20f), "1e+20");
  EXPECT_EQ(f(123456.0f), "123456.0");
  EXPECT_EQ(f(100000.0f), "1e+05");  // shortest form: scientific is shorter here
  EXPECT_EQ(f(-0.0f), "-0.0");
  EXPECT_EQ(f(1e-7f), "1e-07");
  EXPECT_EQ(f(std::numeric_limits<float>::quiet_NaN()), "NaN");
  EXPECT_EQ(f(std::numeric_limits<float>::infinity()), "Infinity");
  EXPECT_EQ(f(-std::numeric_limits<float>::infinity()), "-Infinity");
  EXPECT_EQ(d(0.1), "0.1");
  EXPECT_EQ(d(1.0), "1.0");
  EXPECT_EQ(d(1e300), "1e+300");
  EXPECT_EQ(d(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(d(static_cast<double>(0.1f)), "0.10000000149011612");
}

TEST(JsonWriterTest, StringEscaping) {
  std::string s;
  AppendJsonString(std::string("a\"b\\c\n\t\x01\x1f\x7f\xc3\xa9", 12), &s);
  EXPECT_EQ(s, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\xc3\xa9\"");
  s.clear();
  AppendJsonString("", &s);
  EXPECT_EQ(s, "\"\"");
}

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacters) {
  // Valid multi-byte sequences pass; a stray continuation byte, an overlong form, a surrogate,
  // a code point past U+10FFFF and a truncated sequence each become \ufffd (byte by byte).
  std::string s;
  AppendJsonString("\xe2\x82\xac|\x80|\xc0\x80|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82", &s);
  EXPECT_EQ(s,
            "\"\xe2\x82\xac|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
            "\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"");
  EXPECT_TRUE(IsValidUtf8("plain \xc3\xa9 \xf0\x9f\x99\x82"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x99"));
  EXPECT_EQ(ValidUtf8("ok"), "ok");
  EXPECT_EQ(ValidUtf8("a\xff" "b\xc3"), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
  EXPECT_TRUE(IsValidUtf8(ValidUtf8("\xed\xa0\x80\xf5\x80")));
}

TEST(JsonWriterTest, Base64) {
  auto b64 = [](std::string_view in) {
    std::string s;
    AppendBase64(in, &s);
    return s;
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("hello"), "aGVsbG8=");
  EXPECT_EQ(b64(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(JsonWriterTest, ErrorBody) {
  EXPECT_EQ(JsonErrorBody("Servable not found for request: Latest(half)"),
            R"j({"error":"Servable not found for request: Latest(half)"})j");
  EXPECT_EQ(JsonErrorBody("bad \"x\"\nnext"), R"({"error":"bad \"x\"\nnext"})");
}

// ---- Predict request / response ----

TEST(JsonTensorTest, RoundTripEveryDType) {
  EXPECT_EQ(RoundTrip(DType::kFloat32, "[[1.5,-2.0,0.1,3.4028235e+38]]"),
            R"({"outputs":[[1.5,-2.0,0.1,3.4028235e+38]]})");
  EXPECT_EQ(RoundTrip(DType::kFloat64, "[0.1,1e+300,-5e-324]"),
            R"({"outputs":[0.1,1e+300,-5e-324]})");
  EXPECT_EQ(RoundTrip(DType::kFloat16, "[1.5,-0.25,65504.0,0.0]"),
            R"({"outputs":[1.5,-0.25,65504.0,0.0]})");
  EXPECT_EQ(RoundTrip(DType::kInt8, "[-128,0,127]"), R"({"outputs":[-128,0,127]})");
  EXPECT_EQ(RoundTrip(DType::kUInt8, "[0,255]"), R"({"outputs":[0,255]})");
  EXPECT_EQ(RoundTrip(DType::kInt16, "[-32768,32767]"), R"({"outputs":[-32768,32767]})");
  EXPECT_EQ(RoundTrip(DType::kUInt16, "[0,65535]"), R"({"outputs":[0,65535]})");
  EXPECT_EQ(RoundTrip(DType::kInt32, "[[-2147483648],[2147483647]]"),
            R"({"outputs":[[-2147483648],[2147483647]]})");
  EXPECT_EQ(RoundTrip(DType::kUInt32, "[0,4294967295]"), R"({"outputs":[0,4294967295]})");
  EXPECT_EQ(RoundTrip(DType::kInt64, "[-9223372036854775808,9223372036854775807]"),
            R"({"outputs":[-9223372036854775808,9223372036854775807]})");
  EXPECT_EQ(RoundTrip(DType::kUInt64, "[0,18446744073709551615]"),
            R"({"outputs":[0,18446744073709551615]})");
  EXPECT_EQ(RoundTrip(DType::kBool, "[[true,false],[false,true]]"),
            R"({"outputs":[[true,false],[false,true]]})");
  EXPECT_EQ(RoundTrip(DType::kString, R"(["a\"b","\u00e9"])"),
            "{\"outputs\":[\"a\\\"b\",\"\xc3\xa9\"]}");
}

TEST(JsonTensorTest, TypedValuesAndShapes) {
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(
      R"({"signature_name": "serving_default", "inputs": [[1, 2, 3], [4, 5, 6]]})",
      OneInput(DType::kFloat32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->signature_name, "serving_default");
  EXPECT_FALSE(r->row_format);
  ASSERT_EQ(r->inputs.size(), 1u);
  const EdgeTensor& e = r->inputs[0].second;
  EXPECT_EQ(r->inputs[0].first, "x");
  EXPECT_EQ(e.dtype, DType::kFloat32);
  EXPECT_EQ(e.shape, (Shape{2, 3}));
  EXPECT_EQ(e.tensor.dtype(), DType::kFloat32);
  EXPECT_EQ(e.tensor.shape(), (Shape{2, 3}));
  EXPECT_EQ(Values<float>(e), (std::vector<float>{1, 2, 3, 4, 5, 6}));

  r = ParseJsonPredictRequest(R"({"inputs": [1, 3.0, 1e2, -0]})", OneInput(DType::kInt64));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Values<int64_t>(r->inputs[0].second), (std::vector<int64_t>{1, 3, 100, 0}));

  r = ParseJsonPredictRequest(R"({"inputs": [0.1, 65504, 1e10]})", OneInput(DType::kFloat16));
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<Half> h = Values<Half>(r->inputs[0].second);
  EXPECT_EQ(h[0].bits, Half(0.1f).bits);
  EXPECT_EQ(static_cast<float>(h[1]), 65504.0f);
  EXPECT_TRUE(std::isinf(static_cast<float>(h[2])));
}

TEST(JsonTensorTest, RowFormatOneInput) {
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(
      R"({"instances": [[1, 2], [3, 4], [5, 6]]})", OneInput(DType::kInt32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->row_format);
  EXPECT_EQ(r->signature_name, "");
  ASSERT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{3, 2}));
  EXPECT_EQ(Values<int32_t>(r->inputs[0].second), (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));

  // Rows of scalars.
  r = ParseJsonPredictRequest(R"({"instances": [1.5, 2.5]})", OneInput(DType::kFloat32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{2}));

  // A single named row.
  r = ParseJsonPredictRequest(R"({"instances": [{"x": [1, 2]}]})", OneInput(DType::kFloat32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{1, 2}));

  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, r->inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"predictions":[[1.0,2.0]]})");
}

TEST(JsonTensorTest, RowFormatSeveralInputs) {
  Signature sig =
      Sig({Spec("a", DType::kFloat32), Spec("b", DType::kInt64), Spec("c", DType::kBool)});
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(
      R"({"instances": [{"b": 5, "a": [[1, 2]]}, {"a": [[3, 4]], "b": 6}]})", sig);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inputs.size(), 2u);  // "c" not given: not an error here
  EXPECT_EQ(r->inputs[0].first, "b");
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{2}));
  EXPECT_EQ(Values<int64_t>(r->inputs[0].second), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(r->inputs[1].first, "a");
  EXPECT_EQ(r->inputs[1].second.shape, (Shape{2, 1, 2}));
  EXPECT_EQ(Values<float>(r->inputs[1].second), (std::vector<float>{1, 2, 3, 4}));

  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, r->inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"predictions":[{"b":5,"a":[[1.0,2.0]]},{"b":6,"a":[[3.0,4.0]]}]})");
}

TEST(JsonTensorTest, ColumnarSeveralInputs) {
  Signature sig = Sig({Spec("a", DType::kFloat32), Spec("b", DType::kUInt8)});
  absl::StatusOr<JsonPredictRequest> r =
      ParseJsonPredictRequest(R"({"inputs": {"a": [[1], [2], [3]], "b": 7}})", sig);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->row_format);
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{3, 1}));
  EXPECT_EQ(r->inputs[1].second.shape, (Shape{}));  // scalar: rank 0
  EXPECT_EQ(Values<uint8_t>(r->inputs[1].second), (std::vector<uint8_t>{7}));

  absl::StatusOr<std::string> out = WriteJsonPredictResponse(false, r->inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"outputs":{"a":[[1.0],[2.0],[3.0]],"b":7}})");

  // A single input named in an object is the same as the bare value.
  r = ParseJsonPredictRequest(R"({"inputs": {"x": [1, 2]}})", OneInput(DType::kInt32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{2}));
}

TEST(JsonTensorTest, Scalars) {
  absl::StatusOr<JsonPredictRequest> r =
      ParseJsonPredictRequest(R"({"inputs": 3.5})", OneInput(DType::kFloat64));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{}));
  EXPECT_EQ(Values<double>(r->inputs[0].second), (std::vector<double>{3.5}));
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(false, r->inputs);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"outputs":3.5})");

  out = WriteJsonPredictResponse(true, r->inputs);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("is a scalar"));
}

TEST(JsonTensorTest, EmptyDimensions) {
  absl::StatusOr<JsonPredictRequest> r =
      ParseJsonPredictRequest(R"({"inputs": [[], []]})", OneInput(DType::kFloat32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{2, 0}));
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, r->inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"predictions":[[],[]]})");

  r = ParseJsonPredictRequest(R"({"inputs": []})", OneInput(DType::kInt32));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{0}));
  out = WriteJsonPredictResponse(false, r->inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"outputs":[]})");
}

TEST(JsonTensorTest, StringInputsAndB64) {
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(
      R"({"instances": [{"b64": "aGVsbG8="}, "raw", {"b64": "/wD+"}]})", OneInput(DType::kString));
  ASSERT_TRUE(r.ok()) << r.status();
  const EdgeTensor& e = r->inputs[0].second;
  EXPECT_TRUE(e.is_string());
  EXPECT_EQ(e.shape, (Shape{3}));
  EXPECT_TRUE(e.tensor.empty_handle());
  EXPECT_THAT(e.strings, ::testing::ElementsAre("hello", "raw", std::string("\xff\x00\xfe", 3)));

  // A b64 object as the whole columnar value is a scalar, not a map of inputs.
  r = ParseJsonPredictRequest(R"({"inputs": {"b64": "aGk="}})", OneInput(DType::kString));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.shape, (Shape{}));
  EXPECT_THAT(r->inputs[0].second.strings, ::testing::ElementsAre("hi"));

  // Named rows holding b64 values.
  r = ParseJsonPredictRequest(
      R"({"instances": [{"image": {"b64": "aGk="}}, {"image": {"b64": "eW8="}}]})",
      Sig({Spec("image", DType::kString)}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->inputs[0].second.strings, ::testing::ElementsAre("hi", "yo"));
}

TEST(JsonTensorTest, BytesOutputsAreBase64) {
  EdgeTensor s;
  s.dtype = DType::kString;
  s.shape = {2};
  s.strings = {"hello", std::string("\xff\x00", 2)};
  EdgeTensor label = s;
  label.strings = {"a\"b", "\xc3\xa9"};
  NamedTensors outputs = {{"image_bytes", s}, {"label", label}};
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(false, outputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "{\"outputs\":{\"image_bytes\":[{\"b64\":\"aGVsbG8=\"},{\"b64\":\"/wA=\"}],"
            "\"label\":[\"a\\\"b\",\"\xc3\xa9\"]}}");
  out = WriteJsonPredictResponse(true, outputs);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "{\"predictions\":[{\"image_bytes\":{\"b64\":\"aGVsbG8=\"},\"label\":\"a\\\"b\"},"
            "{\"image_bytes\":{\"b64\":\"/wA=\"},\"label\":\"\xc3\xa9\"}]}");

  // Bytes written as b64 come back as the same bytes.
  NamedTensors one = {{"x_bytes", s}};
  out = WriteJsonPredictResponse(false, one);
  ASSERT_TRUE(out.ok());
  std::string body = *out;
  body.replace(body.find("outputs"), 7, "inputs");
  absl::StatusOr<JsonPredictRequest> r =
      ParseJsonPredictRequest(body, Sig({Spec("x_bytes", DType::kString)}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs[0].second.strings, s.strings);
}

TEST(JsonTensorTest, NonFiniteInAndOut) {
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(
      R"({"inputs": [NaN, Infinity, -Infinity, 1]})", OneInput(DType::kFloat32));
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<float> v = Values<float>(r->inputs[0].second);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<float>::infinity());
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, r->inputs);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"predictions":[NaN,Infinity,-Infinity,1.0]})");

  EXPECT_EQ(RoundTrip(DType::kFloat64, "[NaN,Infinity,-Infinity]"),
            R"({"outputs":[NaN,Infinity,-Infinity]})");
  ExpectParseError(R"({"inputs": [NaN]})", OneInput(DType::kInt32), "is not an integer");
}

TEST(JsonTensorTest, OutputErrors) {
  NamedTensors outputs = {{"a", EdgeTensor::FromTensor(Tensor::FromVector<float>({2}, {1, 2}))},
                          {"b", EdgeTensor::FromTensor(Tensor::FromVector<float>({3}, {1, 2, 3}))}};
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, outputs);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("inconsistent batch size"));
  EXPECT_THAT(out.status().message(), HasSubstr("'a' has 2 rows but 'b' has 3"));
  // Columnar output has no such constraint.
  out = WriteJsonPredictResponse(false, outputs);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, R"({"outputs":{"a":[1.0,2.0],"b":[1.0,2.0,3.0]}})");

  out = WriteJsonPredictResponse(false, {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);

  EdgeTensor bad;
  bad.dtype = DType::kString;
  bad.shape = {3};
  bad.strings = {"a"};
  out = WriteJsonPredictResponse(false, {{"s", bad}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);

  EdgeTensor undefined;  // no dtype, no tensor
  out = WriteJsonPredictResponse(false, {{"u", undefined}});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("no JSON form"));
}

TEST(JsonTensorTest, MalformedRequests) {
  const Signature x_float = OneInput(DType::kFloat32);
  const Signature ab = Sig({Spec("a", DType::kFloat32), Spec("b", DType::kFloat32)});

  ExpectParseError("", x_float, "empty document");
  ExpectParseError("not json", x_float, "Invalid JSON at byte offset 0");
  ExpectParseError(R"({"inputs": [1]} x)", x_float, "after the JSON value");
  ExpectParseError(R"([1, 2])", x_float, "must be a JSON object, got a list of 2 elements");
  ExpectParseError(R"({"inputs": [1], "extra": 1})", x_float, "Unknown key 'extra'");
  ExpectParseError(R"({"inputs": [1], "instances": [1]})", x_float,
                   "both 'instances' and 'inputs'");
  ExpectParseError(R"({"signature_name": "x"})", x_float, "neither 'instances' nor 'inputs'");
  ExpectParseError(R"({})", x_float, "neither 'instances' nor 'inputs'");
  ExpectParseError(R"({"inputs": [1], "inputs": [2]})", x_float, "'inputs' is given twice");
  ExpectParseError(R"({"signature_name": 1, "inputs": [1]})", x_float,
                   "'signature_name' must be a string");

  // Deep nesting.
  ExpectParseError(std::string(100000, '['), x_float, "nesting is deeper than 100");
  ExpectParseError("{\"inputs\":" + std::string(100000, '['), x_float, "nesting is deeper");

  // Ragged lists.
  ExpectParseError(R"({"inputs": [[1, 2], [3]]})", x_float,
                   "Input 'x' must be a rectangular nested list: the value at [1] is a list of 1 "
                   "element, expected a list of 2 elements");
  ExpectParseError(R"({"inputs": [[1, 2], 3]})", x_float,
                   "the value at [1] is the number 3, expected a list of 2 elements");
  ExpectParseError(R"({"inputs": [[1, [2]]]})", x_float,
                   "the value at [0][1] is a list of 1 element, expected a scalar");
  ExpectParseError(R"({"instances": [[1, 2], [3, 4, 5]]})", x_float,
                   "the value at [1] is a list of 3 elements, expected a list of 2");
  ExpectParseError(R"({"instances": [{"x": [1, 2]}, {"x": [1]}]})", x_float,
                   "the value at [1] is a list of 1 element, expected a list of 2 elements");
  ExpectParseError(R"({"instances": [{"x": 1}, {"x": [1]}]})", x_float,
                   "the value at [1] is a list of 1 element, expected a scalar");
  // The first elements claim 100x100 elements; the check happens before any allocation.
  std::string claim = "{\"inputs\":[[0";
  for (int i = 1; i < 100; ++i) claim += ",0";
  claim += "]";
  for (int i = 1; i < 100; ++i) claim += ",1";
  claim += "]}";
  ExpectParseError(claim, x_float, "the value at [1] is the number 1, expected a list of 100");

  // Names.
  ExpectParseError(R"({"inputs": {"zzz": 1}})", ab,
                   "Input 'zzz' is not in the signature; its inputs are 'a', 'b'");
  ExpectParseError(R"({"instances": [{"zzz": 1}]})", ab, "Input 'zzz' is not in the signature");
  ExpectParseError(R"({"instances": [{"a": 1}, {"a": 1, "zzz": 1}]})", ab,
                   "Input 'zzz' is not in the signature");
  ExpectParseError(R"({"inputs": {"a": 1, "a": 2}})", ab, "Input 'a' is given twice in 'inputs'");
  ExpectParseError(R"({"instances": [{"a": 1, "a": 2}]})", ab,
                   "Input 'a' is given twice in instances[0]");
  ExpectParseError(R"({"instances": [{"a": 1}, {"a": 1, "a": 2}]})", ab,
                   "Input 'a' is given twice in instances[1]");
  ExpectParseError(R"({"instances": [{"a": 1, "b": 2}, {"a": 1}]})", ab,
                   "instances[1] lacks input 'b'");
  ExpectParseError(R"({"instances": [{"a": 1}, {"a": 1, "b": 2}]})", ab,
                   "instances[1] has input 'b' which instances[0] does not have");
  ExpectParseError(R"({"instances": [{"a": 1}, 2]})", ab,
                   "instances[1] is the number 2, but instances[0] is an object naming inputs");
  ExpectParseError(R"({"instances": [1, 2]})", ab, "exactly one input; its inputs are 'a', 'b'");
  ExpectParseError(R"({"inputs": [1, 2]})", ab, "exactly one input");
  ExpectParseError(R"({"inputs": {}})", ab, "'inputs' is an empty object");
  ExpectParseError(R"({"instances": [{}]})", ab, "instances[0] is an empty object");
  ExpectParseError(R"({"instances": []})", x_float, "empty batch");
  ExpectParseError(R"({"instances": 1})", x_float, "'instances' must be a list, got the number 1");

  // Types.
  ExpectParseError(R"({"inputs": ["a"]})", x_float,
                   "Input 'x' has dtype float32 but the value at [0] is a string");
  ExpectParseError(R"({"inputs": [1.5]})", OneInput(DType::kInt32),
                   "Input 'x' has dtype int32 but the value at [0] (the number 1.5) is not an "
                   "integer");
  ExpectParseError(R"({"inputs": [1, 300]})", OneInput(DType::kUInt8),
                   "Input 'x' has dtype uint8 but the value at [1] (the number 300) is out of "
                   "range");
  ExpectParseError(R"({"inputs": -1})", OneInput(DType::kUInt32),
                   "Input 'x' has dtype uint32 but the value (the number -1) is out of range");
  ExpectParseError(R"({"inputs": [128]})", OneInput(DType::kInt8), "is out of range");
  ExpectParseError(R"({"inputs": [true]})", x_float, "the value at [0] is true");
  ExpectParseError(R"({"inputs": [null]})", x_float, "the value at [0] is null");
  ExpectParseError(R"({"inputs": null})", x_float, "the value is null");
  ExpectParseError(R"({"inputs": [1]})", OneInput(DType::kBool),
                   "dtype bool but the value at [0] is the number 1");
  ExpectParseError(R"({"inputs": [{"b64": "aGk="}]})", x_float,
                   "dtype float32 but the value at [0] is a {\"b64\": ...} object");
  ExpectParseError(R"({"inputs": [{"c": 1}]})", x_float, "the value at [0] is an object");
  ExpectParseError(R"({"inputs": [1]})", OneInput(DType::kString),
                   "dtype string but the value at [0] is the number 1");
  ExpectParseError(R"({"inputs": [{"b64": "!!!"}]})", OneInput(DType::kString),
                   "Input 'x': the \"b64\" value at [0] is not valid base64");
  ExpectParseError(R"({"inputs": {"b64": 5}})", OneInput(DType::kString),
                   "the \"b64\" value is the number 5, expected a string");
  ExpectParseError(R"({"inputs": [1e400]})", OneInput(DType::kFloat64), "is out of range");
  ExpectParseError(R"({"inputs": [1]})", OneInput(DType::kBFloat16),
                   "Input 'x' has dtype bfloat16, which JSON requests cannot carry");

  // String syntax.
  ExpectParseError(R"({"inputs": ["a\qb"]})", OneInput(DType::kString), "invalid escape");
  ExpectParseError(R"({"inputs": ["ab)", OneInput(DType::kString), "unterminated string");
  ExpectParseError(R"({"inputs": ["\u12"]})", OneInput(DType::kString),
                   "is not a hexadecimal digit");
  ExpectParseError(R"({"inputs": ["\uD83D"]})", OneInput(DType::kString), "high surrogate");
  ExpectParseError(R"({"inputs": ["\uDE00"]})", OneInput(DType::kString), "lone low surrogate");
}

TEST(JsonTensorTest, EveryPrefixOfAValidBodyIsAnError) {
  const std::string body =
      R"({"signature_name": "serving_default", "instances": [{"a": [1.5, -2e3, NaN], )"
      R"("s": {"b64": "aGk="}}, {"a": [Infinity, -Infinity, 0], "s": "t\u00e9\n"}]})";
  const Signature sig = Sig({Spec("a", DType::kFloat32), Spec("s", DType::kString)});
  ASSERT_TRUE(ParseJsonPredictRequest(body, sig).ok());
  for (size_t n = 0; n < body.size(); ++n) {
    absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(body.substr(0, n), sig);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("Invalid JSON at byte offset"));
  }
}

TEST(JsonTensorTest, RandomBytesAndMutationsNeverCrash) {
  std::mt19937 rng(12345);  // fixed seed: the same inputs every run
  const Signature sig =
      Sig({Spec("a", DType::kFloat32), Spec("b", DType::kInt8), Spec("s", DType::kString)});
  const std::string valid =
      R"({"instances": [{"a": [1.5, NaN], "b": [[1], [2]], "s": {"b64": "aGk="}},)"
      R"( {"a": [-Infinity, 2e-3], "b": [[3], [-4]], "s": "\ud83d\ude00"}]})";
  ASSERT_TRUE(ParseJsonPredictRequest(valid, sig).ok());
  const std::string alphabet = "{}[]\",:0123456789.-+eENaInfity tfrulse\\u\"b64";
  int ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) {
      c = rng() % 2 ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    }
    absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(junk, sig);
    if (r.ok())
      ++ok;
    else
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
  for (int iter = 0; iter < 5000; ++iter) {
    std::string m = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng() % m.size();
      switch (rng() % 4) {
        case 0:
          m[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          m.erase(pos, 1 + rng() % 3);
          break;
        case 2:
          m.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          m.insert(pos, m.substr(rng() % m.size(), rng() % 16));
      }
      if (m.empty()) m = "{";
    }
    absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(m, sig);
    if (r.ok()) {
      ++ok;
      for (const auto& [name, t] : r->inputs) {
        EXPECT_EQ(t.is_string() ? static_cast<int64_t>(t.strings.size()) : t.tensor.num_elements(),
                  models::NumElements(t.shape));
      }
      (void)WriteJsonPredictResponse(r->row_format, r->inputs);
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    }
  }
  EXPECT_GT(ok, 0);  // some mutations stay valid
}

TEST(JsonTensorTest, LargeImageParsesQuickly) {
  // 1x3x224x224 float32, as a columnar request.
  const int64_t c = 3, h = 224, w = 224;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> values(static_cast<size_t>(c * h * w));
  for (float& v : values) v = dist(rng);
  std::string body = "{\"inputs\":[";
  size_t i = 0;
  for (int64_t ci = 0; ci < c; ++ci) {
    body += ci ? ",[" : "[";
    for (int64_t y = 0; y < h; ++y) {
      body += y ? ",[" : "[";
      for (int64_t x = 0; x < w; ++x) {
        if (x) body += ',';
        AppendJsonFloat(values[i++], &body);
      }
      body += ']';
    }
    body += ']';
  }
  body += "]}";
  // As a row: [1,3,224,224].
  body.insert(std::string("{\"inputs\":").size(), "[");
  body.insert(body.size() - 1, "]");

  const Signature sig = OneInput(DType::kFloat32);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<JsonPredictRequest> r = ParseJsonPredictRequest(body, sig);
  const auto parsed = std::chrono::steady_clock::now();
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<std::string> out = WriteJsonPredictResponse(true, r->inputs);
  const auto written = std::chrono::steady_clock::now();
  ASSERT_TRUE(out.ok()) << out.status();

  EXPECT_EQ(r->inputs[0].second.shape, (Shape{1, c, h, w}));
  EXPECT_EQ(Values<float>(r->inputs[0].second), values);  // shortest form round-trips exactly
  EXPECT_EQ(*out, "{\"predictions\":" + body.substr(10, body.size() - 11) + "}");
  const double parse_ms = std::chrono::duration<double, std::milli>(parsed - start).count();
  const double write_ms = std::chrono::duration<double, std::milli>(written - parsed).count();
  std::printf("1x3x224x224 float32: %zu bytes, parse %.2f ms, write %.2f ms\n", body.size(),
              parse_ms, write_ms);
  EXPECT_LT(parse_ms, 1000.0);  // generous: sanitizer builds are several times slower
}

}  // namespace
}  // namespace inferd::serving
