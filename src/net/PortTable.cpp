#include "net/PortTable.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
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

namespace {

// Whether any socket of `protocol` (IPPROTO_TCP: listening ones; UDP: any
// bound one) of address family `family` has local port `port`, asked of the
// kernel through sock_diag (netlink): only listeners are dumped for tcp, so
// the answer stays small however many connections the host has, and a
// client's ephemeral port never counts (bind(2) would say EADDRINUSE for it).
Result<bool> socketOnPort(int family, int protocol, uint16_t port) {
  Fd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl) return Error(std::string("sock_diag: socket: ") + std::strerror(errno));
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = static_cast<uint8_t>(family);
  msg.req.sdiag_protocol = static_cast<uint8_t>(protocol);
  msg.req.idiag_states = protocol == IPPROTO_TCP ? (1u << 10) /* TCP_LISTEN */ : ~0u;
  if (::send(nl.get(), &msg, sizeof msg, 0) < 0) {
    return Error(std::string("sock_diag: send: ") + std::strerror(errno));
  }
  alignas(nlmsghdr) char buf[32768];
  bool found = false;
  for (;;) {
    ssize_t n = ::recv(nl.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(std::string("sock_diag: recv: ") + std::strerror(errno));
    }
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return found;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        // No such protocol module (e.g. no IPv6): nothing listens there.
        if (e->error == -ENOENT || e->error == -EAFNOSUPPORT) return false;
        return Error(std::string("sock_diag: ") + std::strerror(-e->error));
      }
      auto* d = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (ntohs(d->id.idiag_sport) == port) found = true;
    }
  }
}

}  // namespace

Status PortTable::bindCheck(uint16_t port, const std::string& protocol) {
  const int proto = protocol == "udp" ? IPPROTO_UDP : IPPROTO_TCP;
  for (int family : {AF_INET, AF_INET6}) {
    auto held = socketOnPort(family, proto, port);
    if (!held.ok()) return Error("host port " + name(port, protocol) + ": " + held.message());
    if (*held) {
      return Error("host port already in use: " + name(port, protocol) +
                   " (by a process on this host)");
    }
  }
  return {};
}

}  // namespace sbx::net
