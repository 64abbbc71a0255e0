#include "reactor/SignalWatcher.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <cstdio>
#include <cstdlib>

namespace sbx {

SignalWatcher::SignalWatcher(EventLoop& loop, std::initializer_list<int> signals,
                             std::function<void(int)> cb)
    : cb_(std::move(cb)) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  fd_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd_) {
    std::perror("fatal: signalfd");
    std::abort();
  }
  watcher_ = loop.watch(fd_.get(), EPOLLIN, [this](uint32_t) { onReadable(); });
}

SignalWatcher::~SignalWatcher() { watcher_.reset(); }

void SignalWatcher::onReadable() {
  signalfd_siginfo info;
  while (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    cb_(static_cast<int>(info.ssi_signo));
  }
}

void SignalWatcher::ignoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }

}  // namespace sbx
