#include "net/PortTable.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "reactor/Fd.h"

namespace sbx::net {

namespace {
std::string name(uint16_t port, const std::string& protocol) {
  return std::to_string(port) + "/" + protocol;
}
}  // namespace

PortTable::PortTable(HostCheck check) : check_(std::move(check)) {}

Status PortTable::reserve(const std::string& sandboxId, const std::vector<HostPort>& ports) {
  for (const auto& p : ports) {
    auto it = holders_.find({p.port, p.protocol});
    if (it != holders_.end() && it->second != sandboxId) {
      return Error("host port already in use: " + name(p.port, p.protocol) + " (sandbox " +
                   it->second + ")");
    }
  }
  if (check_) {
    for (const auto& p : ports) {
      if (holders_.count({p.port, p.protocol})) continue;  // ours already
      Status st = check_(p.port, p.protocol);
      if (!st.ok()) return st;
    }
  }
  restore(sandboxId, ports);
  return {};
}

void PortTable::restore(const std::string& sandboxId, const std::vector<HostPort>& ports) {
  release(sandboxId);
  if (ports.empty()) return;
  for (const auto& p : ports) holders_[{p.port, p.protocol}] = sandboxId;
  bySandbox_[sandboxId] = ports;
}

void PortTable::release(const std::string& sandboxId) {
  auto it = bySandbox_.find(sandboxId);
  if (it == bySandbox_.end()) return;
  for (const auto& p : it->second) {
    auto h = holders_.find({p.port, p.protocol});
    if (h != holders_.end() && h->second == sandboxId) holders_.erase(h);
  }
  bySandbox_.erase(it);
}

std::string PortTable::holder(uint16_t port, const std::string& protocol) const {
  auto it = holders_.find({port, protocol});
  return it == holders_.end() ? "" : it->second;
}

Status PortTable::bindCheck(uint16_t port, const std::string& protocol) {
  const bool udp = protocol == "udp";
  Fd s(::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!s) return Error(std::string("host port check: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return {};
  if (errno == EADDRINUSE) {
    return Error("host port already in use: " + name(port, protocol) +
                 " (by a process on this host)");
  }
  return Error("host port " + name(port, protocol) + ": " + std::strerror(errno));
}

}  // namespace sbx::net
