// JSON string escaping shared by every JSON writer in inferd (REST responses, error bodies,
// admin pages), and UTF-8 checks for text that reaches JSON or protobuf strings. No allocation
// beyond the output string; nothing throws.
#ifndef INFERD_COMMON_JSON_ESCAPE_H_
#define INFERD_COMMON_JSON_ESCAPE_H_

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace inferd {

// Appends `s` as a JSON string literal (quotes included). Escapes '"', '\\' and control
// characters (\b \f \n \r \t, others as \u00XX); valid UTF-8 sequences are copied as they
// are, and every byte that is not part of one becomes \ufffd, so the output is valid JSON
// whatever `s` holds.
void AppendJsonString(std::string_view s, std::string* out);

// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 when s[i] does not start one
// (stray continuation bytes, overlong forms, surrogates, code points past U+10FFFF, truncation).
size_t Utf8SequenceLength(std::string_view s, size_t i);
bool IsValidUtf8(std::string_view s);
// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD: for
// protobuf string fields, which must hold UTF-8 (a client fails to parse the message otherwise).
// (absl::string_view: it takes absl::Status messages, which in Debian's Abseil are not
// std::string_view.)
std::string ValidUtf8(absl::string_view s);

// {"error": "<message>"}, the error body of TF Serving's REST API.
std::string JsonErrorBody(std::string_view message);

}  // namespace inferd

#endif  // INFERD_COMMON_JSON_ESCAPE_H_
