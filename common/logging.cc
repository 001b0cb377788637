#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace inferd {
namespace {
std::atomic<int> min_severity{static_cast<int>(LogSeverity::kInfo)};
}  // namespace

void SetMinLogSeverity(LogSeverity severity) { min_severity = static_cast<int>(severity); }

bool LogEnabled(LogSeverity severity) { return static_cast<int>(severity) >= min_severity; }

void WriteLogRecord(LogSeverity severity, std::string_view message) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
      1000);
  std::tm utc;
  gmtime_r(&seconds, &utc);
  char prefix[64];
  const char letter = severity == LogSeverity::kInfo      ? 'I'
                      : severity == LogSeverity::kWarning ? 'W'
                                                          : 'E';
  int n = std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %c ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                        utc.tm_min, utc.tm_sec, millis, letter);
  std::string line(prefix, n);
  line.append(message);
  line.push_back('\n');
  // One write per record so lines from different threads do not interleave.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t w = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
}

}  // namespace inferd
