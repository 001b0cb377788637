#include "models/executor.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace inferd::models {

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

absl::StatusOr<Precision> ParsePrecision(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "fp16") return Precision::kFp16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision \"", std::string(name), "\" (fp32, tf32 or fp16)"));
}

std::string Placement::ToString() const {
  return is_cpu() ? kind : absl::StrCat(kind, ":", ordinal);
}

absl::StatusOr<Placement> ParsePlacement(std::string_view spec) {
  Placement p;
  const size_t colon = spec.find(':');
  p.kind = std::string(spec.substr(0, colon));
  bool word = !p.kind.empty();
  for (char c : p.kind) word = word && std::islower(static_cast<unsigned char>(c));
  if (!word) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad device \"", std::string(spec), "\": expected cpu, KIND or KIND:N (e.g. cuda:0)"));
  }
  if (colon != std::string_view::npos) {
    const std::string n(spec.substr(colon + 1));
    if (p.kind == "cpu" || !absl::SimpleAtoi(n, &p.ordinal) || p.ordinal < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad device \"", std::string(spec), "\": the ordinal must be an integer >= 0"));
    }
  }
  return p;
}

void ExecutorTable::Register(std::string kind, ExecutorFactory factory) {
  entries_.emplace_back(std::move(kind), factory);
}

ExecutorFactory ExecutorTable::Find(std::string_view kind) const {
  for (const auto& [k, f] : entries_) {
    if (k == kind) return f;
  }
  return nullptr;
}

std::vector<std::string> ExecutorTable::Kinds() const {
  std::vector<std::string> out;
  for (const auto& [k, f] : entries_) out.push_back(k);
  return out;
}

const ExecutorTable& BuiltInExecutors() {
  static const ExecutorTable* table = [] {
    auto* t = new ExecutorTable;
    RegisterBuiltInExecutors(*t);
    return t;
  }();
  return *table;
}

}  // namespace inferd::models
