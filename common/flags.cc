#include "common/flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include <optional>

namespace inferd {

void FlagSet::Add(std::string name, Kind kind, void* target, std::string help, std::string def) {
  flags_.push_back(Flag{std::move(name), kind, target, std::move(help), std::move(def)});
}

void FlagSet::String(std::string name, std::string* value, std::string help) {
  Add(std::move(name), Kind::kString, value, std::move(help), "\"" + *value + "\"");
}
void FlagSet::Int64(std::string name, int64_t* value, std::string help) {
  Add(std::move(name), Kind::kInt64, value, std::move(help), absl::StrCat(*value));
}
void FlagSet::Int32(std::string name, int32_t* value, std::string help) {
  Add(std::move(name), Kind::kInt32, value, std::move(help), absl::StrCat(*value));
}
void FlagSet::Double(std::string name, double* value, std::string help) {
  Add(std::move(name), Kind::kDouble, value, std::move(help), absl::StrCat(*value));
}
void FlagSet::Bool(std::string name, bool* value, std::string help) {
  Add(std::move(name), Kind::kBool, value, std::move(help), *value ? "true" : "false");
}
void FlagSet::Ignored(std::string name, std::string help) {
  Add(std::move(name), Kind::kIgnored, nullptr, std::move(help), "");
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::WasSet(absl::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.set;
  }
  return false;
}

absl::Status FlagSet::Assign(Flag& flag, absl::string_view value) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --", flag.name, ": \"", value, "\" is not ", what));
  };
  switch (flag.kind) {
    case Kind::kString:
      *static_cast<std::string*>(flag.target) = std::string(value);
      break;
    case Kind::kInt64:
      if (!absl::SimpleAtoi(value, static_cast<int64_t*>(flag.target))) return bad("an integer");
      break;
    case Kind::kInt32:
      if (!absl::SimpleAtoi(value, static_cast<int32_t*>(flag.target))) {
        return bad("a 32-bit integer");
      }
      break;
    case Kind::kDouble:
      if (!absl::SimpleAtod(value, static_cast<double*>(flag.target))) return bad("a number");
      break;
    case Kind::kBool: {
      std::string v = absl::AsciiStrToLower(value);
      if (v == "true" || v == "1" || v == "yes") {
        *static_cast<bool*>(flag.target) = true;
      } else if (v == "false" || v == "0" || v == "no") {
        *static_cast<bool*>(flag.target) = false;
      } else {
        return bad("true or false");
      }
      break;
    }
    case Kind::kIgnored:
      warnings_.push_back(absl::StrCat("flag --", flag.name, " is accepted for TF Serving ",
                                       "compatibility and has no effect in inferd"));
      break;
  }
  flag.set = true;
  return absl::OkStatus();
}

absl::Status FlagSet::Parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.substr(0, 1) != "-" || arg == "-" || arg == "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\"; flags are written --name=value"));
    }
    arg.remove_prefix(arg.substr(0, 2) == "--" ? 2 : 1);
    absl::string_view name = arg;
    std::optional<absl::string_view> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "help" || name == "h") {
      help_requested_ = true;
      continue;
    }
    Flag* flag = Find(name);
    if (flag == nullptr && !value && name.substr(0, 2) == "no") {
      // --noflag for booleans, as gflags/absl accept.
      Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->kind == Kind::kBool) {
        *static_cast<bool*>(negated->target) = false;
        negated->set = true;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see ", program_, " --help)"));
    }
    if (!value) {
      if (flag->kind == Kind::kBool) {
        value = "true";
      } else if (flag->kind == Kind::kIgnored) {
        // An ignored flag may or may not take a value; only consume one that is not a flag.
        value = (i + 1 < argc && argv[i + 1][0] != '-') ? absl::string_view(argv[++i]) : "";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (absl::Status s = Assign(*flag, *value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", program_, " [--flag=value ...]\n\n", summary_,
                                 "\n\nflags:\n");
  for (const Flag& f : flags_) {
    if (f.kind == Kind::kIgnored) continue;
    const char* type = f.kind == Kind::kString   ? "string"
                       : f.kind == Kind::kBool   ? "bool"
                       : f.kind == Kind::kDouble ? "double"
                                                 : "int";
    absl::StrAppend(&out, "  --", f.name, " (", type, ", default ", f.default_text, ")\n      ",
                    f.help, "\n");
  }
  std::string ignored;
  for (const Flag& f : flags_) {
    if (f.kind == Kind::kIgnored) absl::StrAppend(&ignored, ignored.empty() ? "" : ", ", "--", f.name);
  }
  if (!ignored.empty()) {
    absl::StrAppend(&out, "\naccepted and ignored (TF Serving flags with no inferd meaning):\n  ",
                    ignored, "\n");
  }
  return out;
}

}  // namespace inferd
