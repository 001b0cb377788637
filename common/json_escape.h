// JSON string escaping shared by every JSON writer in inferd (REST responses, error bodies,
// admin pages). No allocation beyond the output string; nothing throws.
#ifndef INFERD_COMMON_JSON_ESCAPE_H_
#define INFERD_COMMON_JSON_ESCAPE_H_

#include <string>
#include <string_view>

namespace inferd {

// Appends `s` as a JSON string literal (quotes included). Escapes '"', '\\' and control
// characters (\b \f \n \r \t, others as \u00XX); bytes >= 0x80 are copied as they are.
void AppendJsonString(std::string_view s, std::string* out);

// {"error": "<message>"}, the error body of TF Serving's REST API.
std::string JsonErrorBody(std::string_view message);

}  // namespace inferd

#endif  // INFERD_COMMON_JSON_ESCAPE_H_
