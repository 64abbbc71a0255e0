#pragma once
// SignalWatcher: delivers signals to the loop through a signalfd.
//
// The constructor blocks the signals in the calling thread; construct it in
// main() before any other thread starts so every thread inherits the mask.
// Loop-thread only.

#include <functional>
#include <initializer_list>

#include "reactor/EventLoop.h"

namespace sbx {

class SignalWatcher {
 public:
  SignalWatcher(EventLoop& loop, std::initializer_list<int> signals, std::function<void(int)> cb);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // SIGPIPE to SIG_IGN: a write to a closed socket is an EPIPE to handle,
  // not a process kill.
  static void ignoreSigpipe();

 private:
  void onReadable();

  Fd fd_;
  IoWatcher watcher_;
  std::function<void(int)> cb_;
};

}  // namespace sbx
