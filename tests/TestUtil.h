#pragma once
// Helpers shared by the unit tests: waiting on conditions, not sleeping.

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "reactor/EventLoop.h"

namespace sbx::test {

// Runs loop turns until `done()` or `timeout` of real time passes. Returns
// done(). Never sleeps: each turn blocks in epoll for at most 10 ms.
inline bool runUntil(EventLoop& loop, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    loop.runOnce(std::chrono::milliseconds(10));
  }
  return true;
}

// A directory of the test's own, /tmp/<tag>.XXXXXX, removed with everything
// in it when the object goes.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag = "sbx-test") {
    std::string tmpl = "/tmp/" + tag + ".XXXXXX";
    path = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace sbx::test
