// Command-line flags in TF Serving's style: --name=value, --name value, --bool, --bool=false.
// Each program declares its flags in one table with defaults taken from the bound variables, so
// --help always shows every flag with its real default. Flags other programs use that this one
// does not implement can be declared "ignored": they are accepted with a warning, so existing
// manifests run unchanged. Anything else unknown is an error (typos do not pass silently).
// Not thread-safe; use from main().
#ifndef INFERD_COMMON_FLAGS_H_
#define INFERD_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"

namespace inferd {

class FlagSet {
 public:
  FlagSet(std::string program, std::string summary)
      : program_(std::move(program)), summary_(std::move(summary)) {}

  // The variables must outlive Parse(); their current values are the defaults.
  void String(std::string name, std::string* value, std::string help);
  void Int64(std::string name, int64_t* value, std::string help);
  void Int32(std::string name, int32_t* value, std::string help);
  void Double(std::string name, double* value, std::string help);
  void Bool(std::string name, bool* value, std::string help);
  // Accepted (with or without a value) and ignored with a warning naming the flag.
  void Ignored(std::string name, std::string help);

  // Parses argv[1..]. Returns InvalidArgument naming the flag for unknown flags, missing or
  // malformed values, and positional arguments. "--help" sets help_requested().
  absl::Status Parse(int argc, const char* const* argv);
  bool help_requested() const { return help_requested_; }
  // Warnings for ignored flags that were given, one line each.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Which flags were given explicitly.
  bool WasSet(absl::string_view name) const;
  std::string Help() const;

 private:
  enum class Kind { kString, kInt64, kInt32, kDouble, kBool, kIgnored };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
    bool set = false;
  };
  void Add(std::string name, Kind kind, void* target, std::string help, std::string def);
  Flag* Find(absl::string_view name);
  absl::Status Assign(Flag& flag, absl::string_view value);

  std::string program_;
  std::string summary_;
  std::vector<Flag> flags_;
  std::vector<std::string> warnings_;
  bool help_requested_ = false;
};

}  // namespace inferd

#endif  // INFERD_COMMON_FLAGS_H_
