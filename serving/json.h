// A small, fast JSON reader and writer helpers for the REST API.
//
// JsonDocument::Parse reads the full JSON grammar (RFC 8259) plus the non-finite literals that
// TF Serving's rapidjson parser accepts (kParseNanAndInfFlag): NaN, Infinity, -Infinity, and
// rapidjson's spellings Inf, -Inf and -NaN. The result is a flat, pre-order array of 16-byte nodes
// (one allocation for the whole document, none per value). Numbers keep their source text and
// are converted on demand straight into the caller's type, correctly rounded (an exact fast path
// for short decimals, else std::from_chars), so a float32 value is never rounded twice. Nesting is
// limited to kMaxJsonDepth, trailing non-whitespace is an error, and every error is an
// InvalidArgument naming the problem and its byte offset. String bytes are not checked for UTF-8
// validity (like rapidjson's default); \u escapes, including surrogate pairs, are decoded to UTF-8.
// Nothing here throws.
#ifndef INFERD_SERVING_JSON_H_
#define INFERD_SERVING_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_escape.h"

namespace inferd::serving {

// Containers nested deeper than this are rejected, so hostile input cannot exhaust the stack.
inline constexpr int kMaxJsonDepth = 100;

enum class JsonType : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

// Outcome of converting a JSON number to a C++ arithmetic type.
enum class JsonNumberStatus {
  kOk,
  kNotInteger,  // an integer type was asked for and the value has a fraction, or is NaN/inf
  kOutOfRange,  // outside the type's range (or, for float/double, beyond double's range)
};

class JsonDocument;

// A view of one value inside a JsonDocument. Cheap to copy; valid while the document lives and
// is not moved. Accessors for one type must only be called on values of that type.
class JsonValue {
 public:
  JsonType type() const;
  bool is_null() const { return type() == JsonType::kNull; }
  bool is_bool() const { return type() == JsonType::kBool; }
  bool is_number() const { return type() == JsonType::kNumber; }
  bool is_string() const { return type() == JsonType::kString; }
  bool is_array() const { return type() == JsonType::kArray; }
  bool is_object() const { return type() == JsonType::kObject; }

  // Byte offset of the value's first character in the parsed text.
  size_t offset() const;

  bool bool_value() const;
  // Decoded bytes of a string value (escapes resolved).
  std::string_view string_value() const;
  // Source text of a number: "-1.5e3", "7", "NaN", "-Infinity", ...
  std::string_view number_text() const;
  // Converts a number to T (float, double, or a signed/unsigned 8..64-bit integer). Integer types
  // take integral values, also when written with a fraction or exponent ("3.0", "1e2"); floats
  // take any finite value within double's range (float32 overflow gives +-inf, underflow 0) and
  // the non-finite literals. `*out` is written only on kOk.
  template <typename T>
  JsonNumberStatus GetNumber(T* out) const;

  // Number of elements of an array or members of an object.
  size_t size() const;

  class ArrayIterator;
  class ObjectIterator;
  struct Member;
  template <typename It>
  struct Range {
    It b, e;
    It begin() const { return b; }
    It end() const { return e; }
  };
  // The elements of an array, in order.
  Range<ArrayIterator> elements() const;
  // The members of an object, in document order (duplicate keys are kept).
  Range<ObjectIterator> members() const;
  // First element of a non-empty array.
  JsonValue front() const;
  // True for {"b64": ...}: an object whose only member is named "b64" (TF Serving's test).
  bool IsBase64Object() const;

 private:
  friend class JsonDocument;
  JsonValue(const JsonDocument* doc, uint32_t index) : doc_(doc), index_(index) {}
  const JsonDocument* doc_;
  uint32_t index_;
};

struct JsonValue::Member {
  std::string_view key;
  JsonValue value;
};

// A parsed document. Holds a view of the text it was parsed from: the text must outlive it.
// Immutable after Parse(); concurrent reads are safe. Movable, not copyable.
class JsonDocument {
 public:
  static absl::StatusOr<JsonDocument> Parse(std::string_view text);

  JsonDocument(JsonDocument&&) = default;
  JsonDocument& operator=(JsonDocument&&) = default;
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;

  JsonValue root() const { return JsonValue(this, 0); }
  // Total number of values (nodes), object keys included.
  size_t node_count() const { return nodes_.size(); }

 private:
  friend class JsonValue;
  friend class JsonParser;

  // Number node flags.
  static constexpr uint8_t kNumFraction = 1;  // has '.', 'e' or 'E'
  static constexpr uint8_t kNumSpecial = 2;   // NaN / Inf / Infinity, possibly with '-'
  static constexpr uint8_t kNumFloat = 4;     // b holds the value as float32, correctly rounded
  // String node flag: the bytes are in arena_ (escapes were decoded), not in text_.
  static constexpr uint8_t kStrInArena = 1;

  struct Node {
    JsonType type;
    uint8_t flags;  // bool: value; number: kNum*; string: kStrInArena
    uint32_t pos;   // byte offset of the value in text_
    uint32_t a;     // number: text length; string: data offset; array/object: element count
    uint32_t b;     // string: length; array/object: index one past the last node of the subtree;
                    // number with kNumFloat: the float32's bits
  };

  JsonDocument() = default;
  // Index of the node after the subtree rooted at `i`.
  uint32_t Next(uint32_t i) const {
    const Node& n = nodes_[i];
    return n.type == JsonType::kArray || n.type == JsonType::kObject ? n.b : i + 1;
  }

  std::string_view text_;
  std::vector<Node> nodes_;
  std::string arena_;  // decoded strings that contained escapes
};

class JsonValue::ArrayIterator {
 public:
  JsonValue operator*() const { return JsonValue(doc_, index_); }
  ArrayIterator& operator++() {
    index_ = doc_->Next(index_);
    return *this;
  }
  bool operator!=(const ArrayIterator& o) const { return index_ != o.index_; }
  bool operator==(const ArrayIterator& o) const { return index_ == o.index_; }

 private:
  friend class JsonValue;
  ArrayIterator(const JsonDocument* doc, uint32_t index) : doc_(doc), index_(index) {}
  const JsonDocument* doc_;
  uint32_t index_;
};

class JsonValue::ObjectIterator {
 public:
  // Key at index_, value at index_ + 1.
  Member operator*() const {
    return Member{JsonValue(doc_, index_).string_value(), JsonValue(doc_, index_ + 1)};
  }
  ObjectIterator& operator++() {
    index_ = doc_->Next(index_ + 1);
    return *this;
  }
  bool operator!=(const ObjectIterator& o) const { return index_ != o.index_; }
  bool operator==(const ObjectIterator& o) const { return index_ == o.index_; }

 private:
  friend class JsonValue;
  ObjectIterator(const JsonDocument* doc, uint32_t index) : doc_(doc), index_(index) {}
  const JsonDocument* doc_;
  uint32_t index_;
};

inline JsonType JsonValue::type() const { return doc_->nodes_[index_].type; }
inline size_t JsonValue::offset() const { return doc_->nodes_[index_].pos; }
inline bool JsonValue::bool_value() const { return doc_->nodes_[index_].flags != 0; }
inline size_t JsonValue::size() const { return doc_->nodes_[index_].a; }
inline std::string_view JsonValue::number_text() const {
  const JsonDocument::Node& n = doc_->nodes_[index_];
  return doc_->text_.substr(n.pos, n.a);
}
inline std::string_view JsonValue::string_value() const {
  const JsonDocument::Node& n = doc_->nodes_[index_];
  std::string_view src =
      (n.flags & JsonDocument::kStrInArena) ? std::string_view(doc_->arena_) : doc_->text_;
  return src.substr(n.a, n.b);
}
inline JsonValue JsonValue::front() const { return JsonValue(doc_, index_ + 1); }
inline JsonValue::Range<JsonValue::ArrayIterator> JsonValue::elements() const {
  return {ArrayIterator(doc_, index_ + 1), ArrayIterator(doc_, doc_->nodes_[index_].b)};
}
inline JsonValue::Range<JsonValue::ObjectIterator> JsonValue::members() const {
  return {ObjectIterator(doc_, index_ + 1), ObjectIterator(doc_, doc_->nodes_[index_].b)};
}

// ---- Writer helpers: append compact JSON text to `out`. ----

// Shortest text that round-trips through the type, with ".0" added when it would otherwise read
// as an integer ("1.0", "-0.0"; "1e+20" stays). NaN, Infinity and -Infinity for non-finite values.
void AppendJsonFloat(float v, std::string* out);
void AppendJsonDouble(double v, std::string* out);
// Standard base64 (with padding) of `bytes`, without quotes.
void AppendBase64(std::string_view bytes, std::string* out);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_JSON_H_
