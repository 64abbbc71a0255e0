#include "net/Command.h"

#include <doctest/doctest.h>

#include <chrono>

using namespace sbx;
using namespace sbx::net;

TEST_CASE("Command: stdin in, stdout and stderr out, exit code") {
  CommandSpec spec;
  spec.argv = {"sh", "-c", "read x; echo out:$x:$FOO; echo err >&2; exit 3"};
  spec.env = {"FOO=bar"};
  spec.stdinData = "hello\n";
  auto r = runCommand(spec);
  REQUIRE(r.ok());
  CHECK(r->exitCode == 3);
  CHECK(r->out == "out:hello:bar\n");
  CHECK(r->err == "err\n");
  auto checked = runCommandChecked(runCommand, spec);
  REQUIRE(!checked.ok());
  CHECK(checked.message() == "sh exited with code 3: err");
}

TEST_CASE("Command: a replaced environment holds only what the spec gives") {
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo \"[$HOME][$ONLY]\""};
  spec.env = {"ONLY=1"};
  spec.replaceEnv = true;
  auto r = runCommandChecked(runCommand, spec);
  REQUIRE(r.ok());
  CHECK(*r == "[][1]\n");
}

TEST_CASE("Command: large stdin and stdout do not deadlock") {
  CommandSpec spec;
  spec.argv = {"cat"};
  spec.stdinData.assign(1 << 20, 'x');
  auto r = runCommandChecked(runCommand, spec);
  REQUIRE(r.ok());
  CHECK(r->size() == (1u << 20));
}

TEST_CASE("Command: a program that does not exist, and one that hangs") {
  CommandSpec missing;
  missing.argv = {"/nonexistent/plugin"};
  auto r = runCommand(missing);
  REQUIRE(!r.ok());
  CHECK(r.message().find("start /nonexistent/plugin") == 0);

  CommandSpec slow;
  slow.argv = {"sleep", "10"};
  slow.timeout = std::chrono::milliseconds(200);
  auto t0 = std::chrono::steady_clock::now();
  auto s = runCommand(slow);
  REQUIRE(!s.ok());
  CHECK(s.message() == "sleep timed out after 200ms");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("Command: a child that exits without reading its stdin is no SIGPIPE for us") {
  CommandSpec spec;
  spec.argv = {"true"};
  spec.stdinData.assign(4 << 20, 'x');  // more than a pipe holds
  auto r = runCommand(spec);
  REQUIRE(r.ok());
  CHECK(r->exitCode == 0);
}
