#include "http/AccessLog.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "json/JsonWriter.h"
#include "reactor/EventLoop.h"

namespace sbx::http {

std::string nowRfc3339Millis() {
  // Formatting the calendar part once per second keeps this cheap at
  // tens of thousands of lines per second.
  thread_local time_t cachedSec = -1;
  thread_local char cached[32];
  timeval tv;
  ::gettimeofday(&tv, nullptr);
  if (tv.tv_sec != cachedSec) {
    cachedSec = tv.tv_sec;
    tm t;
    ::gmtime_r(&tv.tv_sec, &t);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &t);
  }
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", cached, static_cast<int>(tv.tv_usec / 1000));
  return out;
}

FdAccessLog::FdAccessLog(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}

FdAccessLog::~FdAccessLog() { flush(); }

void FdAccessLog::log(const AccessLogEntry& e) {
  json::JsonWriter w(256);
  w.beginObject()
      .kv("ts", nowRfc3339Millis())
      .kv("level", "info")
      .kv("msg", "access")
      .kv("method", e.method)
      .kv("path", e.path)
      .kv("status", e.status)
      .kv("bytes", e.bytes)
      .kv("us", e.micros)
      .kv("request_id", e.requestId)
      .endObject();
  buf_ += w.str();
  buf_ += '\n';
  if (buf_.size() >= 64 * 1024) {
    flush();
  } else if (!flushScheduled_) {
    flushScheduled_ = true;
    loop_.defer([this, alive = std::weak_ptr<int>(alive_)] {
      if (alive.expired()) return;
      flushScheduled_ = false;
      flush();
    });
  }
}

void FdAccessLog::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // a broken log sink must not take the server down; drop lines
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
}

}  // namespace sbx::http
