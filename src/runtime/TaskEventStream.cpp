#include "runtime/TaskEventStream.h"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>

#include "reactor/EventLoop.h"

namespace sbx::runtime {

TaskEventStream::TaskEventStream(EventLoop& loop, ContainerdClient& client, OnEvent onEvent,
                                 OnReconnect onReconnect)
    : loop_(loop),
      client_(client),
      onEvent_(std::move(onEvent)),
      onReconnect_(std::move(onReconnect)) {}

TaskEventStream::~TaskEventStream() { stop(); }

void TaskEventStream::start() {
  loop_.assertInLoopThread();
  if (thread_.joinable()) return;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void TaskEventStream::stop() {
  alive_->store(false);
  canceller_.cancel();
  if (thread_.joinable()) thread_.join();
}

void TaskEventStream::run() {
  using namespace std::chrono_literals;
  auto backoff = 100ms;
  std::string lastError;
  auto alive = alive_;
  while (!canceller_.cancelled()) {
    connects_.fetch_add(1);
    if (!lastError.empty()) {
      loop_.post([this, alive, err = lastError] {
        if (alive->load() && onReconnect_) onReconnect_(err);
      });
    }
    bool gotEvent = false;
    Status st = client_.subscribeTaskEvents(
        [&](const TaskEvent& ev) {
          gotEvent = true;
          loop_.post([this, alive, ev] {
            if (alive->load()) onEvent_(ev);
          });
        },
        canceller_);
    if (canceller_.cancelled()) break;
    lastError = st.ok() ? "stream ended" : st.message();
    if (gotEvent) backoff = 100ms;
    // Wait before reconnecting, but wake at once on stop(): sleep in small
    // slices checking the canceller (containerd restarts take ~1 s).
    auto until = std::chrono::steady_clock::now() + backoff;
    while (!canceller_.cancelled() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(20ms);
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2000ms);
  }
}

}  // namespace sbx::runtime
