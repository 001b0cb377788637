#include "serving/json.h"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace inferd::serving {
namespace {

// This absl's string_view is its own type, not std::string_view.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

#if FLT_EVAL_METHOD == 0
inline constexpr bool kFastPathExact = true;
#else
inline constexpr bool kFastPathExact = false;  // excess precision breaks the exactness argument
#endif

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// m * 10^e10 for |e10| <= 22, in one IEEE operation on m as a double (exact up to 2^53) and an
// exact power of ten.
double ScaleByPow10(uint64_t m, int64_t e10) {
  const double d = static_cast<double>(m);
  return e10 < 0 ? d / kPow10[-e10] : d * kPow10[e10];
}

// The float32 nearest to (neg ? -1 : 1) * m * 10^e10, for a significand of at most 19 decimal
// digits (so m did not wrap), when that can be decided from one double operation; false when
// not (|e10| > 22, or the double lands too near a midpoint between two floats). Both operands
// of the operation are exact doubles when m <= 2^53 (Clinger's fast path: the quotient or
// product is the correctly rounded double), and m's own rounding adds at most half an ulp when
// it is larger: the double is then within about one ulp of the decimal, and rounding it to
// float gives the decimal's nearest float unless a float midpoint lies within that distance,
// which the low 29 bits (those below float's significand) show. |value| >= 1e-22 keeps floats
// away from their subnormals, where the 29-bit test would not hold.
bool DecimalToFloat(bool neg, uint64_t m, int64_t digits, int64_t e10, float* out) {
  if constexpr (!kFastPathExact) return false;
  if (digits > 19 || e10 < -22 || e10 > 22) return false;
  const double d = ScaleByPow10(m, e10);
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  const int64_t from_midpoint = static_cast<int64_t>(bits & 0x1FFFFFFF) - 0x10000000;
  const int64_t margin = m <= (uint64_t{1} << 53) ? 0 : 4;
  if (from_midpoint >= -margin && from_midpoint <= margin) return false;
  *out = static_cast<float>(neg ? -d : d);
  return true;
}

// Scans the decimal digits at p (up to end), appending their value to *m (modulo 2^64) and
// their count to *digits; returns the first non-digit. Eight bytes at a time where eight are
// readable: which of them are digits comes from bit tricks on the word, and their value from
// three multiplications, so a run of any length costs no branch per character (numbers of
// varying length are what a tensor's values are).
const char* ScanDigits(const char* p, const char* end, uint64_t* m, int64_t* digits) {
  static constexpr uint64_t kPow10Int[] = {1,      10,      100,      1000,     10000,
                                           100000, 1000000, 10000000, 100000000};
  uint64_t value = *m;
  int64_t count = *digits;
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    const uint64_t x = word ^ 0x3030303030303030;  // digit bytes become 0..9
    // A byte's high bit, set unless it is below 10: no carries between bytes (x & 0x7f plus
    // 0x76 stays below 0x100), and bytes at or above 0x80 are caught by the OR with x.
    const uint64_t non_digits =
        (((x & 0x7F7F7F7F7F7F7F7F) + 0x7676767676767676) | x) & 0x8080808080808080;
    const int n = non_digits == 0 ? 8 : __builtin_ctzll(non_digits) / 8;
    if (n > 0) {
      // The n digit bytes, moved to the top of the word (the rest zeros, as leading zeros),
      // combined as 2-digit, 4-digit, then 8-digit groups.
      uint64_t v = x << (8 * (8 - n));
      v = (v * 10) + (v >> 8);
      v = (((v & 0x000000FF000000FF) * (100 + (1000000ULL << 32))) +
           (((v >> 16) & 0x000000FF000000FF) * (1 + (10000ULL << 32)))) >>
          32;
      value = value * kPow10Int[n] + v;
      count += n;
      p += n;
    }
    if (n < 8) {
      *m = value;
      *digits = count;
      return p;
    }
  }
  for (; p != end && *p >= '0' && *p <= '9'; ++p, ++count) value = value * 10 + (*p - '0');
  *m = value;
  *digits = count;
  return p;
}

}  // namespace

bool JsonValue::IsBase64Object() const {
  if (!is_object() || size() != 1) return false;
  return (*members().begin()).key == "b64";
}

// Recursive-descent parser writing JsonDocument's node array. Recursion depth is bounded by
// kMaxJsonDepth.
class JsonParser {
 public:
  JsonParser(std::string_view text, JsonDocument* doc)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), doc_(doc) {}

  absl::Status Run() {
    SkipWhitespace();
    if (p_ == end_) {
      Error("empty document, expected a JSON value");
    } else if (ParseValue(0)) {
      SkipWhitespace();
      if (p_ != end_) Error(absl::StrCat("unexpected ", Describe(), " after the JSON value"));
    }
    return status_;
  }

 private:
  using Node = JsonDocument::Node;

  uint32_t Offset(const char* p) const { return static_cast<uint32_t>(p - begin_); }

  // The parse functions return false after recording the first error here; keeping
  // absl::Status off the hot path keeps them small.
  [[gnu::cold]] [[gnu::noinline]] bool ErrorAt(const char* p, std::string_view what) {
    status_ = absl::InvalidArgumentError(
        absl::StrCat("Invalid JSON at byte offset ", Offset(p), ": ", AV(what)));
    return false;
  }
  [[gnu::cold]] [[gnu::noinline]] bool Error(std::string_view what) { return ErrorAt(p_, what); }

  // "end of input", "character 'x'" or "byte 0x07" for the byte at p_.
  std::string Describe() const {
    if (p_ == end_) return "end of input";
    unsigned char c = static_cast<unsigned char>(*p_);
    if (c >= 0x20 && c < 0x7f) return absl::StrFormat("character '%c'", c);
    return absl::StrFormat("byte 0x%02x", c);
  }

  void SkipWhitespace() {
    const char* p = p_;
    while (p != end_ && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
    p_ = p;
  }

  uint32_t Push(JsonType type, uint8_t flags, const char* pos, uint32_t a, uint32_t b) {
    // Field stores into the vector's memory: building the node on the stack and copying it in
    // stalls on store forwarding.
    Node& n = doc_->nodes_.emplace_back();
    n.type = type;
    n.flags = flags;
    n.pos = Offset(pos);
    n.a = a;
    n.b = b;
    return static_cast<uint32_t>(doc_->nodes_.size() - 1);
  }

  bool ParseValue(int depth) {
    if (p_ == end_) return Error("unexpected end of input, expected a value");
    switch (*p_) {
      case '{':
        return ParseObject(depth + 1);
      case '[':
        return ParseArray(depth + 1);
      case '"':
        return ParseString();
      case 't':
        return ParseLiteral("true", JsonType::kBool, 1);
      case 'f':
        return ParseLiteral("false", JsonType::kBool, 0);
      case 'n':
        return ParseLiteral("null", JsonType::kNull, 0);
      default:
        if (*p_ == '-' || *p_ == 'N' || *p_ == 'I' || (*p_ >= '0' && *p_ <= '9')) {
          return ParseNumber();
        }
        return Error(absl::StrCat("unexpected ", Describe(), ", expected a value"));
    }
  }

  bool ParseLiteral(std::string_view word, JsonType type, uint8_t flags) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::memcmp(p_, word.data(), word.size()) != 0) {
      return Error(absl::StrCat("invalid literal, expected '", AV(word), "'"));
    }
    Push(type, flags, p_, 0, 0);
    p_ += word.size();
    return true;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  // JSON numbers, plus NaN, Inf, Infinity with an optional '-' (rapidjson kParseNanAndInfFlag).
  // Scans with a local pointer: stores through `char` may alias p_, which would defeat
  // register allocation in the digit loops.
  bool ParseNumber() {
    const char* const start = p_;
    const char* p = p_;
    const char* const end = end_;
    uint8_t flags = 0;
    if (*p == '-') ++p;
    if (p == end) return ErrorAt(p, "unexpected end of input in a number");
    if (*p == 'N' || *p == 'I') {
      std::string_view rest(p, end - p);
      if (rest.substr(0, 3) == "NaN") {
        p += 3;
      } else if (rest.substr(0, 8) == "Infinity") {
        p += 8;
      } else if (rest.substr(0, 3) == "Inf" && (rest.size() == 3 || rest[3] != 'i')) {
        p += 3;
      } else {
        return ErrorAt(start, "invalid literal, expected NaN, Infinity or -Infinity");
      }
      flags = JsonDocument::kNumSpecial;
    } else {
      // The value is gathered while scanning (significand m, its digit count, the decimal
      // exponent), so that float conversion needs no second pass over the text.
      uint64_t m = 0;
      int64_t digits = 0;  // 64 bits: a number may be as long as the document
      int64_t e10 = 0;
      if (*p == '0') {
        ++p;
      } else if (IsDigit(*p)) {
        p = ScanDigits(p, end, &m, &digits);
      } else {
        p_ = p;
        return Error(absl::StrCat("unexpected ", Describe(), " in a number, expected a digit"));
      }
      if (p != end && *p == '.') {
        ++p;
        if (p == end || !IsDigit(*p)) {
          p_ = p;
          return Error(absl::StrCat("unexpected ", Describe(), " after '.', expected a digit"));
        }
        const int64_t int_digits = digits;
        p = ScanDigits(p, end, &m, &digits);
        e10 -= digits - int_digits;
        flags = JsonDocument::kNumFraction;
      }
      if (p != end && (*p == 'e' || *p == 'E')) {
        ++p;
        bool exp_neg = false;
        if (p != end && (*p == '+' || *p == '-')) exp_neg = *p++ == '-';
        if (p == end || !IsDigit(*p)) {
          p_ = p;
          return Error(
              absl::StrCat("unexpected ", Describe(), " in an exponent, expected a digit"));
        }
        int e = 0;
        for (; p != end && IsDigit(*p); ++p) e = std::min(e * 10 + (*p - '0'), 100000);
        e10 += exp_neg ? -e : e;
        flags = JsonDocument::kNumFraction;
      }
      float f;
      if (DecimalToFloat(*start == '-', m, digits, e10, &f)) {
        uint32_t f_bits;
        std::memcpy(&f_bits, &f, sizeof(f_bits));
        p_ = p;
        Push(JsonType::kNumber, flags | JsonDocument::kNumFloat, start,
             static_cast<uint32_t>(p - start), f_bits);
        return true;
      }
    }
    p_ = p;
    Push(JsonType::kNumber, flags, start, static_cast<uint32_t>(p - start), 0);
    return true;
  }

  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Reads the 4 hex digits after "\u" at p_ (p_ points at 'u'); advances past them.
  bool ReadHex4(uint32_t* out) {
    const char* esc = p_ - 1;
    ++p_;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      if (p_ == end_) return ErrorAt(esc, "unterminated \\u escape");
      int h = HexValue(*p_);
      if (h < 0) {
        return ErrorAt(
            esc, absl::StrCat("invalid \\u escape: ", Describe(), " is not a hexadecimal digit"));
      }
      v = v * 16 + static_cast<uint32_t>(h);
    }
    *out = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // p_ at the opening quote. Strings without escapes are referenced in place; others are
  // decoded into the document's arena.
  bool ParseString() {
    const char* open = p_;
    const char* start = open + 1;
    const char* p = start;
    while (p != end_) {
      unsigned char c = static_cast<unsigned char>(*p);
      if (c == '"') {
        Push(JsonType::kString, 0, open, Offset(start), static_cast<uint32_t>(p - start));
        p_ = p + 1;
        return true;
      }
      if (c == '\\') break;
      if (c < 0x20) {
        p_ = p;
        return Error(absl::StrCat("unescaped control ", Describe(), " in a string"));
      }
      ++p;
    }
    p_ = p;
    if (p_ == end_) return ErrorAt(open, "unterminated string");

    std::string& arena = doc_->arena_;
    const size_t arena_start = arena.size();
    arena.append(start, p_ - start);
    while (true) {
      if (p_ == end_) return ErrorAt(open, "unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c < 0x20) return Error(absl::StrCat("unescaped control ", Describe(), " in a string"));
      if (c != '\\') {
        const char* run = p_;
        while (p_ != end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
          ++p_;
        }
        arena.append(run, p_ - run);
        continue;
      }
      const char* esc = p_;
      ++p_;
      if (p_ == end_) return ErrorAt(open, "unterminated string");
      switch (*p_) {
        case '"':
        case '\\':
        case '/':
          arena.push_back(*p_++);
          break;
        case 'b':
          arena.push_back('\b');
          ++p_;
          break;
        case 'f':
          arena.push_back('\f');
          ++p_;
          break;
        case 'n':
          arena.push_back('\n');
          ++p_;
          break;
        case 'r':
          arena.push_back('\r');
          ++p_;
          break;
        case 't':
          arena.push_back('\t');
          ++p_;
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return ErrorAt(esc,
                           absl::StrFormat("invalid \\u escape: lone low surrogate \\u%04X", cp));
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
              return ErrorAt(esc,
                             absl::StrFormat("invalid \\u escape: high surrogate \\u%04X is not "
                                             "followed by a \\u low surrogate",
                                             cp));
            }
            p_ += 1;
            uint32_t low = 0;
            if (!ReadHex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) {
              return ErrorAt(
                  esc, absl::StrFormat("invalid \\u escape: high surrogate \\u%04X is followed "
                                       "by \\u%04X, not a low surrogate",
                                       cp, low));
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, &arena);
          break;
        }
        default:
          return ErrorAt(
              esc, absl::StrCat("invalid escape: ", Describe(), " cannot follow '\\' in a string"));
      }
    }
    ++p_;  // closing quote
    Push(JsonType::kString, JsonDocument::kStrInArena, open, static_cast<uint32_t>(arena_start),
         static_cast<uint32_t>(arena.size() - arena_start));
    return true;
  }

  bool CheckDepth(int depth) {
    if (depth > kMaxJsonDepth) {
      return Error(absl::StrCat("nesting is deeper than ", kMaxJsonDepth, " levels"));
    }
    return true;
  }

  bool ParseArray(int depth) {
    if (!CheckDepth(depth)) return false;
    const uint32_t index = Push(JsonType::kArray, 0, p_, 0, 0);
    ++p_;
    uint32_t count = 0;
    SkipWhitespace();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
    } else {
      while (true) {
        if (!ParseValue(depth)) return false;
        ++count;
        SkipWhitespace();
        if (p_ != end_ && *p_ == ',') {
          ++p_;
          SkipWhitespace();
          continue;
        }
        if (p_ != end_ && *p_ == ']') {
          ++p_;
          break;
        }
        return Error(absl::StrCat("unexpected ", Describe(), " in a list, expected ',' or ']'"));
      }
    }
    Node& n = doc_->nodes_[index];
    n.a = count;
    n.b = static_cast<uint32_t>(doc_->nodes_.size());
    return true;
  }

  bool ParseObject(int depth) {
    if (!CheckDepth(depth)) return false;
    const uint32_t index = Push(JsonType::kObject, 0, p_, 0, 0);
    ++p_;
    uint32_t count = 0;
    SkipWhitespace();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
    } else {
      while (true) {
        if (p_ == end_ || *p_ != '"') {
          return Error(absl::StrCat("unexpected ", Describe(),
                                    " in an object, expected '\"' "
                                    "to start a member name"));
        }
        if (!ParseString()) return false;
        SkipWhitespace();
        if (p_ == end_ || *p_ != ':') {
          return Error(
              absl::StrCat("unexpected ", Describe(), " after a member name, expected ':'"));
        }
        ++p_;
        SkipWhitespace();
        if (!ParseValue(depth)) return false;
        ++count;
        SkipWhitespace();
        if (p_ != end_ && *p_ == ',') {
          ++p_;
          SkipWhitespace();
          continue;
        }
        if (p_ != end_ && *p_ == '}') {
          ++p_;
          break;
        }
        return Error(absl::StrCat("unexpected ", Describe(), " in an object, expected ',' or '}'"));
      }
    }
    Node& n = doc_->nodes_[index];
    n.a = count;
    n.b = static_cast<uint32_t>(doc_->nodes_.size());
    return true;
  }

  const char* const begin_;
  const char* p_;
  const char* const end_;
  JsonDocument* doc_;
  absl::Status status_;
};

absl::StatusOr<JsonDocument> JsonDocument::Parse(std::string_view text) {
  if (text.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Invalid JSON: document of ", text.size(), " bytes is too large"));
  }
  JsonDocument doc;
  doc.text_ = text;
  // Every value but the last takes at least two bytes ("0,"), so this is enough for any
  // document up to the cap: one allocation, no regrowth (a tensor of short numbers such as
  // [[0,1,...]] has a node per two bytes). Larger documents grow from there.
  constexpr size_t kMaxReservedNodes = size_t{1} << 16;
  doc.nodes_.reserve(std::min(text.size() / 2 + 2, kMaxReservedNodes));
  JsonParser parser(text, &doc);
  if (absl::Status s = parser.Run(); !s.ok()) return s;
  return doc;
}

// ---- Number conversion ----

namespace {

// For a decimal number text whose value is beyond double's range (from_chars said
// out_of_range): true if it is too large, false if too small (underflow).
bool MagnitudeIsLarge(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  // Decimal exponent of the leading significant digit, before the explicit exponent.
  int64_t mag = 0;
  bool seen_nonzero = false;
  int64_t int_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (text[i] != '0') seen_nonzero = true;
    if (seen_nonzero) ++int_digits;
  }
  if (seen_nonzero) {
    mag = int_digits - 1;
  } else if (i < text.size() && text[i] == '.') {
    ++i;
    int64_t zeros = 0;
    for (; i < text.size() && text[i] == '0'; ++i) ++zeros;
    mag = -(zeros + 1);
  }
  while (i < text.size() && text[i] != 'e' && text[i] != 'E') ++i;
  if (i < text.size()) {
    ++i;
    bool neg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) neg = text[i++] == '-';
    int64_t e = 0;
    for (; i < text.size(); ++i) {
      e = std::min<int64_t>(e * 10 + (text[i] - '0'), int64_t{1} << 40);
    }
    mag += neg ? -e : e;
  }
  return mag > 0;
}

template <typename T>
T SpecialValue(std::string_view text) {
  bool neg = text[0] == '-';
  char c = text[neg ? 1 : 0];
  if (c == 'N') return std::numeric_limits<T>::quiet_NaN();
  return neg ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
}

// Parses a finite decimal into double; kOutOfRange beyond double's range, +-0 on underflow.
JsonNumberStatus ParseDouble(std::string_view text, double* out) {
  double v;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc()) {
    *out = v;
    return JsonNumberStatus::kOk;
  }
  if (MagnitudeIsLarge(text)) return JsonNumberStatus::kOutOfRange;
  *out = text[0] == '-' ? -0.0 : 0.0;
  return JsonNumberStatus::kOk;
}

// Clinger's fast path for doubles: a decimal with at most 19 digits whose significand m fits in
// 53 bits and whose exponent is within +-22 is m * 10^e or m / 10^e with both operands exact, so
// one IEEE operation rounds it correctly. Returns false when it does not apply. `text` is a
// valid finite JSON number. (float32 values take this path, with a midpoint check, in the
// parser: DecimalToFloat.)
bool FastDouble(std::string_view text, double* out) {
  if constexpr (!kFastPathExact) return false;
  const char* p = text.data();
  const char* const end = p + text.size();
  const bool neg = *p == '-';
  if (neg) ++p;
  uint64_t m = 0;
  int64_t digits = 0;
  int64_t e10 = 0;
  p = ScanDigits(p, end, &m, &digits);
  if (p != end && *p == '.') {
    const int64_t int_digits = digits;
    p = ScanDigits(p + 1, end, &m, &digits);
    e10 -= digits - int_digits;
  }
  if (digits > 19) return false;  // m may have wrapped
  if (p != end) {                 // exponent
    ++p;
    bool exp_neg = false;
    if (*p == '+' || *p == '-') exp_neg = *p++ == '-';
    int e = 0;
    for (; p != end; ++p) {
      if (e > 1000) return false;
      e = e * 10 + (*p - '0');
    }
    e10 += exp_neg ? -e : e;
  }
  if (m > (uint64_t{1} << 53) || e10 < -22 || e10 > 22) return false;
  const double d = ScaleByPow10(m, e10);
  *out = neg ? -d : d;
  return true;
}

}  // namespace

template <typename T>
JsonNumberStatus JsonValue::GetNumber(T* out) const {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
  const JsonDocument::Node& n = doc_->nodes_[index_];
  const std::string_view text = doc_->text_.substr(n.pos, n.a);
  if constexpr (std::is_floating_point_v<T>) {
    if constexpr (std::is_same_v<T, float>) {
      if (n.flags & JsonDocument::kNumFloat) {
        std::memcpy(out, &n.b, sizeof(float));
        return JsonNumberStatus::kOk;
      }
    }
    if (n.flags & JsonDocument::kNumSpecial) {
      *out = SpecialValue<T>(text);
      return JsonNumberStatus::kOk;
    }
    // A float32 the parser could not decide from one double operation cannot be decided by
    // the fast path either: it goes to from_chars. Doubles try the fast path first, unless the
    // text is longer than this: then it has at least 16 digits and (unless it starts with
    // zeros) a significand beyond the fast path's 2^53.
    if constexpr (std::is_same_v<T, double>) {
      constexpr size_t kFastPathMaxLength = 18;
      if (text.size() <= kFastPathMaxLength && FastDouble(text, out)) {
        return JsonNumberStatus::kOk;
      }
    }
    T v;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc()) {
      *out = v;
      return JsonNumberStatus::kOk;
    }
    // Beyond T's range: float32 saturates like a cast from double; beyond double is an error.
    double d;
    JsonNumberStatus s = ParseDouble(text, &d);
    if (s == JsonNumberStatus::kOk) *out = static_cast<T>(d);
    return s;
  } else {
    if (n.flags & JsonDocument::kNumSpecial) return JsonNumberStatus::kNotInteger;
    if (!(n.flags & JsonDocument::kNumFraction)) {
      if constexpr (std::is_unsigned_v<T>) {
        if (text[0] == '-') {
          if (text.find_first_not_of('0', 1) != std::string_view::npos) {
            return JsonNumberStatus::kOutOfRange;
          }
          *out = 0;
          return JsonNumberStatus::kOk;
        }
      }
      T v;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc()) return JsonNumberStatus::kOutOfRange;
      *out = v;
      return JsonNumberStatus::kOk;
    }
    double d;
    JsonNumberStatus s = ParseDouble(text, &d);
    if (s != JsonNumberStatus::kOk) return s;
    if (d != std::trunc(d)) return JsonNumberStatus::kNotInteger;
    if (d == 0 && text.find_first_of("123456789") < text.find_first_of("eE")) {
      return JsonNumberStatus::kNotInteger;  // a nonzero value that underflowed to 0
    }
    // Exact bounds: min() is a power of two or small; max() + 1 is a power of two.
    constexpr double kMin = static_cast<double>(std::numeric_limits<T>::min());
    constexpr double kMaxPlusOne = static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2;
    if (d < kMin || d >= kMaxPlusOne) return JsonNumberStatus::kOutOfRange;
    *out = static_cast<T>(d);
    return JsonNumberStatus::kOk;
  }
}

template JsonNumberStatus JsonValue::GetNumber<float>(float*) const;
template JsonNumberStatus JsonValue::GetNumber<double>(double*) const;
template JsonNumberStatus JsonValue::GetNumber<int8_t>(int8_t*) const;
template JsonNumberStatus JsonValue::GetNumber<int16_t>(int16_t*) const;
template JsonNumberStatus JsonValue::GetNumber<int32_t>(int32_t*) const;
template JsonNumberStatus JsonValue::GetNumber<int64_t>(int64_t*) const;
template JsonNumberStatus JsonValue::GetNumber<uint8_t>(uint8_t*) const;
template JsonNumberStatus JsonValue::GetNumber<uint16_t>(uint16_t*) const;
template JsonNumberStatus JsonValue::GetNumber<uint32_t>(uint32_t*) const;
template JsonNumberStatus JsonValue::GetNumber<uint64_t>(uint64_t*) const;

// ---- Writers ----


namespace {

template <typename T>
void AppendFloating(T v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "Infinity" : "-Infinity");
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 64 bytes always suffice for the shortest form
  out->append(buf, static_cast<size_t>(end - buf));
  for (const char* p = buf; p != end; ++p) {
    if (*p == '.' || *p == 'e') return;
  }
  out->append(".0");
}

}  // namespace

void AppendJsonFloat(float v, std::string* out) { AppendFloating(v, out); }
void AppendJsonDouble(double v, std::string* out) { AppendFloating(v, out); }

void AppendBase64(std::string_view bytes, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  out->reserve(out->size() + (n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back(kAlphabet[v & 63]);
  }
  if (n - i == 1) {
    uint32_t v = uint32_t{p[i]} << 16;
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->append("==");
  } else if (n - i == 2) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out->push_back(kAlphabet[v >> 18]);
    out->push_back(kAlphabet[(v >> 12) & 63]);
    out->push_back(kAlphabet[(v >> 6) & 63]);
    out->push_back('=');
  }
}

}  // namespace inferd::serving
