#pragma once
// Command: runs a program (a CNI plugin, iptables-restore) with arguments,
// an environment and a standard input, and collects its output. The exec
// boundary of src/net, behind a function type so unit tests can replace it.
//
// Blocking (fork/exec, waits for the child): worker-pool jobs only, never
// the loop. Thread-safe. The child inherits the calling thread's network
// namespace (so a caller inside Netns::runIn configures that namespace).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/Result.h"

namespace sbx::net {

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // Extra "K=V" entries; with `replaceEnv` false they are added to (and
  // override) this process's environment.
  std::vector<std::string> env;
  bool replaceEnv = false;
  std::string stdinData;
  std::chrono::milliseconds timeout{30000};  // then SIGKILL and an error
};

struct CommandResult {
  int exitCode = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// Error only when the program could not be started or timed out; a non-zero
// exit is a CommandResult the caller judges.
using CommandRunner = std::function<Result<CommandResult>(const CommandSpec&)>;

Result<CommandResult> runCommand(const CommandSpec& spec);

// The first non-blank line of a program's output (at most 512 bytes, no
// CR/LF): what error messages quote of stderr or stdout.
std::string firstLine(const std::string& s);

// runCommand, and an error unless the exit code is 0:
// "<argv0> exited with code N: <first line of stderr, or of stdout>".
Result<std::string> runCommandChecked(const CommandRunner& runner, const CommandSpec& spec);

}  // namespace sbx::net
