#include "reactor/WorkerPool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace sbx {

WorkerPool::WorkerPool(EventLoop& loop, Options options)
    : loop_(loop), options_(options), notifyFd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  loop_.assertInLoopThread();
  if (!notifyFd_) {
    std::perror("fatal: eventfd");
    std::abort();
  }
  if (options_.threads == 0) options_.threads = 1;
  notifyWatcher_ = loop_.watch(notifyFd_.get(), EPOLLIN, [this](uint32_t) { drainCompleted(); });
  // Workers start with every signal blocked so signals reach the loop's
  // signalfd (or the default action) and never interrupt a worker.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  threads_.reserve(options_.threads);
  for (size_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { workerMain(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

WorkerPool::~WorkerPool() { shutdown(); }

Result<WorkerPool::JobId> WorkerPool::submit(Work work, Done done, const char* tag) {
  loop_.assertInLoopThread();
  JobId id;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Error("worker pool is shut down", 503);
    if (queue_.size() >= options_.maxQueued) {
      return Error("worker queue full (" + std::to_string(queue_.size()) + " jobs)", 503);
    }
    id = nextId_++;
    queue_.push_back(Job{id, std::move(work), std::move(done), tag, JobStatus::Done});
  }
  workAvailable_.notify_one();
  return id;
}

bool WorkerPool::cancel(JobId id) {
  loop_.assertInLoopThread();
  Job job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = queue_.begin();
    while (it != queue_.end() && it->id != id) ++it;
    if (it == queue_.end()) return false;
    job = std::move(*it);
    queue_.erase(it);
  }
  // Not inline: the caller may be in the middle of a state change that the
  // done callback would observe half-made.
  auto done = std::make_shared<Done>(std::move(job.done));
  loop_.defer([done] { (*done)(JobStatus::Cancelled); });
  return true;
}

void WorkerPool::workerMain() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      workAvailable_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job.work();
    job.work = nullptr;  // release captures on the worker, not the loop
    bool wasEmpty;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      wasEmpty = completed_.empty();
      completed_.push_back(std::move(job));
    }
    // One eventfd write per batch: the loop drains the whole list.
    if (wasEmpty) {
      uint64_t one = 1;
      if (::write(notifyFd_.get(), &one, sizeof one) < 0 && errno != EAGAIN) {
        std::perror("fatal: eventfd write");
        std::abort();
      }
    }
  }
}

void WorkerPool::drainCompleted() {
  uint64_t n;
  while (::read(notifyFd_.get(), &n, sizeof n) > 0) {
  }
  std::vector<Job> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(completed_);
  }
  for (Job& job : batch) job.done(job.status);
}

void WorkerPool::shutdown() {
  if (shutDown_) return;
  loop_.assertInLoopThread();
  shutDown_ = true;
  std::deque<Job> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    cancelled.swap(queue_);
  }
  workAvailable_.notify_all();
  for (Job& job : cancelled) job.done(JobStatus::Cancelled);
  for (auto& t : threads_) t.join();
  drainCompleted();
  notifyWatcher_.reset();
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

}  // namespace sbx
