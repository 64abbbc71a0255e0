#pragma once
// Structured logging: one JSON object per line on stderr,
//   {"ts":"...","level":"info","msg":"listening","addr":":8080"}
// Thread-safe (one write() per line, which the kernel keeps whole for
// lines under PIPE_BUF on pipes and for regular files in O_APPEND).

#include <initializer_list>
#include <string_view>
#include <utility>

namespace sbx {

using LogField = std::pair<std::string_view, std::string_view>;

void logLine(std::string_view level, std::string_view msg, std::initializer_list<LogField> fields = {});
inline void logInfo(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  logLine("info", msg, fields);
}
inline void logWarn(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  logLine("warn", msg, fields);
}
inline void logError(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  logLine("error", msg, fields);
}

}  // namespace sbx
