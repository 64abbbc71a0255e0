#include "net/Netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "reactor/Fd.h"

namespace sbx::net {

namespace {

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

Status mkdirs(const std::string& dir) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return Error(errnoText("mkdir " + cur));
  }
  return {};
}

Status loopbackUp() {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return Error(errnoText("socket"));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return Error(errnoText("SIOCGIFFLAGS lo"));
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return Error(errnoText("SIOCSIFFLAGS lo"));
  return {};
}

}  // namespace

Netns::Netns(std::string dir) : dir_(std::move(dir)) {}

Status Netns::runIn(const std::string& nsPath, const std::function<Status()>& fn) {
  Status result;
  // A thread of its own: setns() changes only the calling thread, and this
  // one dies afterwards, so no pool worker is ever left in a sandbox's
  // namespace.
  std::thread t([&] {
    Fd ns(::open(nsPath.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      result = Error(errnoText("open " + nsPath));
      return;
    }
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = Error(errnoText("setns " + nsPath));
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

Result<std::string> Netns::create(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return Error("invalid network namespace name \"" + name + "\"");
  }
  Status st = mkdirs(dir_);
  if (!st.ok()) return st.error();
  const std::string target = path(name);
  // O_EXCL: two creates of one name must not share a namespace.
  Fd file(::open(target.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!file) {
    if (errno == EEXIST) return Error("network namespace " + name + " already exists");
    return Error(errnoText("create " + target));
  }
  file.reset();

  Status result;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = Error(errnoText("unshare(CLONE_NEWNET)"));
      return;
    }
    std::string self = "/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/ns/net";
    if (::mount(self.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      result = Error(errnoText("bind-mount " + self + " on " + target));
      return;
    }
    result = loopbackUp();
  });
  t.join();
  if (!result.ok()) {
    ::umount2(target.c_str(), MNT_DETACH);
    ::unlink(target.c_str());
    return Error("create network namespace " + name + ": " + result.message());
  }
  return target;
}

Status Netns::remove(const std::string& name) {
  const std::string target = path(name);
  if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return Error(errnoText("unmount " + target));
  }
  if (::unlink(target.c_str()) != 0 && errno != ENOENT) return Error(errnoText("remove " + target));
  return {};
}

bool Netns::exists(const std::string& name) const {
  struct statfs fs;
  if (::statfs(path(name).c_str(), &fs) != 0) return false;
  return fs.f_type == NSFS_MAGIC;
}

std::vector<std::string> Netns::list(const std::string& prefix) const {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    if (n.rfind(prefix, 0) == 0) out.push_back(n);
  }
  ::closedir(d);
  return out;
}

}  // namespace sbx::net
