#include "balancer/model_routing.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace inferd::balancer {
namespace {

// A bounds-checked reader of protobuf wire format.
class Wire {
 public:
  explicit Wire(absl::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  bool done() const { return p_ == end_; }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && p_ < end_; shift += 7) {
      const uint8_t b = static_cast<uint8_t>(*p_++);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Bytes(absl::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > static_cast<uint64_t>(end_ - p_)) return false;
    *out = absl::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool Skip(uint32_t wire_type) {
    uint64_t v;
    absl::string_view s;
    switch (wire_type) {
      case 0:
        return Varint(&v);
      case 1:
        return Advance(8);
      case 2:
        return Bytes(&s);
      case 5:
        return Advance(4);
      default:
        return false;  // groups are not used by these messages
    }
  }

 private:
  bool Advance(size_t n) {
    if (n > static_cast<size_t>(end_ - p_)) return false;
    p_ += n;
    return true;
  }
  const char* p_;
  const char* end_;
};

// The first occurrence of field `number` (length-delimited) of a serialized message. Fields
// after it are not looked at, so `message` may be a prefix of the whole message.
bool FindBytesField(absl::string_view message, uint32_t number, absl::string_view* out) {
  Wire w(message);
  while (!w.done()) {
    uint64_t tag;
    if (!w.Varint(&tag) || (tag >> 3) == 0) return false;
    const uint32_t field = static_cast<uint32_t>(tag >> 3), type = tag & 7;
    if (field == number && type == 2) return w.Bytes(out);
    if (!w.Skip(type)) return false;
  }
  return false;
}

}  // namespace

std::optional<ModelRequirement> RequirementFromBytes(absl::string_view bytes) {
  absl::string_view spec;
  if (!FindBytesField(bytes, 1, &spec)) return std::nullopt;
  ModelRequirement need;
  Wire w(spec);
  while (!w.done()) {
    uint64_t tag;
    if (!w.Varint(&tag) || (tag >> 3) == 0) return std::nullopt;
    const uint32_t field = static_cast<uint32_t>(tag >> 3), type = tag & 7;
    absl::string_view value;
    if (field == 1 && type == 2) {  // name
      if (!w.Bytes(&value)) return std::nullopt;
      need.model = std::string(value);
    } else if (field == 2 && type == 2) {  // version: google.protobuf.Int64Value
      if (!w.Bytes(&value)) return std::nullopt;
      Wire v(value);
      int64_t version = 0;
      while (!v.done()) {
        uint64_t t, x;
        if (!v.Varint(&t)) return std::nullopt;
        if ((t >> 3) == 1 && (t & 7) == 0) {
          if (!v.Varint(&x)) return std::nullopt;
          version = static_cast<int64_t>(x);
        } else if (!v.Skip(t & 7)) {
          return std::nullopt;
        }
      }
      need.version = version;
      need.label.reset();  // oneof: the last one set wins
    } else if (field == 4 && type == 2) {  // version_label
      if (!w.Bytes(&value)) return std::nullopt;
      need.label = std::string(value);
      need.version.reset();
    } else if (!w.Skip(type)) {
      return std::nullopt;
    }
  }
  if (need.model.empty()) return std::nullopt;
  return need;
}

std::optional<ModelRequirement> RequirementFromGrpc(absl::string_view method,
                                                    absl::string_view request_bytes) {
  static const char* const kWithSpec[] = {
      "/tensorflow.serving.PredictionService/Predict",
      "/tensorflow.serving.PredictionService/Classify",
      "/tensorflow.serving.PredictionService/Regress",
      "/tensorflow.serving.PredictionService/GetModelMetadata",
      "/tensorflow.serving.ModelService/GetModelStatus"};
  for (const char* m : kWithSpec) {
    if (method == m) return RequirementFromBytes(request_bytes);
  }
  return std::nullopt;
}

std::optional<ModelRequirement> RequirementFromRestTarget(absl::string_view target) {
  target = target.substr(0, target.find('?'));
  if (!absl::ConsumePrefix(&target, "/v1/models/")) return std::nullopt;
  ModelRequirement need;
  const size_t end = target.find_first_of("/:");
  need.model = std::string(target.substr(0, end));
  if (need.model.empty()) return std::nullopt;
  target = end == absl::string_view::npos ? absl::string_view() : target.substr(end);
  auto segment = [&](absl::string_view prefix, std::string* value) {
    if (!absl::ConsumePrefix(&target, prefix)) return false;
    const size_t e = target.find_first_of("/:");
    *value = std::string(target.substr(0, e));
    return true;
  };
  std::string value;
  if (segment("/versions/", &value)) {
    int64_t v;
    if (absl::SimpleAtoi(value, &v)) need.version = v;
  } else if (segment("/labels/", &value)) {
    if (!value.empty()) need.label = value;
  }
  return need;
}

bool Satisfies(const ModelAvailability& have, const ModelRequirement& need) {
  if (need.version) {
    auto it = have.versions.find(need.model);
    return it != have.versions.end() && it->second.count(*need.version) > 0;
  }
  if (need.label) return have.labels.count({need.model, *need.label}) > 0;
  return have.versions.count(need.model) > 0;
}

}  // namespace inferd::balancer
