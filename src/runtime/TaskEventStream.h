#pragma once
// TaskEventStream: one long-lived subscription to containerd's task events
// (/tasks/exit, /tasks/oom, ...) on a thread of its own — not a pool worker,
// since the stream blocks for containerd's whole life. Events are handed to
// the loop with EventLoop::post. When the stream breaks (containerd
// restarted), it reconnects with a capped backoff and tells the loop, so the
// owner can resynchronise task states it may have missed.
//
// start()/stop() and the destructor are loop-thread only; callbacks run on
// the loop thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "runtime/ContainerdClient.h"

namespace sbx {
class EventLoop;
}

namespace sbx::runtime {

class TaskEventStream {
 public:
  using OnEvent = std::function<void(const TaskEvent&)>;
  // Called on the loop after a (re)connection whose predecessor failed:
  // events may have been missed in between.
  using OnReconnect = std::function<void(const std::string& lastError)>;

  TaskEventStream(EventLoop& loop, ContainerdClient& client, OnEvent onEvent,
                  OnReconnect onReconnect);
  ~TaskEventStream();
  TaskEventStream(const TaskEventStream&) = delete;
  TaskEventStream& operator=(const TaskEventStream&) = delete;

  void start();
  // Cancels the stream and joins the thread. Idempotent.
  void stop();

  // Streams opened so far (1 + reconnects). Thread-safe.
  uint64_t connects() const { return connects_.load(); }

 private:
  void run();

  EventLoop& loop_;
  ContainerdClient& client_;
  OnEvent onEvent_;
  OnReconnect onReconnect_;
  StreamCanceller canceller_;
  std::thread thread_;
  std::atomic<uint64_t> connects_{0};
  // Shared with posted closures so a closure that runs after stop() is a no-op.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace sbx::runtime
