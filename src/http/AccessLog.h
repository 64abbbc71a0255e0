#pragma once
// AccessLog: one JSON line per request:
//   {"ts":"2026-11-28T17:00:00.123Z","level":"info","msg":"access","method":"GET",
//    "path":"/healthz","status":200,"bytes":11,"us":42,"request_id":"..."}
// Lines are buffered and written once per loop turn (and when the buffer
// passes 64 KiB), so logging costs one write() per turn, not per request.
//
// Loop-thread only.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sbx {
class EventLoop;
}

namespace sbx::http {

struct AccessLogEntry {
  std::string_view method;
  std::string_view path;
  int status = 0;
  uint64_t bytes = 0;  // response body bytes
  uint64_t micros = 0;
  std::string_view requestId;
};

class AccessLog {
 public:
  virtual ~AccessLog() = default;
  virtual void log(const AccessLogEntry& e) = 0;
};

// Writes to a file descriptor (not owned), stderr by default.
class FdAccessLog final : public AccessLog {
 public:
  FdAccessLog(EventLoop& loop, int fd = 2);
  ~FdAccessLog() override;
  void log(const AccessLogEntry& e) override;
  void flush();

 private:
  EventLoop& loop_;
  int fd_;
  std::string buf_;
  bool flushScheduled_ = false;
  // Guards the deferred flush against the log dying first.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// "2026-11-28T17:00:00.123Z" for the current wall-clock time.
std::string nowRfc3339Millis();

}  // namespace sbx::http
