#pragma once
// Netns: named network namespaces, one per sandbox, the way `ip netns`
// makes them: a new namespace bind-mounted onto <dir>/<name> so it outlives
// the thread that created it and every container of the sandbox can join it
// by path. Loopback is brought up at creation.
//
// Blocking (mount, thread spawn): call from WorkerPool jobs, never the loop.
// Thread-safe.

#include <functional>
#include <string>
#include <vector>

#include "base/Result.h"

namespace sbx::net {

class Netns {
 public:
  // `dir`: where namespaces are pinned ("/var/run/netns" by default, so
  // `ip netns` lists them).
  explicit Netns(std::string dir = "/var/run/netns");

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Creates namespace `name` with lo up. Error if it exists already.
  Result<std::string> create(const std::string& name);
  // Unmounts and removes it; a missing one is not an error.
  Status remove(const std::string& name);
  // True if <dir>/<name> is a pinned namespace.
  bool exists(const std::string& name) const;
  // Names in `dir` starting with `prefix` (for reconcile).
  std::vector<std::string> list(const std::string& prefix) const;

  // Runs `fn` on a fresh thread inside the namespace at `nsPath` and waits
  // for it (the calling thread's namespace never changes).
  static Status runIn(const std::string& nsPath, const std::function<Status()>& fn);

 private:
  std::string dir_;
};

}  // namespace sbx::net
