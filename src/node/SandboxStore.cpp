#include "node/SandboxStore.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "reactor/Fd.h"
#include "reactor/WorkerPool.h"

namespace sbx::node {

namespace {

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

Status writeAll(int fd, const std::string& data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(sysError("write " + path));
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

Status fsyncPath(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error(sysError("open " + path));
  if (::fsync(fd.get()) != 0) return Error(sysError("fsync " + path));
  return {};
}

}  // namespace

SandboxStore::SandboxStore(std::string sandboxesDir) : dir_(std::move(sandboxesDir)) {}

Status SandboxStore::init() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error("create " + dir_ + ": " + ec.message());
  ::chmod(dir_.c_str(), 0700);
  return {};
}

Status SandboxStore::prepare(const std::string& id) {
  std::error_code ec;
  std::filesystem::create_directories(sandboxDir(id) + "/logs", ec);
  if (ec) return Error("create " + sandboxDir(id) + ": " + ec.message());
  return {};
}

Status SandboxStore::write(const std::string& id, const std::string& contents) {
  Status st = prepare(id);
  if (!st.ok()) return st;
  const std::string dir = sandboxDir(id);
  const std::string tmp = dir + "/state.json.tmp";
  const std::string final = dir + "/state.json";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return Error(sysError("create " + tmp));
    st = writeAll(fd.get(), contents, tmp);
    if (!st.ok()) return st;
    // The data must be on disk before the rename makes it the state: a
    // crash then leaves either the old file or the new one, never a torn one.
    if (::fsync(fd.get()) != 0) return Error(sysError("fsync " + tmp));
  }
  if (::rename(tmp.c_str(), final.c_str()) != 0) return Error(sysError("rename " + tmp));
  return fsyncPath(dir);
}

Result<SandboxState> SandboxStore::read(const std::string& id) {
  const std::string path = sandboxDir(id) + "/state.json";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error(sysError("open " + path), errno == ENOENT ? 404 : 500);
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(sysError("read " + path), 500);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) return Error(path + ": state file larger than 16 MiB", 500);
  }
  auto s = decodeStateFile(text);
  if (!s.ok()) return Error(path + ": " + s.message(), 500);
  if (s->id() != id) return Error(path + ": holds sandbox \"" + s->id() + "\"", 500);
  return s;
}

std::vector<std::string> SandboxStore::listIds() {
  std::vector<std::string> ids;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return ids;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
    ids.push_back(n);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

bool SandboxStore::hasState(const std::string& id) const {
  struct stat st{};
  return ::stat((sandboxDir(id) + "/state.json").c_str(), &st) == 0;
}

std::vector<SandboxState> SandboxStore::loadAll(std::vector<std::string>& problems) {
  std::vector<SandboxState> out;
  for (const auto& id : listIds()) {
    if (!hasState(id)) {
      // The first state write never completed, so the create was never
      // acknowledged (202 waits for it) and nothing else was made yet:
      // the directory is all there is to clean up.
      Status st = remove(id);
      problems.push_back(id + ": no state file (create interrupted before it was accepted); " +
                         (st.ok() ? "removed" : st.message()));
      continue;
    }
    auto s = read(id);
    if (s.ok()) {
      out.push_back(std::move(*s));
    } else {
      problems.push_back(id + ": " + s.message());
    }
  }
  return out;
}

Status SandboxStore::remove(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos) {
    return Error("refusing to remove sandbox directory \"" + id + "\"");
  }
  std::error_code ec;
  std::filesystem::remove_all(sandboxDir(id), ec);
  if (ec) return Error("remove " + sandboxDir(id) + ": " + ec.message());
  return fsyncPath(dir_);
}

// ---- StatePersister -------------------------------------------------------------

StatePersister::StatePersister(SandboxStore& store, WorkerPool& pool) : store_(store), pool_(pool) {}

Status StatePersister::loadAll(std::function<void(std::optional<Loaded>)> done) {
  auto r = pool_.call(
      [&store = store_]() {
        Loaded l;
        if (Status st = store.init(); !st.ok()) l.problems.push_back(st.message());
        l.states = store.loadAll(l.problems);
        return l;
      },
      std::move(done), "load-state");
  if (!r.ok()) return r.error();
  return Status();
}

void StatePersister::persist(const SandboxState& state, std::function<void(Status)> done) {
  Entry& e = entries_[state.id()];
  e.pending = encodeStateFile(state);
  e.hasPending = true;
  if (done) e.waitingPending.push_back(std::move(done));
  kick(state.id());
}

void StatePersister::erase(const std::string& id, std::function<void(Status)> done) {
  Entry& e = entries_[id];
  e.eraseRequested = true;
  e.hasPending = false;  // no point writing what is about to be removed
  e.pending.clear();
  if (done) e.waitingPending.push_back(std::move(done));
  kick(id);
}

void StatePersister::kick(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (e.busy) return;
  if (!e.hasPending && !e.eraseRequested) {
    entries_.erase(it);
    return;
  }
  e.busy = true;
  const bool erasing = e.eraseRequested;
  // An erase with a write queued behind it (the id was created again):
  // the waiters are the write's, and hear its outcome, not the erase's.
  if (!(erasing && e.hasPending)) {
    e.waitingCurrent = std::move(e.waitingPending);
    e.waitingPending.clear();
  }
  auto result = std::make_shared<Status>();
  std::function<void()> work;
  auto contents = std::make_shared<std::string>();
  if (erasing) {
    e.eraseRequested = false;
    work = [this, id, result] { *result = store_.remove(id); };
  } else {
    e.hasPending = false;
    *contents = std::move(e.pending);
    e.pending.clear();
    work = [this, id, result, contents] { *result = store_.write(id, *contents); };
  }
  auto submitted = pool_.submit(std::move(work), [this, id, result](WorkerPool::JobStatus st) {
    Entry& en = entries_[id];
    en.busy = false;
    Status outcome = st == WorkerPool::JobStatus::Done ? *result
                                                       : Status(Error("state write cancelled"));
    auto waiting = std::move(en.waitingCurrent);
    en.waitingCurrent.clear();
    kick(id);  // before callbacks: they may persist again
    for (auto& cb : waiting) cb(outcome);
  }, "state-write");
  if (!submitted.ok()) {
    // Queue full: the state stays pending (retried by this sandbox's next
    // persist()); report the failure to the waiters now.
    e.busy = false;
    if (erasing) {
      e.eraseRequested = true;
    } else if (!e.hasPending) {
      e.pending = std::move(*contents);
      e.hasPending = true;
    }
    auto waiting = std::move(e.waitingCurrent);
    e.waitingCurrent.clear();
    for (auto& cb : waiting) cb(Status(submitted.error()));
  }
}

}  // namespace sbx::node
