#pragma once
// SandboxStore: one directory per sandbox under <state_dir>/sandboxes/<id>/,
// holding state.json (written atomically: temporary file, fsync, rename,
// fsync of the directory) and the containers' logs/.
//
// The file operations block (fsync): SandboxStore's methods are for worker
// threads. StatePersister is the loop-side front: it coalesces the writes of
// each sandbox so at most one is in flight and the last state always wins.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/Result.h"
#include "node/SandboxState.h"

namespace sbx {
class WorkerPool;
}

namespace sbx::node {

class SandboxStore {
 public:
  explicit SandboxStore(std::string sandboxesDir);

  const std::string& dir() const { return dir_; }
  std::string sandboxDir(const std::string& id) const { return dir_ + "/" + id; }
  std::string logPath(const std::string& id, const std::string& container) const {
    return sandboxDir(id) + "/logs/" + container + ".log";
  }

  // Creates the sandboxes directory (0700).
  Status init();
  // Creates <id>/ and <id>/logs/.
  Status prepare(const std::string& id);
  // Atomically replaces <id>/state.json with `contents`.
  Status write(const std::string& id, const std::string& contents);
  Result<SandboxState> read(const std::string& id);
  // Every sandbox directory's state; unreadable files are reported in
  // `problems` ("<id>: <why>") and skipped, never fatal.
  std::vector<SandboxState> loadAll(std::vector<std::string>& problems);
  // Ids of the directories present (with or without a state file).
  std::vector<std::string> listIds();
  // Whether <id>/state.json exists.
  bool hasState(const std::string& id) const;
  // Removes <id>/ entirely (state and logs). Missing is fine.
  Status remove(const std::string& id);

 private:
  std::string dir_;
};

// Loop-thread only.
class StatePersister {
 public:
  StatePersister(SandboxStore& store, WorkerPool& pool);

  // Schedules a write of `state`. If one is in flight for this sandbox, the
  // newest state is written after it (intermediate ones are skipped). `done`
  // (optional) runs on the loop once a write covering this state finished.
  void persist(const SandboxState& state, std::function<void(Status)> done = nullptr);
  struct Loaded {
    std::vector<SandboxState> states;
    std::vector<std::string> problems;  // unreadable state files, "<id>: <why>"
  };
  // At start: creates the sandboxes directory and reads every state file on
  // the pool; `done` runs on the loop (nullopt: cancelled). Error if the
  // pool refused the job.
  Status loadAll(std::function<void(std::optional<Loaded>)> done);
  // Schedules removal of the sandbox's directory after any write in flight.
  void erase(const std::string& id, std::function<void(Status)> done = nullptr);

  size_t inFlight() const { return entries_.size(); }

 private:
  struct Entry {
    bool busy = false;
    bool hasPending = false;
    std::string pending;  // encoded state to write next
    bool eraseRequested = false;
    std::vector<std::function<void(Status)>> waitingPending;
    std::vector<std::function<void(Status)>> waitingCurrent;
  };
  void kick(const std::string& id);

  SandboxStore& store_;
  WorkerPool& pool_;
  std::map<std::string, Entry> entries_;
};

}  // namespace sbx::node
