#include "app/InstanceLock.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "../TestUtil.h"

using namespace sbx;

TEST_CASE("lockInstance: one holder at a time, the pid in the file, released on close") {
  test::TempDir tmp("sbx-lock-test");
  const std::string path = tmp.path + "/state/sbxlet.lock";
  auto first = app::lockInstance(path);
  REQUIRE(first.ok());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream in(path);
  std::string pid;
  std::getline(in, pid);
  CHECK(pid == std::to_string(::getpid()));

  // flock locks belong to the open file: a second open in this process
  // meets the first lock as another daemon would.
  auto second = app::lockInstance(path);
  REQUIRE_FALSE(second.ok());
  CHECK(second.message() ==
        "another process (pid " + pid + ") holds " + path + ": one daemon per state directory");

  first->reset();
  auto third = app::lockInstance(path);
  CHECK(third.ok());
}
