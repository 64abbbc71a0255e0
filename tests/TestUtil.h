#pragma once
// Helpers shared by the unit tests: waiting on conditions, not sleeping.

#include <chrono>
#include <functional>

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

}  // namespace sbx::test
