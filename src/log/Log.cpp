#include "log/Log.h"

#include <unistd.h>

#include "http/AccessLog.h"
#include "json/JsonWriter.h"

namespace sbx {

void logLine(std::string_view level, std::string_view msg, std::initializer_list<LogField> fields) {
  json::JsonWriter w(256);
  w.beginObject().kv("ts", http::nowRfc3339Millis()).kv("level", level).kv("msg", msg);
  for (const auto& [k, v] : fields) w.kv(k, v);
  w.endObject();
  std::string line = w.take();
  line += '\n';
  ssize_t n = ::write(2, line.data(), line.size());
  (void)n;  // nowhere to report a failed log write
}

}  // namespace sbx
