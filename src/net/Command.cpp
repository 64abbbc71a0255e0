#include "net/Command.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "reactor/Fd.h"

extern char** environ;

namespace sbx::net {

namespace {

struct Pipe {
  Fd read;
  Fd write;
};

Result<Pipe> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error(std::string("pipe: ") + std::strerror(errno));
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

std::vector<std::string> buildEnv(const CommandSpec& spec) {
  if (spec.replaceEnv) return spec.env;
  // Ours first, then this process's entries that the spec does not override.
  std::map<std::string, bool> overridden;
  for (const auto& kv : spec.env) overridden[kv.substr(0, kv.find('='))] = true;
  std::vector<std::string> out = spec.env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    if (!overridden.count(kv.substr(0, kv.find('=')))) out.push_back(std::move(kv));
  }
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  p.reserve(strings.size() + 1);
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// write(2) to a pipe whose reader may be gone: EPIPE, never a SIGPIPE that
// would kill a process that does not ignore it (the tests): the signal is
// blocked in this thread for the call and a pending one consumed.
ssize_t writeNoSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipeSet, old;
  sigemptyset(&pipeSet);
  sigaddset(&pipeSet, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool alreadyPending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipeSet, &old);
  ssize_t w = ::write(fd, data, size);
  int savedErrno = errno;
  if (w < 0 && savedErrno == EPIPE && !alreadyPending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipeSet, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = savedErrno;
  return w;
}

}  // namespace

Result<CommandResult> runCommand(const CommandSpec& spec) {
  if (spec.argv.empty()) return Error("runCommand: empty argv");
  auto in = makePipe();
  auto out = makePipe();
  auto err = makePipe();
  if (!in.ok()) return in.error();
  if (!out.ok()) return out.error();
  if (!err.ok()) return err.error();

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in->read.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out->write.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err->write.get(), 2);
  // The child must not inherit the parent's blocked signal mask (worker
  // threads block everything) or SIG_IGN dispositions.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argv = spec.argv;
  std::vector<std::string> env = buildEnv(spec);
  auto argvp = pointers(argv);
  auto envp = pointers(env);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, &attr, argvp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error("start " + spec.argv[0] + ": " + std::strerror(rc));
  in->read.reset();
  out->write.reset();
  err->write.reset();
  for (Fd* f : {&in->write, &out->read, &err->read}) {
    ::fcntl(f->get(), F_SETFL, ::fcntl(f->get(), F_GETFL) | O_NONBLOCK);
  }

  CommandResult result;
  size_t written = 0;
  if (spec.stdinData.empty()) in->write.reset();
  const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  bool timedOut = false;
  char buf[16384];
  while (out->read.valid() || err->read.valid()) {
    pollfd pfds[3];
    int n = 0;
    if (in->write.valid()) pfds[n++] = {in->write.get(), POLLOUT, 0};
    if (out->read.valid()) pfds[n++] = {out->read.get(), POLLIN, 0};
    if (err->read.valid()) pfds[n++] = {err->read.get(), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    int pr = ::poll(pfds, n, static_cast<int>(left.count()));
    if (pr < 0 && errno != EINTR) break;
    for (int i = 0; i < n && pr > 0; ++i) {
      if (!pfds[i].revents) continue;
      if (pfds[i].fd == in->write.get()) {
        ssize_t w = writeNoSigpipe(in->write.get(), spec.stdinData.data() + written,
                                   spec.stdinData.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) in->write.reset();  // EPIPE: it stopped reading
        if (written == spec.stdinData.size()) in->write.reset();
        continue;
      }
      Fd& f = pfds[i].fd == out->read.get() ? out->read : err->read;
      std::string& sink = pfds[i].fd == out->read.get() ? result.out : result.err;
      ssize_t r = ::read(f.get(), buf, sizeof buf);
      if (r > 0) {
        // Bounded: a plugin's result is small; keep at most 4 MiB.
        if (sink.size() < (4u << 20)) sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        f.reset();
      }
    }
  }
  in->write.reset();
  if (timedOut) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    return Error(spec.argv[0] + " timed out after " + std::to_string(spec.timeout.count()) + "ms");
  }
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string firstLine(const std::string& s) {
  size_t start = s.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  size_t end = s.find_first_of("\r\n", start);
  std::string line = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (line.size() > 512) line.resize(512);
  return line;
}

Result<std::string> runCommandChecked(const CommandRunner& runner, const CommandSpec& spec) {
  auto r = runner(spec);
  if (!r.ok()) return r.error();
  if (r->exitCode != 0) {
    std::string why = firstLine(r->err);
    if (why.empty()) why = firstLine(r->out);
    std::string msg = spec.argv[0] + " exited with code " + std::to_string(r->exitCode);
    if (!why.empty()) msg += ": " + why;
    return Error(msg);
  }
  return std::move(r->out);
}

}  // namespace sbx::net
