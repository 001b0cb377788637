// One-line log records on stderr: "2026-11-22T10:00:00.123Z I loader] message".
// Thread-safe: each record is written with a single write(2).
//
//   INFERD_LOG(INFO) << "loaded " << name << " version " << v << " in " << ms << " ms";
#ifndef INFERD_COMMON_LOGGING_H_
#define INFERD_COMMON_LOGGING_H_

#include <sstream>
#include <string>
#include <string_view>

namespace inferd {

enum class LogSeverity { kInfo, kWarning, kError };

// Writes one record. Messages at a severity below the threshold are dropped.
void WriteLogRecord(LogSeverity severity, std::string_view message);
// Default kInfo; tests and benchmarks may raise it.
void SetMinLogSeverity(LogSeverity severity);
bool LogEnabled(LogSeverity severity);

namespace logging_internal {
class LogLine {
 public:
  explicit LogLine(LogSeverity severity) : severity_(severity) {}
  ~LogLine() { WriteLogRecord(severity_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};
// Turns the stream expression into void so the macro is one expression (no dangling else when
// used in an unbraced if). `&` binds looser than `<<`.
struct LogVoidify {
  void operator&(std::ostream&) {}
};
}  // namespace logging_internal

}  // namespace inferd

#define INFERD_LOG_SEVERITY_INFO ::inferd::LogSeverity::kInfo
#define INFERD_LOG_SEVERITY_WARNING ::inferd::LogSeverity::kWarning
#define INFERD_LOG_SEVERITY_ERROR ::inferd::LogSeverity::kError
#define INFERD_LOG(severity)                                     \
  !::inferd::LogEnabled(INFERD_LOG_SEVERITY_##severity)          \
      ? (void)0                                                  \
      : ::inferd::logging_internal::LogVoidify() &               \
            ::inferd::logging_internal::LogLine(INFERD_LOG_SEVERITY_##severity).stream()

#endif  // INFERD_COMMON_LOGGING_H_
