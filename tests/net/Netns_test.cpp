// Real network namespaces (the tests run as root), in a directory of the
// test's own, removed afterwards.
#include "net/Netns.h"

#include <doctest/doctest.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "reactor/Fd.h"

using namespace sbx;
using namespace sbx::net;

namespace {
bool loopbackIsUp() {
  Fd s(::socket(AF_INET, SOCK_DGRAM, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  return ::ioctl(s.get(), SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
}

ino_t netnsInode(const std::string& path) {
  struct stat st{};
  ::stat(path.c_str(), &st);
  return st.st_ino;
}
}  // namespace

TEST_CASE("Netns: create with lo up, join, list, remove") {
  namespace fs = std::filesystem;
  std::string dir = (fs::temp_directory_path() / ("sbx-netns-test-" + std::to_string(::getpid()))).string();
  Netns netns(dir);
  const std::string name = "sbxtest-a";
  const ino_t before = netnsInode("/proc/thread-self/ns/net");

  auto path = netns.create(name);
  REQUIRE_MESSAGE(path.ok(), (path.ok() ? "" : path.message()));
  CHECK(*path == dir + "/" + name);
  CHECK(netns.exists(name));
  CHECK(netnsInode(*path) != netnsInode("/proc/self/ns/net"));

  auto dup = netns.create(name);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.message() == "network namespace sbxtest-a already exists");

  bool up = false;
  ino_t inside = 0;
  REQUIRE(Netns::runIn(*path, [&]() -> Status {
            up = loopbackIsUp();
            inside = netnsInode("/proc/thread-self/ns/net");
            return {};
          }).ok());
  CHECK(up);
  CHECK(inside == netnsInode(*path));
  // The calling thread never moved.
  CHECK(netnsInode("/proc/thread-self/ns/net") == before);

  REQUIRE(netns.create("sbxtest-b").ok());
  auto names = netns.list("sbxtest-");
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"sbxtest-a", "sbxtest-b"});

  CHECK(netns.remove(name).ok());
  CHECK_FALSE(netns.exists(name));
  CHECK(netns.remove(name).ok());  // idempotent
  CHECK(netns.remove("sbxtest-b").ok());
  CHECK(netns.list("sbxtest-").empty());
  CHECK_FALSE(netns.create("../escape").ok());
  CHECK_FALSE(Netns::runIn(dir + "/missing", [] { return Status(); }).ok());
  fs::remove_all(dir);
}
